/**
 * The user verbs (QEMU: job_user_pause, job_user_resume, job_cancel,
 * job_complete, job_finalize, job_dismiss, job_set_speed, job_change, job_start)
 * and the waits built on them, each a function of the engine's state.
 *
 * Every verb runs the way QEMU runs a QMP job command under its lock:
 * - it looks the job up; if the job's transaction is being finalized it waits for
 *   the end, then looks again, so it is checked against the state finalization
 *   left (`Job not found` after auto-dismiss, the CONCLUDED verb error, …);
 * - it checks the verb table, then acts; the act is uninterruptible, so a caller
 *   interrupted mid-verb (a timeout, a dropped client) never leaves a decision
 *   half carried out. Only waiting stays interruptible.
 * @internal
 */
import { type Cause, type Context, Effect } from "effect"
import type { JobOutcome } from "../Job.ts"
import {
  CallbackFailed,
  CannotComplete,
  ChangeNotSupported,
  EngineClosing,
  JobAlreadyPaused,
  JobAlreadyStarted,
  JobCancelled,
  JobFailed,
  JobNotFound,
  JobNotPaused,
  NegativeSpeed,
  VerbNotAllowed
} from "../JobError.ts"
import type { JobRef } from "../Jobs.ts"
import type { JobStatus } from "../JobStatus.ts"
import * as JobVerb from "../JobVerb.ts"
import { traceCallback } from "../observability/tracing.ts"
import { cancelJob } from "./cancel.ts"
import { liftUserPause } from "./cancelRequest.ts"
import { dismiss } from "./conclude.ts"
import { runJob } from "./completion.ts"
import { causeMessage, type EngineState, JobRecord } from "./jobRecord.ts"
import { acquireHoldUnsafe, releaseHoldUnsafe } from "./pauseHolds.ts"
import { enterUnsafe, pauseUnsafe } from "./pausing.ts"
import { finalizeTxn } from "./txn.ts"

/** What an act returns when it found the transaction being finalized after all: wait, then look again. */
const Locked: unique symbol = Symbol("effect-jobs/Locked")
type Locked = typeof Locked

/** The job `ref` names: by id among jobs with one, or the object itself if it belongs to this engine. */
export const lookupUnsafe = (engine: EngineState, ref: JobRef): JobRecord | JobNotFound => {
  if (typeof ref === "string") return engine.jobs.get(ref) ?? new JobNotFound({ id: ref })
  return ref instanceof JobRecord && ref.engine === engine ? ref : new JobNotFound({ id: ref.id ?? "" })
}

export const lookup = (engine: EngineState, ref: JobRef): Effect.Effect<JobRecord, JobNotFound> =>
  Effect.suspend(() => {
    const found = lookupUnsafe(engine, ref)
    return found instanceof JobRecord ? Effect.succeed(found) : Effect.fail(found)
  })

/** Runs `act` on the job once no finalization of its transaction is under way (see the module doc). */
const onJob = <A, E>(
  engine: EngineState,
  ref: JobRef,
  act: (job: JobRecord) => Effect.Effect<A | Locked, E>
): Effect.Effect<A, E | JobNotFound> =>
  // One uninterruptible region from the look-up to the end of the act: no
  // interruption can fall between a check and what it allows.
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      const job = lookupUnsafe(engine, ref)
      if (!(job instanceof JobRecord)) return Effect.fail(job)
      const again = () => Effect.andThen(restore(job.txn.awaitSettled()), onJob(engine, ref, act))
      if (job.txnLocked) return again()
      return Effect.flatMap(act(job), (a) => {
        if (a === Locked) return again()
        // A verb may change what the store keeps without a status change (a pause count, a speed).
        engine.persistence?.touch(job)
        return Effect.succeed(a as A)
      })
    })
  )

