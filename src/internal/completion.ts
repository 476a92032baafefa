/**
 * A job's fiber from start to the moment its `run` has returned (QEMU:
 * job_co_entry, job_exit, job_completed): a pause point, `run` (the only part a
 * force cancel interrupts), then — uninterruptibly — the outcome is recorded once
 * and handed to the transaction.
 * @internal
 */
import { Cause, Effect, Exit } from "effect"
import { traceCallback } from "../observability/tracing.ts"
import { JobCallbackDefect } from "./callbackFailure.ts"
import { settleOutcomeUnsafe } from "./conclude.ts"
import { canceledMessage, causeMessage, type JobRecord } from "./jobRecord.ts"
import { memberCompleted, memberCompletedInlineUnsafe } from "./txn.ts"

const errorOf = (job: JobRecord, exit: Exit.Exit<void, unknown>): string | undefined => {
  if (job.callbackFailure !== undefined) return job.callbackFailure.message
  if (Exit.isSuccess(exit)) return undefined
  const cause = exit.cause
  if (Cause.hasInterruptsOnly(cause)) return canceledMessage
  const die = cause.reasons.find((r) => r._tag === "Die")
  if (die !== undefined && die._tag === "Die" && die.defect instanceof JobCallbackDefect) {
    return die.defect.failure.message
  }
  return causeMessage(cause)
}

/** Records the outcome of `run` and moves the job to WAITING or ABORTING. Returns whether it failed. */
const runReturnedUnsafe = (job: JobRecord, exit: Exit.Exit<void, unknown>): boolean => {
  job.runReturned = true
  job.runFiber = undefined
  // Nothing of the job runs any more (QEMU clears `busy` in job_exit).
  job.busy = false
  const error = errorOf(job, exit)
  if (error !== undefined) job.recordError(error)
  if (settleOutcomeUnsafe(job)) return true
  job.transition("waiting")
  return false
}

/**
 * The job's fiber (started uninterruptible): its pause point and `run` — the only
 * part a force cancel interrupts — then the outcome, recorded and handed to the
 * transaction. A force cancel may arrive between the move to RUNNING and the
 * fiber's first step: then `run` never begins.
 */
export const runJob = (job: JobRecord): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    job.runFiber = fiber
    job.engine.fibers.started()
    const run = traceCallback(job, "run", job.callbacks!.run)
    // Decided in the fiber's first step (a force cancel may have come before it). The
    // continuation below holds the job alone: it is on a parked job's stack for as long as it waits.
    const body = job.isCancelled
      ? Effect.interrupt
      : job.pauseCount === 0
      ? run
      : Effect.andThen(job.handle!.pausePoint, run)
    return Effect.flatMap(Effect.exit(Effect.interruptible(body)), (exit) => runReturned(job, exit))
  })

const runReturned = (job: JobRecord, exit: Exit.Exit<void, unknown>): Effect.Effect<void> => {
  const engine = job.engine
  const failed = runReturnedUnsafe(job, exit)
  if (memberCompletedInlineUnsafe(job, failed)) {
    engine.fibers.ended()
    return Effect.void
  }
  return Effect.ensuring(memberCompleted(job, failed), Effect.sync(() => engine.fibers.ended()))
}

/** Cancel before start: the completion path runs at once, in the caller's fiber. */
export const completeUnstarted = (job: JobRecord): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.sync(() => {
      // Re-checked in this step: the transaction's abort routine may have finished the job meanwhile.
      if (job.status !== "created") return undefined
      job.runReturned = true
      // A failing `cancel` callback fails the job with its error, as if `run` had failed.
      if (job.callbackFailure !== undefined) job.recordError(job.callbackFailure.message)
      return settleOutcomeUnsafe(job)
    }),
    (failed) => failed === undefined ? Effect.void : memberCompleted(job, failed)
  )
