/**
 * The event stream: every transition of a job that is not internal, in order;
 * subscribers never miss what is published after they subscribe; a slow
 * subscriber is cut off with EventsOverflow without slowing anyone else.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../src/Jobs.ts"
import * as JobStatus from "../src/JobStatus.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

describe("events", () => {
  it.effect("internal jobs publish nothing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const internal = yield* jobs.run({ type: "test", internal: true, params: { iterations: 2, sleepMillis: 10 } })
      yield* jobs.run({ type: "test", id: "visible", params: { iterations: 2, sleepMillis: 10 } })
      yield* TestClock.adjust("50 millis")
      assert.deepStrictEqual(yield* jobs.awaitOutcome(internal), { _tag: "Succeeded" })
      yield* rec.until("visible", "null")
      assert.isTrue(rec.events.every((e) => e.id === "visible"))
      assert.deepStrictEqual(yield* jobs.list, [])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("two subscribers both see every event; a subscriber sees only what follows its subscription", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.create({ type: "test", id: "before" })
      const first = yield* recordEvents
      const second = yield* recordEvents
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 0, converge: true } })
      yield* jobs.complete(job)
      yield* first.until("j", "null")
      yield* second.until("j", "null")
      assert.deepStrictEqual(first.events, second.events)
      assert.deepStrictEqual(first.trace("before"), [])
      const statuses = first.statuses("j")
      for (let i = 1; i < statuses.length; i++) {
        assert.isTrue(JobStatus.canTransition(statuses[i - 1] as JobStatus.JobStatus, statuses[i] as JobStatus.JobStatus))
      }
      const ready = first.events.find((e) => e._tag === "Ready")
      assert.deepStrictEqual(ready, { _tag: "Ready", id: "j", type: "test", len: 0, offset: 0, speed: 0, seq: ready!.seq, timestamp: 0 })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a subscriber that stops reading is cut off with EventsOverflow after its buffered events; others go on", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const slow = yield* jobs.subscribe({ capacity: 4 })
      for (let i = 0; i < 3; i++) {
        yield* jobs.run({ type: "test", id: `j${i}`, params: { iterations: 0 } })
      }
      // The engine was never held up: every job finished while nobody read `slow`.
      yield* rec.until("j2", "null")
      const exit = yield* Effect.exit(Stream.runCollect(slow))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(exit.cause.reasons[0].error._tag, "EventsOverflow")
      }
      const buffered = yield* jobs.subscribe({ capacity: 4 }).pipe(
        Effect.flatMap((s) =>
          Effect.gen(function*() {
            const reader = yield* Effect.forkChild(Stream.runCollect(Stream.take(s, 2)), { startImmediately: true })
            yield* jobs.create({ type: "test", id: "late" })
            yield* jobs.cancel("late")
            return yield* Fiber.join(reader)
          })
        ),
        Effect.scoped
      )
      assert.deepStrictEqual(buffered.map((e) => e._tag === "StatusChange" ? e.status : e._tag), ["created", "aborting"])
      assert.strictEqual(rec.statuses("j0").at(-1), "null")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("the events stream ends when the Jobs layer closes", () =>
    Effect.gen(function*() {
      const collected = yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const fiber = yield* Effect.forkDetach(Stream.runCollect(jobs.events), { startImmediately: true })
        yield* jobs.run({ type: "test", id: "j", params: { iterations: 100, sleepMillis: 10 } })
        return fiber
      }).pipe(Effect.provide(Testing.layer))
      const events = yield* Fiber.join(collected)
      assert.deepStrictEqual(events.map((e) => (e._tag === "StatusChange" ? e.status : e._tag)), [
        "created",
        "running",
        "aborting",
        "Cancelled",
        "concluded",
        "null"
      ])
    }))
})

describe("a forked event reader keeps the tail (awaitDelivered)", () => {
  it.effect("after awaitOutcome + awaitDelivered, a reader that yields per event has printed every event", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* Effect.forkScoped(
          Stream.runForEach(jobs.events, (e) =>
            // A reader that takes a few turns per event, like one that writes to a terminal.
            Effect.andThen(Effect.yieldNow, Effect.sync(() => void seen.push(e._tag === "StatusChange" ? e.status : e._tag)))),
          { startImmediately: true }
        )
        const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 3, sleepMillis: 10 } })
        yield* TestClock.adjust("10 millis")
        yield* jobs.cancel(job, { force: true })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
        assert.strictEqual(job.status, "null", "awaitOutcome of a job that dismisses itself returns once it is dismissed")
        yield* jobs.awaitDelivered
      }).pipe(Effect.provide(Testing.layer)))
      assert.deepStrictEqual(seen, ["created", "running", "aborting", "Cancelled", "concluded", "null"])
    }))

  it.effect("a synchronous reader (the QMP server's kind) and a subscription that ends do not hold it up", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* Effect.scoped(jobs.subscribe()) // subscribed, then its scope closed: gone
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 0 } })
      yield* jobs.awaitOutcome(job)
      yield* jobs.awaitDelivered
    }).pipe(Effect.provide(Testing.layer)))
})
