/**
 * Engine bugs found by the property tests (verbs.property.test.ts,
 * txn.property.test.ts), each minimised to a concrete scenario. Each test states
 * what the spec requires, so it fails while the bug is there.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../../src/Jobs.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import * as Testing from "../../src/testing.ts"

const commitOrAbort = (calls: ReadonlyArray<Testing.CallbackName>) =>
  calls.filter((c) => c === "commit" || c === "abort")

describe("regressions found by the verb properties", () => {
  // A force cancel must win when it lifts the user's pause. QEMU's job_cancel_async
  // drops the pause count without entering the job and sets `force_cancel` before
  // job_cancel enters it, so the job always wakes up cancelled (spec §3.8, §3.10).
  // Here the job wakes up (and runs on) before the cancel flags are set.

  it.effect("force cancel of a job paused before it started: cancelled, never committed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.create({ type: "test", id: "j0", params: { iterations: 0 } })
      yield* jobs.pause(job) // paused while CREATED
      yield* jobs.start(job) // parks at its first pause point
      assert.strictEqual(job.status, "paused")
      yield* jobs.cancel(job, { force: true })
      const outcome = yield* jobs.awaitOutcome(job)
      assert.deepStrictEqual(commitOrAbort(log.of("j0")), ["abort"]) // observed: ["commit"]
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" }) // observed: Succeeded
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancelSync(force) of a running job the user paused: Cancelled, never committed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.run({ type: "test", id: "j0", params: { iterations: 1, sleepMillis: 1 } })
      yield* jobs.pause(job)
      yield* TestClock.adjust(1)
      assert.strictEqual(job.status, "paused")
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" }) // observed: Succeeded
      assert.deepStrictEqual(commitOrAbort(log.of("j0")), ["abort"]) // observed: ["commit"]
      assert.isTrue(job.isCancelled) // observed: false
    }).pipe(Effect.provide(Testing.layer)))

  // No driver callback may follow `free` ("last call, when the job is dismissed"),
  // nor any but `free` follow `clean`. When the driver's `cancel` callback fails
  // on a user-paused job, the job fails and concludes (abort, clean, free) inside
  // the cancel, and the cancel then still calls `userResume` on it.
  it.effect("a failing cancel callback on a user-paused job: no userResume after free", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.run({
        type: "test",
        id: "j0",
        params: { iterations: 1, sleepMillis: 10, softCancel: true, fail: ["cancel"] }
      })
      yield* jobs.pause(job)
      assert.strictEqual(job.status, "paused")
      yield* jobs.cancel(job, { force: true })
      yield* jobs.awaitOutcome(job)
      const calls = log.of("j0")
      // observed: [make, run, pause, cancel, resume, abort, clean, free, userResume]
      assert.strictEqual(calls[calls.length - 1], "free")
      assert.isBelow(calls.indexOf("userResume"), calls.indexOf("clean"))
    }).pipe(Effect.provide(Testing.layer)))
})

/**
 * Runs `scenario` once for each scheduler yield interval in `from..to`: the
 * scheduler lets other fibers run every `n` operations (effect's default is
 * 2048), so each `n` splits the engine's multi-step operations at other points.
 * Returns the `n`s for which `check` reports a problem (or the run died), with it.
 */
const sweep = <A>(
  from: number,
  to: number,
  scenario: Effect.Effect<A, unknown, Jobs | Testing.CallbackLog>,
  check: (a: A) => string | undefined
): Effect.Effect<Array<string>> =>
  Effect.gen(function*() {
    const problems: Array<string> = []
    for (let n = from; n <= to; n++) {
      // A fiber of its own, so that it counts its operations from zero.
      const fiber = yield* Effect.forkDetach(scenario.pipe(
        Effect.provide(Testing.layer),
        Effect.provideService(Scheduler.PreventSchedulerYield, false),
        Effect.provideService(Scheduler.MaxOpsBeforeYield, n)
      ))
      const exit = yield* Fiber.await(fiber)
      const problem = Exit.isSuccess(exit) ? check(exit.value) : `died: ${Cause.pretty(exit.cause).split("\n")[0]}`
      if (problem !== undefined) problems.push(`yield every ${n} ops: ${problem}`)
    }
    return problems
  })

const ends = (calls: ReadonlyArray<Testing.CallbackName>) => calls.filter((c) => c === "commit" || c === "abort")

/** Every member got the end the outcome says: `commit` for Committed, `abort` for Aborted, once. */
const splitTxn = (result: {
  readonly outcome: JobTxn.TxnOutcome
  readonly calls: ReadonlyArray<ReadonlyArray<Testing.CallbackName>>
}): string | undefined => {
  const expected = result.outcome._tag === "Committed" ? "commit" : "abort"
  const got = result.calls.map((calls) => ends(calls).join("+"))
  return got.every((e) => e === expected) ? undefined : `${JSON.stringify(result.outcome)} but members got ${got.join(", ")}`
}

/** No callback but `free` after `clean`, none after `free`, and every job freed. */
const afterFree = (calls: ReadonlyArray<ReadonlyArray<Testing.CallbackName>>): string | undefined => {
  for (const c of calls) {
    const clean = c.indexOf("clean")
    if (c[c.length - 1] !== "free" || (clean >= 0 && c.slice(clean + 1).join() !== "free")) return c.join(", ")
  }
  return undefined
}

