/**
 * Random scenarios for the property tests of the verbs: a few jobs of the test
 * driver with random parameters (including callbacks that fail or die), then a
 * random sequence of verbs (some of whose callers are interrupted part-way),
 * wake-ups, starts and clock moves, then an ending that cancels everything. The
 * steps, endings and pieces here are shared with the property test of
 * transactions (`txnScenario.ts`).
 */
import * as fc from "fast-check"
import type { JobStatus } from "../../src/JobStatus.ts"
import { type CallbackName, callbackNames, type TestParams } from "../../src/testing.ts"

/** How a step names its job: by id, or by the `Job` object `create` returned. */
export type Via = "id" | "object"

/** A job of the scenario (by its index, taken modulo the number of jobs), or an id nobody has. */
export type Target =
  | { readonly _tag: "Job"; readonly index: number; readonly via: Via }
  | { readonly _tag: "Unknown"; readonly id: string }

export type VerbCall =
  | { readonly verb: "pause" }
  | { readonly verb: "resume" }
  | { readonly verb: "cancel"; readonly force: boolean }
  | { readonly verb: "complete" }
  | { readonly verb: "finalize" }
  | { readonly verb: "dismiss" }
  | { readonly verb: "setSpeed"; readonly speed: number }
  | { readonly verb: "change" }

/** A call whose caller an `Interrupt` step gives up on: a verb, `start`, a wait, or `JobTxn.cancel`. */
export type CallerCall =
  | VerbCall
  | { readonly verb: "start" }
  | { readonly verb: "cancelSync"; readonly force: boolean }
  | { readonly verb: "completeSync" }
  | { readonly verb: "finishSync" }
  | { readonly verb: "awaitOutcome" }
  | { readonly verb: "txnCancel" }

export type Step =
  | { readonly _tag: "Verb"; readonly call: VerbCall; readonly target: Target }
  /**
   * Makes `call` in a fiber of its own, with the scheduler yielding every few
   * operations, and interrupts that fiber once it has had `turns` scheduler turns
   * (as a client that times out or hangs up would): the engine must go on as if
   * the call had been made in full or not at all.
   */
  | { readonly _tag: "Interrupt"; readonly call: CallerCall; readonly target: Target; readonly turns: number }
  | { readonly _tag: "Enter"; readonly target: Target }
  | { readonly _tag: "Start"; readonly target: Target }
  | { readonly _tag: "Adjust"; readonly millis: number }
  /** Lets the job fibers run without moving the clock (`Effect.yieldNow`, `times` times). */
  | { readonly _tag: "Yield"; readonly times: number }
  /** `JobTxn.cancel` of the scenario's shared transaction. */
  | { readonly _tag: "TxnCancel" }
  /**
   * Sets a trap: a fiber that waits until `watch` reaches `status` (`Jobs.awaitStatus`)
   * and then does `action` to `act` — a verb landing at the moment of a status change
   * (e.g. a cancel while the transaction commits).
   */
  | {
    readonly _tag: "Trap"
    readonly watch: Target
    readonly status: JobStatus
    readonly act: Target
    readonly action: TrapAction
  }

export type TrapAction = "softCancel" | "forceCancel" | "txnCancel" | "complete" | "finalize" | "dismiss"

export interface JobSpec {
  readonly params: TestParams
  readonly manualFinalize: boolean
  readonly manualDismiss: boolean
  /** Joins the scenario's one shared transaction instead of getting its own. */
  readonly sharedTxn: boolean
  /** Started right after creation; otherwise only a `Start` step starts it. */
  readonly startAtOnce: boolean
}

/**
 * - `cancelSync`: every job is force-cancelled with `cancelSync` (twice, as QEMU's
 *   cancel-all visits a manual-dismiss job twice), then the `Jobs` scope closes;
 * - `closeScope`: the `Jobs` scope just closes (its finalizer cancels everything);
 * - `Settle`: the jobs are let finish — unstarted ones started, user pauses lifted,
 *   READY ones completed, PENDING ones finalized, waiting ones entered, the clock
 *   moved — for up to `rounds` rounds; what is left then is cancelled as
 *   `leftovers` says (`JobTxn.cancel`, a force cancel of one job, or the closing
 *   `Jobs` scope), and the `Jobs` scope closes. With `cancel`, the first job met
 *   in status `when` is cancelled (`how`) instead of being helped along. With
 *   `softCancelReady`, a READY job whose driver turns a soft cancel into
 *   completion gets that instead of `complete`.
 */
export type Ending =
  | "cancelSync"
  | "closeScope"
  | {
    readonly _tag: "Settle"
    readonly rounds: number
    readonly leftovers: Leftovers
    readonly cancel?: SettleCancel | undefined
    readonly softCancelReady?: boolean | undefined
  }

export type Leftovers = "txnCancel" | "forceCancel" | "closeScope"

export interface SettleCancel {
  readonly when: "any" | "ready" | "waiting" | "pending"
  readonly how: "soft" | "force" | "txn"
}

export interface Scenario {
  readonly jobs: ReadonlyArray<JobSpec>
  readonly steps: ReadonlyArray<Step>
  readonly ending: Ending
  /**
   * Nothing in the scenario can fail or cancel the shared transaction (no failing
   * run or callback on the failure path, no cancel but soft ones of READY jobs
   * whose driver turns them into completion, every job able to finish), so it
   * must commit.
   */
  readonly mustCommit?: boolean | undefined
}

/** The callbacks a test job may be told to fail or die in, apart from `make` (rarer: it fails the job early). */
const failableCallbacks: ReadonlyArray<CallbackName> = callbackNames.filter((name) => name !== "make")

