/**
 * A driver is a job type: it names the type, says with a `Schema` what parameters
 * a job of that type takes, and, given one job's decoded parameters and its
 * `JobHandle`, builds that job's callbacks — a record of Effects closing over
 * the job's own state.
 *
 * Whatever a driver needs (a file system, a clock, configuration) is an ordinary
 * requirement `R` of its `make`; `JobDriver.layer` captures it when the driver is
 * registered, so a test swaps a driver by providing another layer.
 *
 * @since 0.1.0
 */
import { Effect, Layer, type Schema } from "effect"
import type { JobHandle } from "./JobHandle.ts"
import { Jobs } from "./Jobs.ts"

/**
 * One job's callbacks. Only `run` is mandatory.
 *
 * What a failure means depends on the callback: `run` or `prepare` failing sends
 * the job (and its transaction) down the abort path; `complete`, `change` and
 * `setSpeed` failing hands the error to the verb's caller and leaves the job as
 * it was; `pause`, `resume`, `userResume` and `cancel` failing fails the job as
 * if `run` had; `commit`, `abort`, `clean` and `free` failing is logged and
 * kept as the job's error if it has none — the job still concludes, and never
 * gets a second `commit` or `abort`. A defect counts as a failure everywhere.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobCallbacks<E = never> {
  /** The job's work. Returning means success; failing means failure. */
  readonly run: Effect.Effect<void, E>
  /** Called in the job's fiber before it parks at a pause point. */
  readonly pause?: Effect.Effect<void, E> | undefined
  /** Called in the job's fiber after it leaves a pause point (always paired with `pause`). */
  readonly resume?: Effect.Effect<void, E> | undefined
  /** Called when the user's pause is lifted (by `resume`, or by a cancel). */
  readonly userResume?: Effect.Effect<void, E> | undefined
  /** The `complete` verb: typically sets a flag the `run` loop reads, and `enter`s the job. */
  readonly complete?: Effect.Effect<void, E> | undefined
  /** First step of finalization; every member's `prepare` runs before any `commit`. */
  readonly prepare?: Effect.Effect<void, E> | undefined
  /** The transaction succeeded: make the job's work permanent. */
  readonly commit?: Effect.Effect<void, E> | undefined
  /** The job or its transaction failed or was cancelled: undo the job's work. */
  readonly abort?: Effect.Effect<void, E> | undefined
  /** Always runs after `commit` or `abort`. */
  readonly clean?: Effect.Effect<void, E> | undefined
  /**
   * Decides what a cancel means. Return `true` to stop at once (a hard cancel:
   * mandatory when `force` is true), `false` to keep running in a special
   * completion mode (a soft cancel). Without it every cancel is hard.
   */
  readonly cancel?: ((force: boolean) => Effect.Effect<boolean, E>) | undefined
  /** The `change` verb, with the caller's options (the driver decodes them). */
  readonly change?: ((options: unknown) => Effect.Effect<void, E>) | undefined
  /** The `setSpeed` verb, before the engine records the new speed. */
  readonly setSpeed?: ((speed: number) => Effect.Effect<void, E>) | undefined
  /** Last call, when the job is dismissed. */
  readonly free?: Effect.Effect<void, E> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JobDriver<Params, E = never, R = never> {
  /** The job type this driver runs. */
  readonly type: string
  /** Decodes a job's parameters. */
  readonly params: Schema.Decoder<Params>
  /**
   * Checks made before the job exists (QEMU checks its block nodes before it
   * creates a job): a failure refuses `Jobs.create` (and `Jobs.validate`) with
   * `JobRefused`, and no job, no event, is ever seen. What can only fail once
   * the job exists belongs in `make`.
   */
  readonly check?: ((params: Params) => Effect.Effect<void, E, R>) | undefined
  /** Builds one job's callbacks; failing here fails the job early (CREATED → NULL). */
  readonly make: (params: Params, job: JobHandle) => Effect.Effect<JobCallbacks<E>, E, R>
  /**
   * The driver can go on with its jobs after a restart (docs/durability.md).
   * With a durable store, a job of this type that had not concluded comes back
   * in the status it had, its user pause kept: `make` runs again with the
   * stored parameters and `handle.resumedFrom` holding the job's last
   * `checkpoint`, then a job that was running (or paused, ready, on standby)
   * runs again — `run` goes on from the checkpoint, and reaches READY again if
   * it had. Without it, such a job fails as interrupted.
   */
  readonly resumable?: boolean | undefined
}

/**
 * Defines a driver (an identity function that fixes the types).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Params, E = never, R = never>(driver: JobDriver<Params, E, R>): JobDriver<Params, E, R> =>
  driver

/**
 * A layer that registers the driver with `Jobs`, capturing the driver's requirements.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Params, E, R>(driver: JobDriver<Params, E, R>): Layer.Layer<never, never, Jobs | R> =>
  Layer.effectDiscard(Jobs.use((jobs) => Effect.orDie(jobs.register(driver))))
