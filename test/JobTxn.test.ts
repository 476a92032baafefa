/**
 * Transactions (spec §5, §8.2): all members commit or all abort.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import type { JobOutcome } from "../src/Job.ts"
import { Jobs } from "../src/Jobs.ts"
import * as JobTxn from "../src/JobTxn.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

const canceled: JobOutcome = { _tag: "Cancelled" }
const succeeded: JobOutcome = { _tag: "Succeeded" }
const failedWith = (error: string): JobOutcome => ({ _tag: "Failed", error })

/** The helper job of test-blockjob-txn.c: `iterations` sleeps (or yields), then `result`. */
const txnJob = (id: string, txn: JobTxn.JobTxn, iterations: number, result: "succeed" | "fail" = "succeed", wait: "sleep" | "yield" = "sleep") => ({
  type: "test",
  id,
  txn,
  params: { iterations, wait, sleepMillis: 0, result }
})

const committedOrAborted = (id: string) =>
  Testing.CallbackLog.useSync((log) => log.of(id).filter((c) => c === "commit" || c === "abort"))

describe("test-blockjob-txn (spec §8.2)", () => {
  it.effect("single/success", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const job = yield* jobs.run(txnJob("j", txn, 1))
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), succeeded)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("single/failure", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const job = yield* jobs.run(txnJob("j", txn, 1, "fail"))
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), failedWith("test job: run failed"))
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "test job: run failed" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("single/cancel: a soft cancel becomes hard without a cancel callback", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const job = yield* jobs.run(txnJob("j", txn, 1))
      yield* jobs.cancel(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), canceled)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "Operation canceled" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("pair/success: both commit; nobody needs to keep the transaction", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const [a, b] = yield* Effect.gen(function*() {
        const txn = yield* JobTxn.make
        return [yield* jobs.run(txnJob("a", txn, 1)), yield* jobs.run(txnJob("b", txn, 2))] as const
      })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), succeeded)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b), succeeded)
      assert.deepStrictEqual(yield* committedOrAborted("a"), ["commit"])
      assert.deepStrictEqual(yield* committedOrAborted("b"), ["commit"])
    }).pipe(Effect.provide(Testing.layer)))

  for (const [first, second] of [["fail", "succeed"], ["succeed", "fail"]] as const) {
    it.effect(`pair/failure (${first}, ${second}): the failing job keeps its error, the other is cancelled`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const txn = yield* JobTxn.make
        const a = yield* jobs.run(txnJob("a", txn, 1, first))
        const b = yield* jobs.run(txnJob("b", txn, 2, second))
        yield* TestClock.adjust("10 millis")
        const error = failedWith("test job: run failed")
        assert.deepStrictEqual(yield* jobs.awaitOutcome(a), first === "fail" ? error : canceled)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(b), second === "fail" ? error : canceled)
        assert.deepStrictEqual(yield* committedOrAborted("a"), ["abort"])
        assert.deepStrictEqual(yield* committedOrAborted("b"), ["abort"])
      }).pipe(Effect.provide(Testing.layer)))
  }

  for (const target of ["a", "b"]) {
    it.effect(`pair/cancel of ${target}: both cancelled`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const txn = yield* JobTxn.make
        const a = yield* jobs.run(txnJob("a", txn, 1))
        const b = yield* jobs.run(txnJob("b", txn, 2))
        yield* jobs.cancel(target)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(a), canceled)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(b), canceled)
      }).pipe(Effect.provide(Testing.layer)))
  }

  it.effect("pair/fail-cancel-race: the second job finishing right after the cancel cannot commit", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const a = yield* jobs.run(txnJob("a", txn, 1, "fail"))
      const b = yield* jobs.run(txnJob("b", txn, 2, "succeed", "yield"))
      yield* jobs.cancel(a)
      yield* jobs.enter(b)
      yield* jobs.enter(b)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), canceled)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b), canceled)
      assert.deepStrictEqual(yield* committedOrAborted("b"), ["abort"])
    }).pipe(Effect.provide(Testing.layer)))
})

