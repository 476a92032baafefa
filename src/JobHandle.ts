/**
 * What a driver gets to run its job: pause points, yields and sleeps that honour
 * pause and cancel, the cancel flags, the progress meter and the move to READY.
 *
 * A driver's `run` loop calls `pausePoint` (or `sleep`/`yield`, which end in one)
 * between units of work. A force cancel interrupts the job's fiber, so a sleep,
 * a yield or any awaited I/O ends at once; a soft cancel only sets
 * `cancelRequested` and wakes the job.
 *
 * @since 0.1.0
 */
import type { Duration, Effect, Schema } from "effect"
import type { JobStatus } from "./JobStatus.ts"
import type { JobTxn } from "./JobTxn.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface JobHandle {
  readonly id: string | undefined
  readonly type: string
  /**
   * The job's transaction (a private one-job transaction when none was given).
   * Drivers whose commits must be coordinated across members (e.g. one journal
   * for several renames) key their shared state by it; every member's `prepare`
   * runs before any member's `commit`.
   */
  readonly txn: JobTxn
  /**
   * Parks the job here while a pause is requested (RUNNING → PAUSED or READY →
   * STANDBY), around the driver's `pause`/`resume` callbacks. Costs one check when
   * no pause is requested. A force-cancelled job never parks.
   */
  readonly pausePoint: Effect.Effect<void>
  /** Waits until `enter` is called (or a pause or cancel arrives), then runs a pause point. */
  readonly yield: Effect.Effect<void>
  /**
   * Sleeps on the Effect Clock, then runs a pause point. Cut short by `enter`, a
   * pause request, a speed increase or a cancel: drivers must tolerate early wake-ups.
   * Does not sleep at all when a pause is already requested.
   */
  readonly sleep: (duration: Duration.Input) => Effect.Effect<void>
  /** Wakes the job from `yield` or `sleep`; a no-op when it is not waiting there. */
  readonly enter: Effect.Effect<void>
  /** A force cancel is under way: stop without further work. */
  readonly isCancelled: Effect.Effect<boolean>
  /** A cancel (soft or force) was requested. */
  readonly cancelRequested: Effect.Effect<boolean>
  readonly status: Effect.Effect<JobStatus>
  /** The current rate limit in units per second; 0 is unlimited. */
  readonly speed: Effect.Effect<number>
  /** Progress: `current += done`. */
  readonly update: (done: number) => Effect.Effect<void>
  /** Progress: `total = current + remaining`. */
  readonly setRemaining: (remaining: number) => Effect.Effect<void>
  /** Progress: `total += delta`. */
  readonly increaseRemaining: (delta: number) => Effect.Effect<void>
  /** RUNNING → READY (with a `Ready` event): the job has converged and waits for `complete`. */
  readonly transitionToReady: Effect.Effect<void>
  /**
   * Records where the job could go on from after a restart (a driver's own
   * JSON: a file offset, an identity to check). With a durable store it is
   * kept with the job (in the next commit; a newer one replaces it, the job's
   * dismissal removes it); without one it is dropped. Record only what is
   * already safe to go on from (for a copy: after an fsync of what it covers).
   */
  readonly checkpoint: (data: Schema.Json) => Effect.Effect<void>
  /** Whether checkpoints are kept (the engine has a durable store): a driver need not pay for them otherwise. */
  readonly keepsCheckpoints: boolean
  /**
   * The last checkpoint of a job a `resumable` driver brought back after a
   * restart (see `JobDriver.resumable`); `undefined` for a job that was not,
   * or that had recorded none.
   */
  readonly resumedFrom: Schema.Json | undefined
}
