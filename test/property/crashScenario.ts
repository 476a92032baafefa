/**
 * Random scenarios for the property test of the durable engine with crashes: a
 * few jobs of the test driver (alone, or members of one of up to two explicit
 * transactions; some with manual finalize or dismiss), created one by one in
 * the middle of random verbs, wake-ups, clock moves and waits for durability,
 * and the commit from which the store takes no more writes (the power cut).
 */
import * as fc from "fast-check"
import type { TestParams } from "../../src/testing.ts"

export interface CrashJobSpec {
  readonly params: TestParams
  /** The explicit transaction it joins (an index), or none: a transaction of its own. */
  readonly group: number | undefined
  readonly manualFinalize: boolean
  readonly manualDismiss: boolean
  /** Started right after it is created; otherwise only a `start` step starts it. */
  readonly startAtOnce: boolean
}

export type CrashVerb =
  | "start"
  | "pause"
  | "resume"
  | "softCancel"
  | "forceCancel"
  | "complete"
  | "finalize"
  | "dismiss"
  | "enter"

export const crashVerbs: ReadonlyArray<CrashVerb> = [
  "start",
  "pause",
  "resume",
  "softCancel",
  "forceCancel",
  "complete",
  "finalize",
  "dismiss",
  "enter"
]

export type CrashStep =
  /** Creates the next job of the scenario that has not been created yet, and starts it if it starts at once. */
  | { readonly _tag: "Create" }
  /** A verb on one of the jobs created so far (its index taken modulo their number). */
  | { readonly _tag: "Verb"; readonly verb: CrashVerb; readonly job: number }
  | { readonly _tag: "Adjust"; readonly millis: number }
  /** Lets the other fibers run (the store's writer among them) without moving the clock, `times` turns. */
  | { readonly _tag: "Yield"; readonly times: number }
  /** `Jobs.durable`: what the client was told so far is in the store once it returns. */
  | { readonly _tag: "Durable" }

export interface CrashScenario {
  readonly jobs: ReadonlyArray<CrashJobSpec>
  readonly steps: ReadonlyArray<CrashStep>
  /**
   * The number of the first commit that fails (1 is the first commit); a
   * scenario that never gets that far is cut once its steps are done.
   */
  readonly cutAt: number
  /**
   * Let the scheduler yield every this many operations, so that the store's
   * writer commits in the middle of other fibers' work (a transaction being
   * finalized, say); none: effect's default (2048).
   */
  readonly opsPerYield: number | undefined
}

/** How many explicit transactions a scenario may have. */
export const maxGroups = 2

const params: fc.Arbitrary<TestParams> = fc.record({
  iterations: fc.integer({ min: 0, max: 3 }),
  wait: fc.constantFrom("sleep" as const, "yield" as const),
  sleepMillis: fc.integer({ min: 1, max: 30 }),
  converge: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  softCancel: fc.boolean(),
  result: fc.oneof(
    { weight: 5, arbitrary: fc.constant("succeed" as const) },
    { weight: 1, arbitrary: fc.constant("fail" as const) }
  ),
  fail: fc.oneof(
    { weight: 8, arbitrary: fc.constant([]) },
    { weight: 1, arbitrary: fc.constant(["prepare" as const]) }
  )
})

const jobSpec: fc.Arbitrary<CrashJobSpec> = fc.record({
  params,
  group: fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: maxGroups - 1 }) }
  ),
  manualFinalize: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  manualDismiss: fc.boolean(),
  startAtOnce: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })
})

const step: fc.Arbitrary<CrashStep> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ _tag: "Create" as const }) },
  {
    weight: 8,
    arbitrary: fc.record({
      _tag: fc.constant("Verb" as const),
      verb: fc.constantFrom(...crashVerbs),
      job: fc.nat({ max: 7 })
    })
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Adjust" as const), millis: fc.integer({ min: 1, max: 60 }) }) },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Yield" as const), times: fc.integer({ min: 1, max: 4 }) }) },
  { weight: 2, arbitrary: fc.constant({ _tag: "Durable" as const }) }
)

export const crashScenario = (options: { readonly maxJobs: number; readonly maxSteps: number; readonly maxCut: number }) =>
  fc.record({
    jobs: fc.array(jobSpec, { minLength: 2, maxLength: options.maxJobs, size: "medium" }),
    steps: fc.array(step, { minLength: 1, maxLength: options.maxSteps, size: "medium" }),
    // Most scenarios commit a handful of times: early cuts are the ones that land.
    cutAt: fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 6 }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: options.maxCut }) }
    ),
    // (Below 3 operations between yields, effect's scheduler makes no progress at all.)
    opsPerYield: fc.constantFrom(undefined, undefined, 3, 5, 8, 13, 50)
  })
