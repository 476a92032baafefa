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

/**
 * NULL: the job leaves the engine (its id is free again) and its `null` event is
 * published, then the driver's `free` runs; whoever waits for the job hears of
 * NULL once `free` has returned, as QEMU frees the job within the dismissal.
 */
export const dismiss = (job: JobRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (job.status === "null") return Effect.void
    job.busy = false
    job.paused = false
    job.runReturned = true
    job.engine.jobs.delete(job)
    if (job.id !== undefined && job.engine.byId.get(job.id) === job) job.engine.byId.delete(job.id)
    job.setStatusUnsafe("null")
    // The outcome as it was decided: a failing `free` is kept as the job's error, not its outcome.
    const outcome = job.outcome()
    const notify = Effect.sync(() => job.notifyStatusUnsafe("null", outcome))
    const free = job.callbacks?.free
    return free === undefined ? notify : Effect.andThen(afterOutcome(job, "free", free), notify)
  })

/** Finalizes one job whose outcome is known (precondition: `run` has returned, or it never started). */
export const finalizeJob = (job: JobRecord): Effect.Effect<void> =>
  Effect.andThen(job.beginFinalization(), finalizeNow(job))

const finalizeNow = (job: JobRecord): Effect.Effect<void> =>
  Effect.suspend(() => {
    const failed = settleOutcomeUnsafe(job)
    const callbacks = job.callbacks
    const decide = failed ? callbacks?.abort : callbacks?.commit
    const clean = callbacks?.clean
    return Effect.andThen(
      Effect.andThen(
        decide === undefined ? Effect.void : afterOutcome(job, failed ? "abort" : "commit", decide),
        clean === undefined ? Effect.void : afterOutcome(job, "clean", clean)
      ),
      Effect.suspend(() => {
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
        return job.autoDismiss || !job.started ? dismiss(job) : Effect.void
      })
    )
  })
