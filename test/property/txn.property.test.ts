/**
 * Property-based test of transactions (spec §5): 1–20 jobs of the test driver in
 * one transaction, created first and then started, each with a random way for
 * `run` to end (succeed, fail, die, wait until cancelled, go READY and wait for
 * `complete`), random manual finalize and dismiss, some callbacks failing; then
 * random verbs (pause, resume, soft and force cancel, complete, finalize,
 * dismiss, setSpeed, enter, start, `JobTxn.cancel`, and the waits — some of
 * whose callers are interrupted part-way) at random virtual times; then
 * everything is let finish (READY jobs completed, PENDING ones finalized) and what
 * cannot finish is cancelled, and the `Jobs` layer closes.
 *
 * Every run must: end all committed or all aborted, with `JobTxn.awaitOutcome`
 * agreeing; give each member one `commit` or `abort`, `clean` once, `free` once,
 * every `prepare` before any `commit`; leave the member whose failure aborted the
 * transaction its own error and the others `Operation canceled`; keep every
 * status change in the transition table and each job's events in order; accept
 * or refuse every verb as the verb model says; and, when nothing could fail or
 * cancel the transaction, commit it. (The invariants are in `invariants.ts`,
 * shared with the verbs property.)
 *
 * The property runs twice: as the verbs property does, with scheduler-driven
 * yields turned off, so that each verb meets exactly the state read before it
 * and its result is checked against the verb model; and "interleaved", with the
 * scheduler yielding every few operations (3–50, random), so that members
 * finish, fail and get cancelled in the middle of each other's decisions — the
 * races the transaction's `Effect.tx` decisions are there for. Verb results are
 * then only traced. `FC_INTERLEAVED=0` skips the interleaved run.
 *
 * `FC_RUNS` sets the number of runs of each (default 500); `FC_SEED` and
 * `FC_PATH` replay a reported failure (fast-check prints both; pick the property
 * with `vitest -t`); `FC_STATS` prints what the runs covered.
 */
import { describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as fc from "fast-check"
import { checkRun, failureReport } from "./invariants.ts"
import { type RunOptions, type RunRecord, runScenario } from "./runScenario.ts"
import type { Scenario } from "./scenario.ts"
import { txnScenario } from "./txnScenario.ts"

const numRuns = Number(process.env.FC_RUNS ?? 500)
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const path = process.env.FC_PATH
const interleaved = process.env.FC_INTERLEAVED !== "0"

const maxSteps = 40

/** What the runs covered, to make sure the property is not vacuous. */
const makeCoverage = () => ({
  runs: 0,
  committed: 0,
  abortedByFailure: 0,
  abortedByCancel: 0,
  abortedInPrepare: 0,
  manualFinalize: 0,
  leftovers: 0,
  members: 0,
  /** Hard cancels by the status they were sent in (not tracked for members when interleaved). */
  hardCancelIn: {} as Record<string, number>
})

type Coverage = ReturnType<typeof makeCoverage>

const count = (coverage: Coverage, run: RunRecord) => {
  const txn = run.txn
  coverage.runs++
  for (const jr of run.jobs) {
    const status = jr.hardCancelledIn
    if (status !== undefined) coverage.hardCancelIn[status] = (coverage.hardCancelIn[status] ?? 0) + 1
  }
  if (txn?.outcome === undefined) return
  coverage.members += txn.members.length
  if (txn.outcome._tag === "Committed") {
    coverage.committed++
    if (run.jobs.some((jr) => jr.spec.manualFinalize && !jr.makeFails)) coverage.manualFinalize++
  } else if (txn.outcome.error === "Operation canceled") coverage.abortedByCancel++
  else coverage.abortedByFailure++
  if (txn.outcome._tag === "Aborted" && txn.outcome.error.startsWith("test job: prepare")) coverage.abortedInPrepare++
  if (txn.leftovers.length > 0) coverage.leftovers++
}

/** Not vacuous: a full run sees both outcomes, every kind of abort and manual finalize. */
const checkCoverage = (coverage: Coverage, interleaved: boolean) => {
  if (process.env.FC_STATS !== undefined) console.log(JSON.stringify(coverage))
  if (numRuns < 200 || seed !== undefined) return
  const summary = JSON.stringify(coverage)
  const atLeast = (share: number, n: number, what: string) => {
    if (n < share * coverage.runs) throw new Error(`too few ${what}: ${summary}`)
  }
  atLeast(0.2, coverage.committed, "committed transactions")
  atLeast(0.1, coverage.abortedByFailure, "transactions aborted by a failure")
  atLeast(0.05, coverage.abortedByCancel, "transactions aborted by a cancel")
  atLeast(0.01, coverage.abortedInPrepare, "transactions aborted by a failing prepare")
  atLeast(0.1, coverage.manualFinalize, "committed transactions with manual finalize")
  if (!interleaved) {
    // Hard cancels of members that had already finished (their `run` returned).
    atLeast(0.01, coverage.hardCancelIn["waiting"] ?? 0, "hard cancels of WAITING members")
    atLeast(0.005, coverage.hardCancelIn["pending"] ?? 0, "hard cancels of PENDING members")
  }
}

const runAndCheck = async (coverage: Coverage, s: Scenario, options: RunOptions) => {
  const exit = await Effect.runPromiseExit(runScenario(s, options))
  if (Exit.isFailure(exit)) throw new Error(`the run died:\n${Cause.pretty(exit.cause)}`)
  const run = exit.value
  const violations = [...run.violations, ...checkRun(run)]
  if (violations.length > 0) throw new Error(failureReport(run, violations))
  count(coverage, run)
}

const assertOptions = {
  numRuns,
  // A run takes milliseconds; one that hangs fails (with its seed) instead of blocking the suite.
  timeout: 10_000,
  ...(seed === undefined ? {} : { seed }),
  ...(path === undefined ? {} : { path })
}

describe("transactions (property)", () => {
  it("commit all or abort all, with the callbacks, errors, events and outcome to match", async () => {
    const coverage = makeCoverage()
    await fc.assert(
      fc.asyncProperty(txnScenario({ maxSteps }), (s) => runAndCheck(coverage, s, {})),
      assertOptions
    )
    checkCoverage(coverage, false)
  }, 600_000)

  // What it found is kept as plain tests in regressions.test.ts
  // ("regressions found by the transaction properties").
  it.skipIf(!interleaved)("interleaved: the same with the scheduler yielding every few operations", async () => {
    const coverage = makeCoverage()
    await fc.assert(
      fc.asyncProperty(
        txnScenario({ maxSteps, interleaved: true }),
        // (Below 3 operations between yields, effect's scheduler makes no progress at all.)
        fc.constantFrom(3, 4, 5, 8, 13, 21, 50),
        (s, schedulerYields) => runAndCheck(coverage, s, { schedulerYields })
      ),
      assertOptions
    )
    checkCoverage(coverage, true)
  }, 600_000)
})
