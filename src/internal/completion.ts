/**
 * A job's fiber from start to the moment its `run` has returned (QEMU:
 * job_co_entry, job_exit, job_completed): a pause point, `run` (the only part a
 * force cancel interrupts), then — uninterruptibly — the outcome is recorded once
 * and handed to the transaction.
 * @internal
 */
import { Cause, Effect, Exit } from "effect"
import { JobCallbackDefect } from "./callbackFailure.ts"
import { settleOutcomeUnsafe } from "./conclude.ts"
import { canceledMessage, causeMessage, type JobRecord } from "./jobRecord.ts"
import { memberCompleted } from "./txn.ts"

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

/** The body of a started job's fiber. `body` is the pause point followed by the driver's `run`. */
export const runJob = (job: JobRecord, body: Effect.Effect<void, unknown>): Effect.Effect<void> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.flatMap(Effect.exit(restore(body)), (exit) =>
      Effect.flatMap(Effect.sync(() => runReturnedUnsafe(job, exit)), (failed) => memberCompleted(job, failed)))
  )

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