/** `onJob` with the verb table checked first. */
const withVerb = <A, E>(
  engine: EngineState,
  ref: JobRef,
  verb: JobVerb.JobVerb,
  act: (job: JobRecord) => Effect.Effect<A | Locked, E>
): Effect.Effect<A, E | JobNotFound | VerbNotAllowed> =>
  onJob(engine, ref, (job): Effect.Effect<A | Locked, E | VerbNotAllowed> =>
    JobVerb.isAllowed(verb, job.status)
      ? act(job)
      : Effect.fail(new VerbNotAllowed({ id: job.label, status: job.status, verb })))

const callbackFailed = (job: JobRecord, callback: string) => (cause: Cause.Cause<unknown>) =>
  Effect.fail(new CallbackFailed({ id: job.label, callback, detail: causeMessage(cause) }))

/**
 * Start is one synchronous step from the look-up to the job's fiber running (it
 * runs at once, inside this step, until it first waits): nothing can interrupt
 * it half-way, so it needs no uninterruptible region.
 */
export const start = (engine: EngineState, ref: JobRef): Effect.Effect<void, JobNotFound | JobAlreadyStarted | EngineClosing> =>
  Effect.withFiber((caller) => {
    const job = lookupUnsafe(engine, ref)
    if (!(job instanceof JobRecord)) return Effect.fail(job)
    if (job.txnLocked) return Effect.andThen(job.txn.awaitSettled(), start(engine, ref))
    if (engine.closing) return Effect.fail(new EngineClosing())
    if (job.started || job.status !== "created") {
      return Effect.fail(new JobAlreadyStarted({ id: job.label, status: job.status }))
    }
    job.started = true
    job.startedAt = job.engine.clock.currentTimeMillisUnsafe() - job.engine.epoch
    job.pauseCount = job.pauseCount - 1
    job.busy = true
    job.paused = false
    job.transition("running")
    startFiberUnsafe(job, caller.context)
    return Effect.void
  })

/** The job's fiber: detached from the caller (the job outlives it), with the caller's services. */
export const startFiberUnsafe = (job: JobRecord, context: Context.Context<never>): void => {
  Effect.runForkWith(context)(runJob(job), { uninterruptible: true })
}

export const pause = (engine: EngineState, ref: JobRef) =>
  withVerb(engine, ref, "pause", (job) => {
    if (job.userPaused) return Effect.fail(new JobAlreadyPaused({ id: job.label }))
    job.userPaused = true
    pauseUnsafe(job)
    return Effect.void
  })

export const resume = (engine: EngineState, ref: JobRef) =>
  onJob(engine, ref, (job): Effect.Effect<void, JobNotPaused | VerbNotAllowed> => {
    // QEMU checks "was it paused" before the verb.
    if (!job.userPaused || job.pauseCount <= 0) return Effect.fail(new JobNotPaused({ id: job.label }))
    if (!JobVerb.isAllowed("resume", job.status)) {
      return Effect.fail(new VerbNotAllowed({ id: job.label, status: job.status, verb: "resume" }))
    }
    return liftUserPause(job)
  })

const cancelAct = (job: JobRecord, force: boolean) =>
  Effect.map(cancelJob(job, force), (result) => result === "locked" ? Locked : undefined)

export const cancel = (engine: EngineState, ref: JobRef, options?: { readonly force?: boolean | undefined }) =>
  withVerb(engine, ref, "cancel", (job) => cancelAct(job, options?.force ?? false))

const completeAct = (job: JobRecord): Effect.Effect<void, CannotComplete | CallbackFailed> => {
  const callback = job.callbacks?.complete
  if (job.cancelRequested || callback === undefined) return Effect.fail(new CannotComplete({ id: job.label }))
  return Effect.catchCause(traceCallback(job, "complete", callback), callbackFailed(job, "complete"))
}

export const complete = (engine: EngineState, ref: JobRef) => withVerb(engine, ref, "complete", completeAct)

export const finalize = (engine: EngineState, ref: JobRef) =>
  withVerb(engine, ref, "finalize", (job) => finalizeTxn(job.txn))

export const dismissVerb = (engine: EngineState, ref: JobRef) =>
  withVerb(engine, ref, "dismiss", dismiss)