export const callbackList: fc.Arbitrary<ReadonlyArray<CallbackName>> = fc.oneof(
  { weight: 12, arbitrary: fc.constant([]) },
  { weight: 6, arbitrary: fc.subarray([...failableCallbacks], { minLength: 1, maxLength: 2 }) },
  { weight: 1, arbitrary: fc.constant<ReadonlyArray<CallbackName>>(["make"]) }
)

export const testParams: fc.Arbitrary<TestParams> = fc.record({
  iterations: fc.integer({ min: 0, max: 5 }),
  wait: fc.constantFrom("sleep" as const, "yield" as const),
  sleepMillis: fc.integer({ min: 0, max: 50 }),
  converge: fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  softCancel: fc.boolean(),
  completable: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  result: fc.oneof(
    { weight: 4, arbitrary: fc.constant("succeed" as const) },
    { weight: 1, arbitrary: fc.constant("fail" as const) },
    { weight: 1, arbitrary: fc.constant("die" as const) }
  ),
  fail: callbackList,
  die: callbackList
})

export const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
  params: testParams,
  manualFinalize: fc.boolean(),
  manualDismiss: fc.boolean(),
  sharedTxn: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 2, arbitrary: fc.constant(true) }),
  startAtOnce: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })
})

/** A target among `jobs` jobs (the index is taken modulo the number of jobs the scenario has). */
export const targetAmong = (jobs: number): fc.Arbitrary<Target> => fc.oneof(
  {
    weight: 12,
    arbitrary: fc.record({
      _tag: fc.constant("Job" as const),
      index: fc.integer({ min: 0, max: jobs - 1 }),
      via: fc.oneof({ weight: 4, arbitrary: fc.constant("id" as const) }, {
        weight: 1,
        arbitrary: fc.constant("object" as const)
      })
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Unknown" as const), id: fc.constantFrom("nope", "j99") }) }
)

export const target: fc.Arbitrary<Target> = targetAmong(4)

export const speed: fc.Arbitrary<number> = fc.oneof(
  fc.constant(0),
  fc.integer({ min: -1000, max: -1 }),
  fc.integer({ min: 1, max: 1000 })
)

export const verbCall: fc.Arbitrary<VerbCall> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ verb: "pause" as const }) },
  { weight: 3, arbitrary: fc.constant({ verb: "resume" as const }) },
  { weight: 3, arbitrary: fc.record({ verb: fc.constant("cancel" as const), force: fc.boolean() }) },
  { weight: 3, arbitrary: fc.constant({ verb: "complete" as const }) },
  { weight: 2, arbitrary: fc.constant({ verb: "finalize" as const }) },
  { weight: 2, arbitrary: fc.constant({ verb: "dismiss" as const }) },
  { weight: 2, arbitrary: fc.record({ verb: fc.constant("setSpeed" as const), speed }) },
  { weight: 1, arbitrary: fc.constant({ verb: "change" as const }) }
)

export const adjust: fc.Arbitrary<Step> = fc.record({
  _tag: fc.constant("Adjust" as const),
  millis: fc.oneof(
    { weight: 1, arbitrary: fc.constant(0) },
    { weight: 4, arbitrary: fc.integer({ min: 1, max: 30 }) },
    { weight: 1, arbitrary: fc.integer({ min: 31, max: 250 }) }
  )
})

export const yieldStep: fc.Arbitrary<Step> = fc.record({
  _tag: fc.constant("Yield" as const),
  times: fc.integer({ min: 1, max: 3 })
})

/** What an `Interrupt` step may call: `verbs`, `start`, the waits; with `cancels`, `cancelSync` and `JobTxn.cancel`. */
export const callerCall = (verbs: fc.Arbitrary<VerbCall>, cancels: boolean): fc.Arbitrary<CallerCall> =>
  fc.oneof(
    { weight: 6, arbitrary: verbs },
    { weight: 1, arbitrary: fc.constant({ verb: "start" as const }) },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        { verb: "completeSync" as const },
        { verb: "finishSync" as const },
        { verb: "awaitOutcome" as const }
      )
    },
    {
      weight: cancels ? 1 : 0,
      arbitrary: fc.record({ verb: fc.constant("cancelSync" as const), force: fc.boolean() })
    },
    { weight: cancels ? 1 : 0, arbitrary: fc.constant({ verb: "txnCancel" as const }) }
  )

/** Mostly the first few turns, where a call is in the middle of its work. */
export const turns: fc.Arbitrary<number> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 2, arbitrary: fc.integer({ min: 5, max: 12 }) },
  { weight: 1, arbitrary: fc.integer({ min: 13, max: 40 }) }
)

export const interruptStep = (calls: fc.Arbitrary<CallerCall>, target: fc.Arbitrary<Target>): fc.Arbitrary<Step> =>
  fc.record({ _tag: fc.constant("Interrupt" as const), call: calls, target, turns })

export const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ _tag: fc.constant("Verb" as const), call: verbCall, target }) },
  { weight: 2, arbitrary: interruptStep(callerCall(verbCall, true), target) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Enter" as const), target }) },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Start" as const), target }) },
  { weight: 4, arbitrary: adjust },
  { weight: 2, arbitrary: yieldStep }
)

export const scenario = (options: { readonly maxSteps: number }): fc.Arbitrary<Scenario> =>
  fc.record({
    jobs: fc.array(jobSpec, { minLength: 1, maxLength: 4 }),
    steps: fc.array(step, { maxLength: options.maxSteps, size: "max" }),
    ending: fc.constantFrom("cancelSync" as const, "closeScope" as const)
  })

/** The id of the scenario's i-th job. */
export const jobId = (index: number): string => `j${index}`
