/**
 * A job as its owner and its watchers see it: a read-only, live view of one job's
 * state, the `JobInfo` row that listings return, and the `JobOutcome` it ends with.
 *
 * Jobs are created and driven through the `Jobs` service; every verb takes either
 * a job's id or this object (internal jobs have no id, only the object).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JobStatus } from "./JobStatus.ts"

/**
 * A live view of a job. Every field reads the job's current state.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job {
  /** The job's id; internal jobs have none. */
  readonly id: string | undefined
  /** The driver's type name. */
  readonly type: string
  readonly internal: boolean
  readonly autoFinalize: boolean
  readonly autoDismiss: boolean
  readonly status: JobStatus
  readonly progress: { readonly current: number; readonly total: number }
  /** The job's error, once it has one. */
  readonly error: string | undefined
  /** The rate limit in units per second; 0 is unlimited. */
  readonly speed: number
  /** Pause requests outstanding: creation, the user's pause, and every pause hold. */
  readonly pauseCount: number
  /** Whether the user's pause is in place. */
  readonly userPaused: boolean
  /** The reasons of the pause holds in place, oldest first. */
  readonly pauseHolds: ReadonlyArray<string>
  /** Whether the job is doing work (not sleeping, yielded or parked). */
  readonly busy: boolean
  /** Whether a cancel (soft or force) was requested. */
  readonly cancelRequested: boolean
  /** Whether the job is really being cancelled (force cancel). */
  readonly isCancelled: boolean
}

/**
 * One row of `Jobs.list`: QEMU's `JobInfo`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobInfo = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  status: JobStatus,
  currentProgress: Schema.Number,
  totalProgress: Schema.Number,
  error: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type JobInfo = typeof JobInfo.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const Succeeded = Schema.TaggedStruct("Succeeded", {})

/**
 * @since 0.1.0
 * @category schemas
 */
export const Failed = Schema.TaggedStruct("Failed", { error: Schema.String })

/**
 * @since 0.1.0
 * @category schemas
 */
export const Cancelled = Schema.TaggedStruct("Cancelled", {})

/**
 * How a job ended (or, for the sync helpers, how it completed):
 * force-cancelled without an error of its own → `Cancelled`; an error → `Failed`;
 * otherwise `Succeeded`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobOutcome = Schema.Union([Succeeded, Failed, Cancelled])

/**
 * @since 0.1.0
 * @category models
 */
export type JobOutcome = typeof JobOutcome.Type
