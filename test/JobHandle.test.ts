/**
 * The handle's progress update and pause point mean the same whether a driver
 * runs them with `yield*` in `Effect.gen` (where they run in place, without a
 * step of the run loop) or as ordinary Effects.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"
import type { JobHandle } from "../src/JobHandle.ts"
import * as Jobs from "../src/Jobs.ts"

/** A driver whose run is built by `body` from the job's handle. */
const driverOf = (body: (handle: JobHandle) => Effect.Effect<void>) =>
  JobDriver.make({
    type: "body",
    params: Schema.Struct({}),
    make: (_params, handle) => Effect.succeed({ run: body(handle) })
  })

const runToEnd = (body: (handle: JobHandle) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* jobs.register(driverOf(body))
    const job = yield* jobs.create({ type: "body", id: "j", manualDismiss: true })
    yield* jobs.start(job)
    assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
    return job.progress.current
  }).pipe(Effect.provide(Jobs.layer))

describe("handle.update", () => {
  it.effect("counts the same with yield*, as an Effect, and when one update is run twice", () =>
    Effect.gen(function*() {
      const current = yield* runToEnd((handle) =>
        Effect.gen(function*() {
          yield* handle.update(3)
          yield* Effect.andThen(handle.update(5), Effect.void)
          const seven = handle.update(7)
          yield* seven
          yield* seven
          yield* handle.update(0)
          // The same amount, reported again and again (a copy loop's chunks).
          for (let i = 0; i < 4; i++) yield* handle.update(2)
          yield* Effect.andThen(handle.update(2), handle.update(3))
        })
      )
      assert.strictEqual(current, 3 + 5 + 7 + 7 + 4 * 2 + 2 + 3)
    }))

  it.effect("an update that is built but never run counts nothing", () =>
    Effect.gen(function*() {
      const current = yield* runToEnd((handle) =>
        Effect.gen(function*() {
          handle.update(100)
          yield* handle.update(1)
        })
      )
      assert.strictEqual(current, 1)
    }))
})

describe("handle.pausePoint", () => {
  it.effect("parks a job paused by the user with yield* and as an Effect", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const reached = yield* Deferred.make<void>()
      const go = yield* Deferred.make<void>()
      const again = yield* Deferred.make<void>()
      const goAgain = yield* Deferred.make<void>()
      yield* jobs.register(driverOf((handle) =>
        Effect.gen(function*() {
          yield* Deferred.succeed(reached, undefined)
          yield* Deferred.await(go)
          yield* handle.pausePoint
          yield* handle.update(1)
          yield* Deferred.succeed(again, undefined)
          yield* Deferred.await(goAgain)
          yield* Effect.andThen(handle.pausePoint, handle.update(1))
        })
      ))
      const job = yield* jobs.run({ type: "body", id: "p", manualDismiss: true })
      yield* Deferred.await(reached)
      yield* jobs.pause(job)
      yield* Deferred.succeed(go, undefined)
      yield* jobs.awaitStatus(job, "paused")
      assert.strictEqual(job.progress.current, 0)
      yield* jobs.resume(job)
      yield* Deferred.await(again)
      yield* jobs.pause(job)
      yield* Deferred.succeed(goAgain, undefined)
      yield* jobs.awaitStatus(job, "paused")
      assert.strictEqual(job.progress.current, 1)
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(job.progress.current, 2)
    }).pipe(Effect.provide(Jobs.layer)))
})