describe("regressions found by the transaction properties (scheduler yields)", () => {
  // All or nothing (spec §5.1): a hard cancel that lands while the transaction
  // finalizes (phase `finalizing`) aborts every member. Observed, for a few yield
  // intervals: `a` commits, `b` aborts, and JobTxn.awaitOutcome says Aborted.
  //
  // Cause (src/internal/txn.ts): `cancelCompletedMember` takes the decision
  // (finalizing → aborting, "mark") in one `Effect.tx` and sets the member's cancel
  // flags (`markCancelled`) in a later step. When the finalizing fiber runs in
  // between, `runFinalization` sees the phase `aborting` but neither a failing nor
  // a cancelled member, falls back to `txn.members[0]` as the cause, and
  // `abortTxn` skips force-cancelling the cause (it assumes the cause failed): so
  // `members[0]`, which succeeded, is finalized with `commit` (QEMU's hole, §9.7).
  // The same gap lets the flags land on a job that already concluded (a COMPLETED
  // event for a job that ends with isCancelled = true).
  it("a force cancel while the transaction finalizes aborts every member", () =>
    Effect.runPromise(Effect.gen(function*() {
      const problems: Array<string> = []
      for (const softCancel of [false, true]) {
        const scenario = Effect.gen(function*() {
          const jobs = yield* Jobs
          const log = yield* Testing.CallbackLog
          const txn = yield* JobTxn.make
          yield* jobs.create({ type: "test", id: "a", txn, params: { iterations: 0, softCancel } })
          yield* jobs.create({ type: "test", id: "b", txn, params: { iterations: 0, softCancel } })
          // The moment `a` is PENDING (the transaction is finalizing), force-cancel `b`.
          yield* Effect.forkChild(
            Effect.andThen(jobs.awaitStatus("a", "pending"), Effect.ignore(jobs.cancel("b", { force: true }))),
            { startImmediately: true }
          )
          yield* jobs.start("a")
          yield* jobs.start("b")
          return { outcome: yield* JobTxn.awaitOutcome(txn), calls: [log.of("a"), log.of("b")] }
        })
        problems.push(...(yield* sweep(3, 60, scenario, splitTxn)))
      }
      // observed: e.g. "yield every 12 ops: {"_tag":"Aborted","error":"Operation canceled"} but members got commit, abort"
      assert.deepStrictEqual(problems, [])
    })))

  it("JobTxn.cancel while the transaction finalizes: the outcome agrees with the member", () =>
    Effect.runPromise(Effect.gen(function*() {
      const problems: Array<string> = []
      for (const softCancel of [false, true]) {
        const scenario = Effect.gen(function*() {
          const jobs = yield* Jobs
          const log = yield* Testing.CallbackLog
          const txn = yield* JobTxn.make
          yield* jobs.create({ type: "test", id: "a", txn, params: { iterations: 0, softCancel } })
          yield* Effect.forkChild(Effect.andThen(jobs.awaitStatus("a", "pending"), JobTxn.cancel(txn)), {
            startImmediately: true
          })
          yield* jobs.start("a")
          return { outcome: yield* JobTxn.awaitOutcome(txn), calls: [log.of("a")] }
        })
        problems.push(...(yield* sweep(3, 60, scenario, splitTxn)))
      }
      // observed: e.g. "yield every 16 ops: {"_tag":"Aborted","error":"Operation canceled"} but members got commit"
      assert.deepStrictEqual(problems, [])
    })))

  // The driver contract: no callback after `free`, none but `free` after `clean`;
  // and a move outside the transition table is an engine defect.
  //
  // Cause (src/internal/cancel.ts, cancelRequest.ts, completion.ts): `cancelJob`
  // checks the job's status in one step and acts on it in later ones —
  // `requestCancel` calls the driver's `cancel` (and `userResume`), then
  // `completeUnstarted` moves a never-started job to ABORTING. The abort routine
  // of the job's transaction (or a second cancel) may finalize and dismiss the job
  // in between: the driver's `cancel` then runs after `clean`/`free`, or
  // `settleOutcomeUnsafe` tries NULL → ABORTING and throws, and `JobTxn.cancel`
  // (or `Jobs.cancel`) dies.
  it("JobTxn.cancel racing with the abort routine: no callback after free, no defect", () =>
    Effect.runPromise(Effect.gen(function*() {
      const problems: Array<string> = []
      const topologies: ReadonlyArray<ReadonlyArray<readonly [string, Testing.TestParams, boolean]>> = [
        // `a` fails at once (its fiber runs the abort routine); `b` never started.
        [["a", { iterations: 0, result: "fail" }, true], ["b", { iterations: 0, softCancel: true }, false]],
        // The same, with a member that is sleeping when the abort starts.
        [
          ["x", { iterations: 3, sleepMillis: 5, softCancel: true }, true],
          ["a", { iterations: 0, result: "fail" }, true],
          ["b", { iterations: 0, softCancel: true }, false]
        ]
      ]
      for (const members of topologies) {
        const scenario = Effect.gen(function*() {
          const jobs = yield* Jobs
          const log = yield* Testing.CallbackLog
          const txn = yield* JobTxn.make
          for (const [id, params] of members) yield* jobs.create({ type: "test", id, txn, params })
          for (const [id, , start] of members) if (start) yield* jobs.start(id)
          yield* JobTxn.cancel(txn)
          yield* JobTxn.awaitOutcome(txn)
          return members.map(([id]) => log.of(id))
        })
        problems.push(...(yield* sweep(3, 120, scenario, afterFree)))
      }
      // observed: "yield every 73 ops: died: Error: effect-jobs: illegal status change null -> aborting for job 'b'",
      // "yield every 41 ops: make, run, cancel, abort, clean, cancel, free" and
      // "yield every 54 ops: make, run, cancel, abort, clean, free, cancel"
      assert.deepStrictEqual(problems, [])
    })))
})
