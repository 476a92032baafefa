/**
 * Property-based tests of the verbs: random jobs of the test driver (some with
 * callbacks that fail or die, some left unstarted for a while) get random verbs
 * (some of whose callers are interrupted part-way), wake-ups, starts and clock
 * moves, then everything is cancelled. Every run must
 * keep the transition table, accept or refuse each verb exactly as the verb
 * model says, give every job its lifecycle callbacks exactly once, publish
 * events that are the status history, and never die. Also checked: a job whose
 * cancel was hard never commits and ends cancelled; a user-paused job stays
 * parked until resumed or cancelled; `list` agrees with the `Job` objects; a
 * shared transaction ends all committed or all aborted.
 *
 * `FC_RUNS` sets the number of runs (default 1000); `FC_SEED` and `FC_PATH`
 * replay a reported failure.
 */
import { describe, it } from "@effect/vitest"
import { Cause, Effect, Exit } from "effect"
import * as fc from "fast-check"
import { checkRun, failureReport } from "./invariants.ts"
import { runScenario } from "./runScenario.ts"
import { scenario } from "./scenario.ts"

const numRuns = Number(process.env.FC_RUNS ?? 1000)
const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const path = process.env.FC_PATH

const maxSteps = 60

const property = fc.asyncProperty(scenario({ maxSteps }), async (s) => {
  const exit = await Effect.runPromiseExit(runScenario(s))
  // (e) The test's own Effect must not die.
  if (Exit.isFailure(exit)) throw new Error(`the run died:\n${Cause.pretty(exit.cause)}`)
  const run = exit.value
  const violations = [...run.violations, ...checkRun(run)]
  if (violations.length > 0) throw new Error(failureReport(run, violations))
})

describe("verbs (property)", () => {
  it("keep the tables, the verb model, the callback contract and the event history", async () => {
    await fc.assert(property, {
      numRuns,
      ...(seed === undefined ? {} : { seed }),
      ...(path === undefined ? {} : { path })
    })
  }, 600_000)
})