describe("transactions", () => {
  it.effect("successful members wait in WAITING for the last; every prepare runs before any commit", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const log = yield* Testing.CallbackLog
      const txn = yield* JobTxn.make
      const ids = ["a", "b", "c"]
      for (const [i, id] of ids.entries()) yield* jobs.create({ ...txnJob(id, txn, 0), params: { iterations: i + 1, sleepMillis: 10 } })
      for (const id of ids) yield* jobs.start(id)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual((yield* jobs.get("a")).status, "waiting")
      assert.strictEqual((yield* jobs.get("b")).status, "running")
      yield* TestClock.adjust("20 millis")
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      const finalization = log.calls.filter((c) => ["prepare", "commit", "clean"].includes(c.callback))
        .map((c) => `${c.callback}:${c.job}`)
      // Newest member first, as QEMU applies a transaction's steps.
      assert.deepStrictEqual(finalization.slice(0, 3), ["prepare:c", "prepare:b", "prepare:a"])
      assert.deepStrictEqual(finalization.slice(3), ["commit:c", "clean:c", "commit:b", "clean:b", "commit:a", "clean:a"])
      for (const id of ids) {
        yield* rec.until(id, "null")
        assert.deepStrictEqual(rec.statuses(id), ["created", "running", "waiting", "pending", "concluded", "null"])
      }
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a failed prepare aborts every member, including the one finalize was called on", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const opts = (id: string, fail: ReadonlyArray<"prepare">) => ({
        type: "test",
        id,
        txn,
        manualFinalize: true,
        params: { iterations: 0, fail }
      })
      yield* jobs.create(opts("a", []))
      yield* jobs.create(opts("b", ["prepare"]))
      yield* jobs.create(opts("c", []))
      for (const id of ["a", "b", "c"]) yield* jobs.start(id)
      for (const id of ["a", "b", "c"]) assert.strictEqual((yield* jobs.get(id)).status, "pending")
      yield* jobs.finalize("a")
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "test job: prepare failed" })
      const log = yield* Testing.CallbackLog
      for (const id of ["a", "b", "c"]) {
        assert.deepStrictEqual(yield* committedOrAborted(id), ["abort"], id)
      }
      // Prepares run newest first (c, then b) and stop at the first failure: a never prepares.
      assert.deepStrictEqual(log.of("c").filter((c) => c === "prepare"), ["prepare"])
      assert.deepStrictEqual(log.of("a").filter((c) => c === "prepare"), [], "prepares stop at the first failure")
      assert.deepStrictEqual(
        txn.members.map((m) => m.error),
        ["Operation canceled", "test job: prepare failed", "Operation canceled"]
      )
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("mixed manual/auto finalize: all wait in PENDING; one finalize on any member finalizes all", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const txn = yield* JobTxn.make
      yield* jobs.create({ type: "test", id: "manual", txn, manualFinalize: true, params: { iterations: 0 } })
      yield* jobs.create({ type: "test", id: "auto", txn, params: { iterations: 0 } })
      yield* jobs.start("manual")
      yield* jobs.start("auto")
      assert.strictEqual((yield* jobs.get("manual")).status, "pending")
      assert.strictEqual((yield* jobs.get("auto")).status, "pending")
      yield* jobs.finalize("auto")
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      yield* rec.until("auto", "null")
      yield* rec.until("manual", "null")
      assert.include(rec.trace("manual"), "PENDING")
      assert.notInclude(rec.trace("auto"), "PENDING")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a force cancel of a WAITING member aborts everyone", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const a = yield* jobs.create(txnJob("a", txn, 0))
      const b = yield* jobs.run({ ...txnJob("b", txn, 0), params: { iterations: 100, sleepMillis: 10 } })
      yield* jobs.start(a)
      assert.strictEqual(a.status, "waiting")
      yield* jobs.cancel(a, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), canceled)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b), canceled)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a soft cancel the driver turns into completion does not abort the transaction", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const mirror = yield* jobs.run({
        type: "test",
        id: "mirror",
        txn,
        params: { iterations: 0, converge: true, softCancel: true, sleepMillis: 10 }
      })
      const other = yield* jobs.run(txnJob("other", txn, 1))
      yield* jobs.cancel(mirror)
      yield* TestClock.adjust("20 millis")
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(mirror), succeeded)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(other), succeeded)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("JobTxn.cancel aborts every member, started or not, and lists them in creation order", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      yield* jobs.create(txnJob("unstarted", txn, 1))
      yield* jobs.run({ ...txnJob("running", txn, 0), params: { iterations: 100, sleepMillis: 10 } })
      yield* jobs.run(txnJob("waiting", txn, 0))
      assert.strictEqual((yield* jobs.get("waiting")).status, "waiting")
      assert.deepStrictEqual(txn.members.map((m) => m.id), ["unstarted", "running", "waiting"])
      yield* JobTxn.cancel(txn)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "Operation canceled" })
      assert.deepStrictEqual(txn.members.map((m) => m.status), ["null", "null", "null"])
      for (const id of ["unstarted", "running", "waiting"]) {
        assert.deepStrictEqual(yield* committedOrAborted(id), ["abort"])
      }
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("members join only while the transaction runs", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      yield* jobs.run(txnJob("first", txn, 0))
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      const late = yield* Effect.exit(jobs.create(txnJob("late", txn, 0)))
      assert.isTrue(Exit.isFailure(late))
      if (Exit.isFailure(late) && late.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(late.cause.reasons[0].error._tag, "TxnClosed")
      }
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a cancel arriving while the transaction commits is ignored: the decision stands", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const a = yield* jobs.create({ type: "test", id: "a", txn, manualFinalize: true, params: { iterations: 0 } })
      const b = yield* jobs.create({ type: "test", id: "b", txn, manualFinalize: true, params: { iterations: 0 } })
      yield* jobs.start(a)
      yield* jobs.start(b)
      assert.strictEqual(b.status, "pending")
      // Cancel b the moment a concludes (its commit done, b's not yet).
      const late = yield* Effect.forkChild(
        Effect.andThen(jobs.awaitStatus(a, "concluded"), Effect.exit(jobs.cancel(b, { force: true }))),
        { startImmediately: true }
      )
      yield* jobs.finalize(a)
      yield* Fiber.await(late)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b), succeeded)
      assert.deepStrictEqual(yield* committedOrAborted("b"), ["commit"])
    }).pipe(Effect.provide(Testing.layer)))
})

describe("a transaction with no members", () => {
  it.effect("has no outcome to wait for: awaitOutcome fails at once with TxnEmpty", () =>
    Effect.gen(function*() {
      const txn = yield* JobTxn.make
      const error = yield* Effect.flip(JobTxn.awaitOutcome(txn))
      assert.strictEqual(error._tag, "TxnEmpty")
      assert.strictEqual(error.message, "The transaction has no members")
      // JobTxn.cancel has nothing to do either.
      yield* JobTxn.cancel(txn)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a member whose creation failed never joined: still no members", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const failed = yield* Effect.flip(jobs.create({ type: "test", id: "x", txn, params: { fail: ["make"] } }))
      assert.strictEqual(failed._tag, "JobSetupFailed")
      assert.strictEqual((yield* Effect.flip(JobTxn.awaitOutcome(txn)))._tag, "TxnEmpty")
      // Once a member joins, the outcome is there to wait for.
      yield* jobs.run({ type: "test", id: "y", txn, params: { iterations: 0 } })
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
    }).pipe(Effect.provide(Testing.layer)))
})
