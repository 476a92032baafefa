/**
 * Property-based test of the durable engine across a crash: random jobs of the
 * test driver (alone, or in explicit transactions; some with manual finalize or
 * dismiss) get random verbs, wake-ups, clock moves and waits for durability,
 * and from a random commit on the store takes no more writes (a power cut, in
 * one process: the same memory store behind a switch). The engine is then
 * closed, as a dead process would be, and a second engine recovers from the
 * store. Every run must:
 *
 * 1. lose no job the client was durably told of, bring back no dismissed one,
 *    and show no id twice or one that was never created;
 * 2. replay, from sequence number 0, exactly the events the first engine's
 *    subscriber saw, unchanged, then the recovery's, every number above the last;
 * 3. leave every transaction all-or-nothing: its members concluded the same
 *    way, and no member's driver got both `commit` and `abort` (nor `commit` in
 *    a transaction that aborted, nor `abort` in one that committed);
 * 4. leave every job CONCLUDED, each interrupted one with its interrupted error.
 *
 * The driver callbacks (the second half of 3) are a property of their own, so
 * that each half reports its own counterexample.
 *
 * `FC_RUNS` sets the number of runs of each (default 1000); `FC_SEED` and
 * `FC_PATH` replay a reported failure (pick the property with `vitest -t`);
 * `FC_STATS` prints what the runs covered.
 */
import { describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as fc from "fast-check"
import {
  checkCallbacks,
  checkJobs,
  checkOutcomes,
  checkRecovered,
  checkSequence,
  crashReport
} from "./crashInvariants.ts"
import { crashScenario } from "./crashScenario.ts"
import { type CrashRun, runCrash } from "./runCrash.ts"

const numRuns = Number(process.env.FC_RUNS ?? 1000)
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const path = process.env.FC_PATH

const scenarios = crashScenario({ maxJobs: 6, maxSteps: 40, maxCut: 40 })

/** What the runs covered, to make sure the properties are not vacuous. */
const makeCoverage = () => ({
  runs: 0,
  /** The cut came at a commit (rather than after the last step). */
  cutAtCommit: 0,
  /** Runs where the client was durably told of a job. */
  toldDurably: 0,
  /** Jobs the recovery brought back CONCLUDED, failed as interrupted, committed. */
  concluded: 0,
  interrupted: 0,
  committed: 0,
  /** Transactions with two members or more that concluded. */
  sharedOutcomes: 0,
  /** Jobs dismissed before the cut. */
  dismissedBefore: 0
})

type Coverage = ReturnType<typeof makeCoverage>

const concludedIn = (run: CrashRun, id: string) =>
  run.replay.some((e) => e._tag === "StatusChange" && e.id === id && e.status === "concluded")

const count = (coverage: Coverage, run: CrashRun) => {
  coverage.runs++
  if (run.cut.startsWith("at commit")) coverage.cutAtCommit++
  if (run.durablyCreated.size > 0) coverage.toldDurably++
  coverage.concluded += run.report?.concluded.length ?? 0
  coverage.interrupted += run.report?.interrupted.length ?? 0
  coverage.committed += run.report?.committed.length ?? 0
  coverage.dismissedBefore += run.seenBefore.filter((e) => e._tag === "StatusChange" && e.status === "null").length
  const members = new Map<string, number>()
  for (const job of run.created) if (concludedIn(run, job.id)) members.set(job.txn, (members.get(job.txn) ?? 0) + 1)
  coverage.sharedOutcomes += Array.from(members.values()).filter((n) => n > 1).length
}

/** Not vacuous: the cut lands at commits, jobs come back in every way, transactions share outcomes. */
const checkCoverage = (coverage: Coverage) => {
  if (process.env.FC_STATS !== undefined) console.log(JSON.stringify(coverage))
  if (numRuns < 500 || seed !== undefined) return
  const summary = JSON.stringify(coverage)
  const atLeast = (share: number, n: number, what: string) => {
    if (n < share * coverage.runs) throw new Error(`too few ${what}: ${summary}`)
  }
  atLeast(0.3, coverage.cutAtCommit, "cuts at a commit")
  atLeast(0.15, coverage.toldDurably, "runs with a durably created job")
  atLeast(0.05, coverage.concluded, "jobs brought back CONCLUDED")
  atLeast(0.3, coverage.interrupted, "jobs failed as interrupted")
  atLeast(0.05, coverage.sharedOutcomes, "transactions with several concluded members")
  atLeast(0.1, coverage.dismissedBefore, "jobs dismissed before the cut")
}

const runChecked = (coverage: Coverage, checks: (run: CrashRun) => ReadonlyArray<string>) =>
  fc.asyncProperty(scenarios, async (s) => {
    const exit = await Effect.runPromiseExit(runCrash(s))
    if (Exit.isFailure(exit)) throw new Error(`the run died:\n${Cause.pretty(exit.cause)}`)
    const run = exit.value
    const violations = [...run.violations, ...(run.finished ? checks(run) : [])]
    if (violations.length > 0) throw new Error(crashReport(run, violations))
    count(coverage, run)
  })

const assertOptions = {
  numRuns,
  // A run takes milliseconds; one that hangs fails (with its seed) instead of blocking the suite.
  timeout: 20_000,
  ...(seed === undefined ? {} : { seed }),
  ...(path === undefined ? {} : { path })
}

describe("durable engine with crashes (property)", () => {
  it("loses no job, repeats no seq, concludes transactions all-or-nothing, and leaves nothing half-way", async () => {
    const coverage = makeCoverage()
    await fc.assert(
      runChecked(coverage, (run) => [
        ...checkJobs(run).map((v) => `(1 jobs) ${v}`),
        ...checkSequence(run).map((v) => `(2 sequence) ${v}`),
        ...checkOutcomes(run).map((v) => `(3 all-or-nothing) ${v}`),
        ...checkRecovered(run).map((v) => `(4 recovered) ${v}`)
      ]),
      assertOptions
    )
    checkCoverage(coverage)
  }, 600_000)

  it("gives no member of a transaction both commit and abort, across the crash", async () => {
    const coverage = makeCoverage()
    await fc.assert(
      runChecked(coverage, (run) => checkCallbacks(run).map((v) => `(3 all-or-nothing) ${v}`)),
      assertOptions
    )
    checkCoverage(coverage)
  }, 600_000)
})
