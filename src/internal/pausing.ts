/**
 * Pause points, yields, sleeps and wake-ups (QEMU: job_pause_point, job_yield,
 * job_sleep_ns, job_enter), and the pause-request counting behind them.
 *
 * A job waits in one of two places: in `yield`/`sleep`, woken by `enter`; or
 * parked at a pause point, woken only when its pause requests drop to zero (or a
 * force cancel interrupts it). Keeping the two apart means a stray `enter` never
 * un-pauses a job.
 * @internal
 */
import { Deferred, Duration, Effect, Exit } from "effect"
import { inJobLoop } from "./callbackFailure.ts"
import { finished, withInlineStep } from "./inlineStep.ts"
import type { JobRecord } from "./jobRecord.ts"

/** QEMU job_enter: wakes the job if it waits in `yield` or `sleep`. */
export const enterUnsafe = (job: JobRecord): void => {
  if (job.started && !job.runReturned && !job.busy && job.wake !== undefined) {
    job.busy = true
    const wake = job.wake
    job.wake = undefined
    Deferred.doneUnsafe(wake, Exit.void)
  }
}

/** QEMU job_pause: one more pause request; a busy job is kicked towards its next pause point. */
export const pauseUnsafe = (job: JobRecord): void => {
  job.pauseCount = job.pauseCount + 1
  if (!job.paused) enterUnsafe(job)
}

/**
 * QEMU job_resume: one pause request fewer. At zero a parked job goes on, and a
 * yielded one is woken; a sleeping one keeps sleeping.
 */
export const resumeUnsafe = (job: JobRecord): void => {
  if (job.pauseCount <= 0) throw new Error(`effect-jobs: unbalanced resume of job '${job.label}'`)
  job.pauseCount = job.pauseCount - 1
  if (job.pauseCount === 0 && !unparkUnsafe(job) && !job.sleeping) enterUnsafe(job)
}

/**
 * Lets a job parked at its pause point go on, if it is parked there: its status
 * goes back to what it was, then its fiber resumes (synchronously, inside this
 * call, as Effect resumes a waiting fiber). Returns whether it was parked.
 */
export const unparkUnsafe = (job: JobRecord): boolean => {
  const unpark = job.unpark
  if (unpark === undefined) return false
  leaveParkUnsafe(job)
  unpark(Effect.void)
  return true
}

/** The job's status before it parked: what it goes back to (RUNNING or READY). */
const leaveParkUnsafe = (job: JobRecord): void => {
  job.unpark = undefined
  job.paused = false
  job.busy = true
  job.transition(job.status === "standby" ? "ready" : "running")
}

const hook = (job: JobRecord, name: "pause" | "resume"): Effect.Effect<void> => {
  const callback = job.callbacks?.[name]
  return callback === undefined ? Effect.void : inJobLoop(job, name, callback)
}

/**
 * The pause point. As an Effect it is a suspend that checks the pause count.
 * `yield*` inside `Effect.gen` — how drivers use it in their loops — checks the
 * count right in the generator and, with no pause requested, never enters the
 * fiber's run loop at all.
 *
 * With a pause requested it parks the job until its pause requests drop to
 * zero (`unparkUnsafe`) or a force cancel interrupts it (then the wait's own
 * cancel step leaves the park). A parked job holds nothing but its fiber's
 * wait: no Deferred, no frames of its own. The park is made on the first pause,
 * and its closures share this function's scope, which is what a server with many
 * paused jobs pays for each.
 */
export const makePausePoint = (job: JobRecord): Effect.Effect<void> => {
  let park: Effect.Effect<void> | undefined
  let leaveOnInterrupt: Effect.Effect<void> | undefined
  const slowPath = (): Effect.Effect<void> => {
    if (park !== undefined) return park
    const wait = Effect.callback<void>((resume) => {
      // The request may have gone while the driver's pause hook ran.
      if (job.pauseCount === 0 || job.isCancelled) return resume(Effect.void)
      job.unpark = resume
      job.paused = true
      job.busy = false
      job.transition(job.status === "ready" ? "standby" : "paused")
      return (leaveOnInterrupt ??= Effect.sync(() => {
        if (job.unpark !== undefined) leaveParkUnsafe(job)
      }))
    })
    return (park = withHooks(job, wait))
  }
  return withInlineStep(
    Effect.suspend(() => (job.pauseCount === 0 || job.isCancelled ? Effect.void : slowPath())),
    () => (job.pauseCount === 0 || job.isCancelled ? finished : slowPath()[Symbol.iterator]())
  )
}

/**
 * The park with the driver's pause and resume hooks around it, uninterruptible
 * but for the wait itself; without hooks (most drivers), the wait alone.
 */
const withHooks = (job: JobRecord, wait: Effect.Effect<void>): Effect.Effect<void> => {
  if (job.callbacks?.pause === undefined && job.callbacks?.resume === undefined) return wait
  return Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      if (job.isCancelled) return Effect.void
      return Effect.andThen(hook(job, "pause"), Effect.ensuring(restore(wait), hook(job, "resume")))
    })
  )
}

const waitForWake = (job: JobRecord, timer: Duration.Duration | undefined): Effect.Effect<void> =>
  Effect.suspend(() => {
    const wake = Deferred.makeUnsafe<void>()
    job.wake = wake
    job.busy = false
    const awaitWake = Deferred.await(wake)
    if (timer === undefined) return Effect.ensuring(awaitWake, Effect.sync(() => afterWait(job, wake)))
    job.sleeping = true
    return Effect.raceFirst(Effect.sleep(timer), awaitWake).pipe(
      Effect.ensuring(Effect.sync(() => afterWait(job, wake)))
    )
  })

const afterWait = (job: JobRecord, wake: Deferred.Deferred<void>): void => {
  if (job.wake === wake) job.wake = undefined
  job.sleeping = false
  job.busy = true
}

export const makeYield = (job: JobRecord, pausePoint: Effect.Effect<void>): Effect.Effect<void> => {
  const wait = Effect.andThen(waitForWake(job, undefined), pausePoint)
  return Effect.suspend(() => {
    if (job.isCancelled) return Effect.void
    return job.pauseCount === 0 ? wait : pausePoint
  })
}

/** QEMU job_sleep_ns: sleeps unless a pause is requested, then passes a pause point. */
export const sleepStep = (job: JobRecord, duration: Duration.Input, pausePoint: Effect.Effect<void>) => {
  if (job.isCancelled) return Effect.void
  if (job.pauseCount > 0) return pausePoint
  const d = Duration.fromInputUnsafe(duration)
  if (Duration.isZero(d)) return Effect.andThen(Effect.yieldNow, pausePoint)
  return Effect.andThen(waitForWake(job, d), pausePoint)
}
