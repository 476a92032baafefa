import { assert, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"

it.effect("smoke", () =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const events = yield* jobs.subscribe()
    const collected = yield* Effect.forkChild(Stream.runCollect(Stream.take(events, 6)), { startImmediately: true })
    const job = yield* jobs.run({ type: "test", id: "j1", params: { iterations: 3, sleepMillis: 100 } })
    yield* TestClock.adjust("1 second")
    const outcome = yield* jobs.awaitOutcome(job)
    assert.deepStrictEqual(outcome, { _tag: "Succeeded" })
    const evs = yield* Fiber.join(collected)
    console.log(evs)
    const log = yield* Testing.CallbackLog
    console.log(log.of("j1"))
  }).pipe(Effect.provide(Testing.layer)))
