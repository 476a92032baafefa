/**
 * QEMU's test-blockjob.c cancel scenarios (spec §8.1, tests 2–9), one test each:
 * a job is cancelled (force, with `cancelSync`) from every status a user can
 * reach, then dismissed unless it never started or was already CONCLUDED.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as JobTxn from "../src/JobTxn.ts"
import { Jobs } from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

/** QEMU's CancelJob: loops (sleeping) until completed; converges to READY when asked to. */
const cancelJob = (id: string, converge = false) => ({
  type: "test",
  id,
  manualFinalize: true,
  manualDismiss: true,
  params: { iterations: converge ? 0 : 1_000_000, sleepMillis: 1, converge }
})

describe("cancel (spec §8.1)", () => {
  it.effect("cancel/created: a never-started job is dismissed by the cancel itself", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.create(cancelJob("job0"))
      assert.strictEqual(job.status, "created")
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" })
      assert.strictEqual(job.status, "null")
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), ["created", "aborting", "concluded", "null"])
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("job0"), ["make", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/running", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0"))
      assert.strictEqual(job.status, "running")
      yield* TestClock.adjust("10 millis")
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" })
      assert.strictEqual(job.status, "concluded")
      yield* jobs.dismiss(job)
      assert.strictEqual(job.status, "null")
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), ["created", "running", "aborting", "CANCELLED", "concluded", "null"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/paused: the cancel lifts the user pause; the job passes RUNNING on its way to ABORTING", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0"))
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      assert.strictEqual(job.userPaused, true)
      yield* jobs.cancelSync(job, { force: true })
      assert.strictEqual(job.status, "concluded")
      assert.strictEqual(job.userPaused, false)
      assert.strictEqual(job.pauseCount, 0)
      yield* jobs.dismiss(job)
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "paused",
        "running",
        "aborting",
        "CANCELLED",
        "concluded",
        "null"
      ])
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("job0"), ["make", "run", "pause", "userResume", "resume", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/ready: without a cancel callback, a cancel in READY is hard", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0", true))
      yield* jobs.awaitStatus(job, "ready")
      const outcome = yield* jobs.cancelSync(job)
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" })
      assert.strictEqual(job.status, "concluded")
      yield* jobs.dismiss(job)
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "ready",
        "READY",
        "aborting",
        "CANCELLED",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/standby", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0", true))
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "standby")
      yield* jobs.cancelSync(job, { force: true })
      assert.strictEqual(job.status, "concluded")
      yield* jobs.dismiss(job)
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "ready",
        "READY",
        "standby",
        "ready",
        "aborting",
        "CANCELLED",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/pending: a PENDING job is aborted, never committed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0", true))
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.complete(job)
      yield* jobs.awaitStatus(job, "pending")
      yield* jobs.cancelSync(job, { force: true })
      assert.strictEqual(job.status, "concluded")
      yield* jobs.dismiss(job)
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "ready",
        "READY",
        "waiting",
        "pending",
        "PENDING",
        "aborting",
        "CANCELLED",
        "concluded",
        "null"
      ])
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("job0"), ["make", "run", "complete", "abort", "clean", "free"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancel/concluded: cancelSync on a CONCLUDED job dismisses it", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run(cancelJob("job0", true))
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.complete(job)
      yield* jobs.awaitStatus(job, "pending")
      yield* jobs.finalize(job)
      assert.strictEqual(job.status, "concluded")
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Succeeded" })
      assert.strictEqual(job.status, "null")
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "ready",
        "READY",
        "waiting",
        "pending",
        "PENDING",
        "COMPLETED",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("complete_in_standby: complete is accepted in STANDBY and takes effect on resume", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({
        type: "test",
        id: "job0",
        manualFinalize: true,
        manualDismiss: true,
        params: { iterations: 0, wait: "yield", converge: true }
      })
      assert.strictEqual(job.status, "ready")
      // A drained section, as in QEMU's test: a pause hold, released when its scope closes.
      yield* Effect.scoped(Effect.gen(function*() {
        yield* jobs.hold(job, "drain")
        yield* jobs.awaitStatus(job, "standby")
        assert.deepStrictEqual(job.pauseHolds, ["drain"])
        yield* jobs.complete(job)
        assert.strictEqual(job.status, "standby")
      }))
      const outcome = yield* jobs.finishSync(job)
      assert.deepStrictEqual(outcome, { _tag: "Succeeded" })
      assert.strictEqual(job.status, "pending")
      yield* jobs.finalize(job)
      assert.strictEqual(job.status, "concluded")
      yield* jobs.dismiss(job)
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.trace("job0"), [
        "created",
        "running",
        "ready",
        "READY",
        "standby",
        "ready",
        "waiting",
        "pending",
        "PENDING",
        "COMPLETED",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(Testing.layer)))
})

describe("cancel of a job that never started", () => {
  it.effect("a driver that answers soft: the cancel is hard all the same (created → aborting → concluded → null)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.create({ type: "test", id: "soft", params: { softCancelAlways: true } })
      yield* jobs.cancel(job)
      assert.strictEqual(job.status, "null")
      assert.isTrue(job.isCancelled)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      yield* rec.until("soft", "null")
      assert.deepStrictEqual(rec.trace("soft"), ["created", "aborting", "concluded", "null"])
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("soft"), ["make", "cancel", "abort", "clean", "free"])
      const refused = yield* Effect.flip(jobs.start(job))
      assert.strictEqual(refused._tag, "JobAlreadyStarted")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("inside a transaction: the soft-answered cancel aborts it, and a later start is refused", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const soft = yield* jobs.create({ type: "test", id: "soft", txn, params: { softCancelAlways: true } })
      const other = yield* jobs.create({ type: "test", id: "other", txn, params: { iterations: 0 } })
      yield* jobs.start(other)
      assert.strictEqual(other.status, "waiting")
      yield* jobs.cancel(soft, { force: false })
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "Operation canceled" })
      assert.strictEqual(other.status, "null")
      assert.deepStrictEqual(yield* jobs.awaitOutcome(other), { _tag: "Cancelled" })
      assert.strictEqual((yield* Effect.flip(jobs.start("soft")))._tag, "JobNotFound")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a failing cancel callback fails the job with its error, as in READY and WAITING", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.create({ type: "test", id: "j", params: { softCancel: true, fail: ["cancel"] } })
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: "test job: cancel failed" })
      assert.strictEqual(job.error, "test job: cancel failed")
      assert.strictEqual(job.status, "null")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("the Jobs layer closes with a soft-answered never-started job in it", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.create({ type: "test", id: "soft", params: { softCancelAlways: true } })
        const other = yield* jobs.create({ type: "test", id: "other", params: { softCancelAlways: true } })
        yield* jobs.cancel(job, { force: false })
        return [job, other] as const
      }).pipe(Effect.provide(Testing.layer)))
      for (const job of closed) assert.strictEqual(job.status, "null")
    }))
})