export const setSpeed = (engine: EngineState, ref: JobRef, speed: number) =>
  withVerb(engine, ref, "set-speed", (job): Effect.Effect<void, NegativeSpeed | CallbackFailed> => {
    if (speed < 0) return Effect.fail(new NegativeSpeed({ id: job.label, speed }))
    const callback = job.callbacks?.setSpeed
    const record = Effect.sync(() => {
      const old = job.speed
      job.speed = speed
      // QEMU's kick rule: only a faster (or unlimited) speed wakes a job sleeping on its timer.
      if ((speed === 0 || speed > old) && job.sleeping) enterUnsafe(job)
    })
    return callback === undefined
      ? record
      : Effect.andThen(Effect.catchCause(traceCallback(job, "setSpeed", callback(speed)), callbackFailed(job, "setSpeed")), record)
  })

export const change = (engine: EngineState, ref: JobRef, options: unknown) =>
  withVerb(engine, ref, "change", (job): Effect.Effect<void, ChangeNotSupported | CallbackFailed> => {
    const callback = job.callbacks?.change
    if (callback === undefined) return Effect.fail(new ChangeNotSupported({ id: job.label }))
    return Effect.catchCause(traceCallback(job, "change", callback(options)), callbackFailed(job, "change"))
  })

/** A pause request held for the scope's lifetime (or a restored one taken over: `pauseHolds.ts`). */
export const hold = (engine: EngineState, ref: JobRef, reason: string) =>
  Effect.asVoid(Effect.flatMap(lookup(engine, ref), (job) =>
    Effect.acquireRelease(
      Effect.sync(() => acquireHoldUnsafe(job, reason)),
      (key) => Effect.sync(() => releaseHoldUnsafe(job, key))
    )))

export const enter = (engine: EngineState, ref: JobRef) =>
  Effect.flatMap(lookup(engine, ref), (job) => Effect.sync(() => enterUnsafe(job)))

// ---- waits (QEMU's sync helpers and their Effect relatives)

const completedOutcome = (job: JobRecord): Effect.Effect<JobOutcome> =>
  Effect.map(job.awaitCompleted(), () => job.outcome())

/** QEMU job_finish_sync without a finish step: waits until `run` has returned. */
export const finishSync = (engine: EngineState, ref: JobRef) => Effect.flatMap(lookup(engine, ref), completedOutcome)

/** QEMU job_cancel_sync: cancel without the verb check, then wait. */
export const cancelSync = (engine: EngineState, ref: JobRef, options?: { readonly force?: boolean | undefined }) =>
  onJob(engine, ref, (job) =>
    Effect.map(cancelAct(job, options?.force ?? false), (result) => result === Locked ? Locked : job)).pipe(
      Effect.flatMap(completedOutcome)
    )

export const completeSync = (engine: EngineState, ref: JobRef) =>
  Effect.flatMap(withVerb(engine, ref, "complete", (job) => Effect.as(completeAct(job), job)), completedOutcome)

export const awaitStatus = (engine: EngineState, ref: JobRef, status: JobStatus) =>
  Effect.flatMap(lookup(engine, ref), (job) => job.awaitStatus(status))

export const awaitOutcome = (engine: EngineState, ref: JobRef): Effect.Effect<JobOutcome, JobNotFound> =>
  Effect.suspend(() => {
    const job = lookupUnsafe(engine, ref)
    if (!(job instanceof JobRecord)) return Effect.fail(job)
    return job.concludedExitUnsafe() ?? job.awaitConcluded()
  })

export const join = (engine: EngineState, ref: JobRef) =>
  Effect.flatMap(lookup(engine, ref), (job) =>
    Effect.flatMap(job.awaitConcluded(), (outcome): Effect.Effect<void, JobFailed | JobCancelled> => {
      switch (outcome._tag) {
        case "Succeeded":
          return Effect.void
        case "Failed":
          return Effect.fail(new JobFailed({ id: job.label, error: outcome.error }))
        case "Cancelled":
          return Effect.fail(new JobCancelled({ id: job.label }))
      }
    }))
