/**
 * Recording a cancel request (QEMU: job_cancel_async): the driver decides what
 * the cancel means, a user pause is lifted, and the job's flags are set. What
 * follows (waking, interrupting, completing) is the caller's business. Also the
 * `resume` verb's lifting of the user pause.
 * @internal
 */
import { Effect } from "effect"
import { onBehalf } from "./callbackFailure.ts"
import type { JobRecord } from "./jobRecord.ts"
import { enterUnsafe, resumeUnsafe, unparkUnsafe } from "./pausing.ts"

/** Lifts the user's pause, calling the driver's `userResume` first. */
export const liftUserPause = (job: JobRecord): Effect.Effect<void> => {
  const callback = job.callbacks?.userResume
  const lift = Effect.sync(() => {
    // Re-checked: another verb may have lifted it while the callback ran.
    if (job.userPaused && job.pauseCount > 0) {
      job.userPaused = false
      resumeUnsafe(job)
    }
  })
  return callback === undefined ? lift : Effect.andThen(onBehalf(job, "userResume", callback, undefined), lift)
}

/** Sets the cancel flags; a later soft request never downgrades an earlier hard one. */
export const markCancelled = (job: JobRecord, hard: boolean): void => {
  job.cancelRequested = true
  if (hard) job.isCancelled = true
}

/**
 * Asks the driver what `force` becomes (without a `cancel` callback every cancel
 * is hard), calls `userResume` if the user had paused the job, then — in one
 * step — drops the user's pause request without waking the job and records the
 * cancel. Returns whether it is hard; waking (soft) or interrupting (hard) is the
 * caller's business, so the job never runs on before its flags are set.
 *
 * For a job whose `run` has returned the flags are left to the caller: a soft
 * request is ignored there, and a hard one first needs the transaction's consent
 * (a committing transaction can no longer abort) unless `returned` is "mark".
 */
export const requestCancel = (
  job: JobRecord,
  force: boolean,
  returned: "leave" | "mark" = "leave"
): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    // Once finalization has begun the driver gets no more cancel callbacks, and
    // finalization waits for those in flight: a cancel never calls into a job
    // that has been cleaned or freed.
    if (!job.beginCancelUnsafe()) return Effect.succeed(true)
    const cancel = job.callbacks?.cancel
    const userResume = job.callbacks?.userResume
    // A job that never started has nothing to finish softly: every cancel of it is hard.
    const decide = cancel === undefined
      ? Effect.succeed(true)
      : Effect.map(onBehalf(job, "cancel", cancel(force), true), (hard) => hard || force || !job.started)
    return Effect.flatMap(decide, (hard) =>
      Effect.andThen(
        // A failing `cancel` callback may already have ended the job's run: nothing left to resume then.
        Effect.suspend(() =>
          job.userPaused && !job.runReturned && userResume !== undefined
            ? onBehalf(job, "userResume", userResume, undefined)
            : Effect.void
        ),
        Effect.sync(() => {
          if (job.userPaused && job.pauseCount > 0) {
            job.userPaused = false
            job.pauseCount = job.pauseCount - 1
          }
          if (!job.runReturned || (hard && returned === "mark")) markCancelled(job, hard)
          return hard
        })
      )).pipe(Effect.ensuring(Effect.sync(() => job.endCancelUnsafe())))
  }).pipe(
    // The count of cancels in flight goes up and its `ensuring` is installed with no
    // interruption between them: finalization waits for that count to drop.
    Effect.uninterruptible
  )

/** Wakes a soft-cancelled job: from its pause point if nothing else holds it there, else from a yield or sleep. */
export const wakeForCancelUnsafe = (job: JobRecord): void => {
  if (job.pauseCount !== 0 || !unparkUnsafe(job)) enterUnsafe(job)
}
