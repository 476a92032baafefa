/**
 * The examples of docs/testing.md, run as tests. The doc shows the regions
 * marked below verbatim (up to the import paths); test/docs/sourceLabels.test.ts
 * checks that it still does.
 */
// #region imports
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"
import { Jobs, JobTxn } from "../../src/index.ts"
import * as Testing from "../../src/testing.ts"
import { JobsLive } from "../../examples/readme.ts"
import { runWithin } from "../../examples/runWithin.ts"
// #endregion imports

// #region driver
describe("the README's count driver", () => {
  it.effect("counts whole ticks only: a pause holds the tick it cuts short", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      // The job's events, read in a fiber of their own; subscribed before the job starts.
      const seen: Array<string> = []
      const events = yield* jobs.subscribe()
      yield* Effect.forkScoped(
        Stream.runForEach(events, (e) => Effect.sync(() => seen.push(e._tag === "StatusChange" ? e.status : e._tag))),
        { startImmediately: true }
      )

      const job = yield* jobs.run({ type: "count", id: "count-1", params: { to: 10 } })
      yield* TestClock.adjust("45 millis") // four ticks, and half of the fifth
      assert.strictEqual(job.progress.current, 4)

      yield* jobs.pause(job) // cuts the fifth tick's sleep short
      yield* jobs.awaitStatus(job, "paused") // a fact, not a sleep
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(job.progress.current, 4) // nothing moves while paused

      yield* jobs.resume(job)
      assert.strictEqual(job.progress.current, 4) // the fifth tick has 5 ms to go
      yield* TestClock.adjust("4 millis")
      assert.strictEqual(job.progress.current, 4)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(job.progress.current, 5)

      yield* TestClock.adjust("50 millis") // the other five ticks
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.deepStrictEqual({ ...job.progress }, { current: 10, total: 10 })

      yield* jobs.awaitDelivered // the reader has caught up: `seen` is complete
      assert.deepStrictEqual(seen, [
        "created",
        "running",
        "paused",
        "running",
        "waiting",
        "pending",
        "Completed",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(JobsLive)))
})
// #endregion driver

// #region program
describe("runWithin", () => {
  it.effect("a job that finishes in time keeps its outcome", () =>
    Effect.gen(function*() {
      const run = yield* Effect.forkChild(
        runWithin({ type: "test", id: "quick", params: { iterations: 3, sleepMillis: 100 } }, "1 second"),
        { startImmediately: true }
      )
      yield* TestClock.adjust("300 millis")
      assert.deepStrictEqual(yield* Fiber.join(run), { _tag: "Succeeded" })
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("quick"), ["make", "run", "prepare", "commit", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a job still going at the limit is cancelled then, not before", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const run = yield* Effect.forkChild(
        runWithin({ type: "test", id: "slow", params: { iterations: 10, sleepMillis: 100 } }, "550 millis"),
        { startImmediately: true }
      )
      yield* TestClock.adjust("549 millis")
      const job = yield* jobs.get("slow")
      assert.strictEqual(job.status, "running")
      assert.strictEqual(job.progress.current, 5)
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* Fiber.join(run), { _tag: "Cancelled" })
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("slow"), ["make", "run", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("time spent paused counts towards the limit", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const run = yield* Effect.forkChild(
        runWithin({ type: "test", id: "paused", params: { iterations: 10, sleepMillis: 100 } }, "550 millis"),
        { startImmediately: true }
      )
      yield* TestClock.adjust("200 millis")
      yield* jobs.pause("paused")
      yield* jobs.awaitStatus("paused", "paused")
      yield* TestClock.adjust("350 millis")
      assert.deepStrictEqual(yield* Fiber.join(run), { _tag: "Cancelled" })
      const log = yield* Testing.CallbackLog
      // The cancel lifted the user's pause (userResume), then let the job out of its pause point.
      assert.deepStrictEqual(log.of("paused"), ["make", "run", "pause", "userResume", "resume", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a failure is the outcome, as it is", () =>
    Effect.gen(function*() {
      const outcome = yield* runWithin({ type: "test", id: "broken", params: { result: "fail" } }, "1 second")
      assert.deepStrictEqual(outcome, { _tag: "Failed", error: "test job: run failed" })
    }).pipe(Effect.provide(Testing.layer)))
})
// #endregion program

// #region kit
describe("scripting test jobs", () => {
  it.effect("wait: yield — a job that does one unit of work each time it is entered", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const job = yield* jobs.run({ type: "test", id: "stepped", params: { iterations: 3, wait: "yield" } })
      assert.deepStrictEqual({ ...job.progress }, { current: 0, total: 3 })
      yield* jobs.enter(job)
      assert.strictEqual(job.progress.current, 1)
      yield* jobs.enter(job)
      yield* jobs.enter(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("converge and softCancel — a soft cancel in READY ends the job successfully", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const job = yield* jobs.run({
        type: "test",
        id: "mirror",
        params: { iterations: 2, sleepMillis: 10, converge: true, softCancel: true }
      })
      yield* TestClock.adjust("20 millis")
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.cancel(job) // soft: the job is READY
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("mirror"), ["make", "run", "cancel", "prepare", "commit", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("fail — a callback told to fail: here `prepare`, which aborts the whole transaction", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const log = yield* Testing.CallbackLog
      const txn = yield* JobTxn.make
      const a = yield* jobs.create({ type: "test", id: "a", txn, params: {} })
      const b = yield* jobs.create({ type: "test", id: "b", txn, params: { fail: ["prepare"] } })
      yield* jobs.start(a)
      yield* jobs.start(b)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "test job: prepare failed" })
      // The newest member is prepared first: "b" fails before "a" is asked.
      assert.deepStrictEqual(log.of("a"), ["make", "run", "abort", "clean", "free"])
      assert.deepStrictEqual(log.of("b"), ["make", "run", "prepare", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))
})
// #endregion kit
