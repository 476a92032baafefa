/**
 * Random scenarios for the property test of transactions: 1–20 jobs of the test
 * driver, all in one transaction, each with a random way for its `run` to end,
 * then random verbs (including `JobTxn.cancel`; some with their callers
 * interrupted part-way) at random virtual times, then an ending that lets
 * everything finish and cancels what cannot. Interrupting a caller never counts
 * as a failure or a cancel: a clean scenario with interrupted callers must still
 * commit.
 *
 * Scenarios come in three moods:
 * - `clean`: nothing can fail or cancel the transaction, so it must commit (a soft
 *   cancel of a READY job whose driver turns it into completion does not count);
 * - `late`: the members are as in `clean` ones, but a few fail in `prepare`, and
 *   cancels come late: from traps (at a status change, e.g. while the transaction
 *   commits) and in the ending (often of a WAITING or PENDING member);
 * - `mixed`: failures, defects, jobs that only a cancel ends, failing callbacks
 *   and cancels; these mostly abort.
 */
import * as fc from "fast-check"
import type { CallbackName, TestParams } from "../../src/testing.ts"
import {
  adjust,
  callbackList,
  callerCall,
  interruptStep,
  type SettleCancel,
  type JobSpec,
  type Scenario,
  speed,
  type Step,
  type Target,
  targetAmong,
  type TrapAction,
  type VerbCall,
  yieldStep
} from "./scenario.ts"

export const maxMembers = 20

export type Mood = "clean" | "late" | "mixed"

/**
 * How a member's `run` ends:
 * - `succeed`, `fail`, `die`: after a few short waits (sleeps or yields);
 * - `untilCancelled`: many iterations of long sleeps, longer than any scenario's clock moves;
 * - `ready`: goes READY and waits there for `complete` (or a soft cancel, which the
 *   driver may turn into completion).
 */
export type RunKind = "succeed" | "fail" | "die" | "untilCancelled" | "ready"

const shortWork = {
  iterations: fc.integer({ min: 0, max: 5 }),
  wait: fc.constantFrom("sleep" as const, "yield" as const),
  sleepMillis: fc.integer({ min: 0, max: 50 })
}

/** Callbacks whose failure never fails a job nor blocks its transaction (only the caller or the log hears of it). */
const harmless: ReadonlyArray<CallbackName> = ["setSpeed", "change", "commit", "abort", "clean", "free"]

const harmlessList: fc.Arbitrary<ReadonlyArray<CallbackName>> = fc.oneof(
  { weight: 3, arbitrary: fc.constant([]) },
  { weight: 1, arbitrary: fc.subarray([...harmless], { minLength: 1, maxLength: 2 }) }
)

/** As `harmlessList`, and now and then `prepare`: the transaction fails only once every member has succeeded. */
const lateList: fc.Arbitrary<ReadonlyArray<CallbackName>> = fc.oneof(
  { weight: 4, arbitrary: harmlessList },
  { weight: 1, arbitrary: fc.constant<ReadonlyArray<CallbackName>>(["prepare"]) }
)

const paramsOf = (
  kind: RunKind,
  mood: Mood
): fc.Arbitrary<TestParams> => {
  const clean = mood !== "mixed"
  const failing = mood === "clean" ? harmlessList : mood === "late" ? lateList : callbackList
  switch (kind) {
    case "succeed":
    case "fail":
    case "die":
      return fc.record({
        ...shortWork,
        converge: fc.constant(false),
        softCancel: fc.boolean(),
        result: fc.constant(kind),
        fail: failing,
        die: failing
      })
    case "untilCancelled":
      return fc.record({
        iterations: fc.integer({ min: 1_000, max: 100_000 }),
        wait: fc.constant("sleep" as const),
        sleepMillis: fc.integer({ min: 100_000, max: 1_000_000 }),
        converge: fc.boolean(),
        softCancel: fc.boolean(),
        result: fc.constantFrom("succeed" as const, "fail" as const),
        fail: failing,
        die: failing
      })
    case "ready":
      return fc.record({
        ...shortWork,
        converge: fc.constant(true),
        softCancel: fc.boolean(),
        completable: clean
          ? fc.constant(true)
          : fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
        result: clean
          ? fc.constant("succeed" as const)
          : fc.oneof(
            { weight: 4, arbitrary: fc.constant("succeed" as const) },
            { weight: 1, arbitrary: fc.constant("fail" as const) }
          ),
        fail: failing,
        die: failing
      })
  }
}

const runKind = (clean: boolean): fc.Arbitrary<RunKind> =>
  clean
    ? fc.oneof({ weight: 2, arbitrary: fc.constant("succeed" as const) }, {
      weight: 1,
      arbitrary: fc.constant("ready" as const)
    })
    : fc.oneof(
      { weight: 8, arbitrary: fc.constant("succeed" as const) },
      { weight: 1, arbitrary: fc.constant("fail" as const) },
      { weight: 1, arbitrary: fc.constant("die" as const) },
      { weight: 2, arbitrary: fc.constant("untilCancelled" as const) },
      { weight: 4, arbitrary: fc.constant("ready" as const) }
    )

