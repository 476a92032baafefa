/**
 * The end of one job (QEMU: job_finalize_single, job_conclude, job_do_dismiss):
 * exactly one of `commit` or `abort`, then `clean`, the final event, CONCLUDED,
 * and — automatically or on the `dismiss` verb — NULL and `free`.
 * @internal
 */
import { Effect } from "effect"
import { jobConcluding } from "../observability/metrics.ts"
import { afterOutcome } from "./callbackFailure.ts"
import { canceledMessage, type JobRecord } from "./jobRecord.ts"

/**
 * Makes the recorded outcome final: a force-cancelled job without an error of
 * its own gets `Operation canceled`; a job with an error moves to ABORTING.
 * Returns whether the job failed.
 */
export const settleOutcomeUnsafe = (job: JobRecord): boolean => {
  if (job.error === undefined && job.isCancelled) job.error = canceledMessage
  if (job.error === undefined) return false
  job.transition("aborting")
  return true
}

/** NULL, up to `free`: the job leaves the engine (its id is free again) and its `null` event is published. */
const leaveUnsafe = (job: JobRecord): void => {
  job.busy = false
  job.paused = false
  job.runReturned = true
  const key = job.id ?? job
  if (job.engine.jobs.get(key) === job) job.engine.jobs.delete(key)
  job.setStatusUnsafe("null")
}

/**
 * NULL: the job leaves the engine and its `null` event is published, then the
 * driver's `free` runs; whoever waits for the job hears of NULL once `free` has
 * returned, as QEMU frees the job within the dismissal.
 */
export const dismiss = (job: JobRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (job.status === "null") return Effect.void
    leaveUnsafe(job)
    // The outcome as it was decided: a failing `free` is kept as the job's error, not its outcome.
    const outcome = job.outcome()
    const free = job.callbacks?.free
    if (free === undefined) {
      job.notifyStatusUnsafe("null", outcome)
      return Effect.void
    }
    return Effect.andThen(afterOutcome(job, "free", free), Effect.sync(() => job.notifyStatusUnsafe("null", outcome)))
  })

/** Finalizes one job whose outcome is known (precondition: `run` has returned, or it never started). */
export const finalizeJob = (job: JobRecord): Effect.Effect<void> =>
  Effect.andThen(job.beginFinalization(), finalizeNow(job))

/** After commit or abort and clean: the final event, CONCLUDED. */
const concludeUnsafe = (job: JobRecord): void => {
  if (job.started) {
    if (job.isCancelled) job.emit((id) => ({ _tag: "Cancelled", ...job.progressPayload(id) }))
    else {
      job.emit((id) =>
        job.error === undefined
          ? { _tag: "Completed", ...job.progressPayload(id) }
          : { _tag: "Completed", ...job.progressPayload(id), error: job.error }
      )
    }
  }
  jobConcluding(job, job.engine.clock.currentTimeMillisUnsafe())
  job.transition("concluded")
}

const finalizeNow = (job: JobRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    const failed = settleOutcomeUnsafe(job)
    const callbacks = job.callbacks
    const decide = failed ? callbacks?.abort : callbacks?.commit
    const clean = callbacks?.clean
    const conclude = Effect.suspend(() => {
      concludeUnsafe(job)
      return job.dismissesItself ? dismiss(job) : Effect.void
    })
    if (decide === undefined && clean === undefined) return conclude
    return Effect.andThen(
      Effect.andThen(
        decide === undefined ? Effect.void : afterOutcome(job, failed ? "abort" : "commit", decide),
        clean === undefined ? Effect.void : afterOutcome(job, "clean", clean)
      ),
      conclude
    )
  })

/**
 * `finalizeJob` for a job with no callback after `run` (`endsInline`) and no
 * cancel request calling its driver: the same steps, in one synchronous step.
 */
export const finalizeInlineUnsafe = (job: JobRecord): void => {
  job.finalizing = true
  settleOutcomeUnsafe(job)
  concludeUnsafe(job)
  if (!job.dismissesItself) return
  leaveUnsafe(job)
  job.notifyStatusUnsafe("null", job.outcome())
}