const member = (mood: Mood): fc.Arbitrary<JobSpec> =>
  runKind(mood !== "mixed").chain((kind) =>
    fc.record({
      params: paramsOf(kind, mood),
      manualFinalize: fc.boolean(),
      manualDismiss: fc.boolean(),
      sharedTxn: fc.constant(true),
      // Members are created first, then started; a few only by a later step (or the ending).
      startAtOnce: fc.oneof({ weight: 6, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })
    })
  )

const verbCall = (mood: Mood): fc.Arbitrary<VerbCall> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant({ verb: "pause" as const }) },
    { weight: 3, arbitrary: fc.constant({ verb: "resume" as const }) },
    { weight: 3, arbitrary: fc.constant({ verb: "complete" as const }) },
    { weight: 3, arbitrary: fc.constant({ verb: "finalize" as const }) },
    { weight: 1, arbitrary: fc.constant({ verb: "dismiss" as const }) },
    {
      weight: 1,
      arbitrary: fc.record({ verb: fc.constant("setSpeed" as const), speed })
    },
    // Only READY jobs with the driver's `cancel` callback take a soft cancel
    // without aborting: no cancels in clean scenarios, none before the end in late ones.
    {
      weight: mood === "mixed" ? 2 : 0,
      arbitrary: fc.record({ verb: fc.constant("cancel" as const), force: fc.boolean() })
    }
  )

const trapAction = (clean: boolean): fc.Arbitrary<TrapAction> =>
  clean
    ? fc.constantFrom("complete" as const, "finalize" as const, "dismiss" as const)
    : fc.constantFrom(
      "softCancel" as const,
      "forceCancel" as const,
      "forceCancel" as const,
      "txnCancel" as const,
      "complete" as const,
      "finalize" as const,
      "dismiss" as const
    )

const trap = (clean: boolean, target: fc.Arbitrary<Target>): fc.Arbitrary<Step> =>
  fc.record({
    _tag: fc.constant("Trap" as const),
    watch: target,
    status: fc.constantFrom(
      "running" as const,
      "ready" as const,
      "waiting" as const,
      "pending" as const,
      "pending" as const,
      "aborting" as const,
      "concluded" as const,
      "concluded" as const
    ),
    act: target,
    action: trapAction(clean)
  })

const step = (mood: Mood): fc.Arbitrary<Step> => {
  const target = targetAmong(maxMembers)
  return fc.oneof(
    { weight: 3, arbitrary: trap(mood === "clean", target) },
    { weight: 10, arbitrary: fc.record({ _tag: fc.constant("Verb" as const), call: verbCall(mood), target }) },
    // Callers interrupted part-way; cancels among them only where the mood has cancels.
    { weight: 2, arbitrary: interruptStep(callerCall(verbCall(mood), mood === "mixed"), target) },
    { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Enter" as const), target }) },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Start" as const), target }) },
    { weight: mood === "mixed" ? 1 : 0, arbitrary: fc.constant({ _tag: "TxnCancel" as const }) },
    { weight: 5, arbitrary: adjust },
    { weight: 2, arbitrary: yieldStep }
  )
}

export const mood: fc.Arbitrary<Mood> = fc.oneof(
  { weight: 2, arbitrary: fc.constant("clean" as const) },
  { weight: 1, arbitrary: fc.constant("late" as const) },
  { weight: 2, arbitrary: fc.constant("mixed" as const) }
)

/** In the ending, a cancel of the first member met in a given status (most often a finished one). */
const settleCancel: fc.Arbitrary<SettleCancel> = fc.record({
  when: fc.constantFrom(
    "any" as const,
    "ready" as const,
    "waiting" as const,
    "waiting" as const,
    "pending" as const,
    "pending" as const
  ),
  how: fc.constantFrom("soft" as const, "force" as const, "txn" as const)
})

/**
 * `interleaved`: for runs with scheduler yields. The ending then never soft-cancels
 * a READY job instead of completing it: the job may leave READY while the driver's
 * `cancel` runs, and the cancel then is hard (as in QEMU), so a clean scenario
 * could abort.
 */
export const txnScenario = (
  options: { readonly maxSteps: number; readonly interleaved?: boolean | undefined }
): fc.Arbitrary<Scenario> =>
  mood.chain((mood) =>
    fc.record({
      // Mostly small transactions (their races are the easiest to read), but often the full 20.
      jobs: fc.oneof(
        fc.array(member(mood), { minLength: 1, maxLength: maxMembers }),
        fc.array(member(mood), { minLength: 1, maxLength: maxMembers, size: "max" })
      ),
      steps: fc.array(step(mood), { maxLength: options.maxSteps, size: "max" }),
      ending: fc.record({
        _tag: fc.constant("Settle" as const),
        rounds: fc.constant(12),
        leftovers: fc.constantFrom("txnCancel" as const, "forceCancel" as const, "closeScope" as const),
        softCancelReady: options.interleaved ? fc.constant(false) : fc.boolean(),
        cancel: mood === "clean"
          ? fc.constant(undefined)
          : mood === "late"
          ? fc.option(settleCancel, { nil: undefined, freq: 2 })
          : fc.option(settleCancel, { nil: undefined })
      }),
      mustCommit: fc.constant(mood === "clean")
    })
  )
