/**
 * What the engine tells its subscribers. Every status change of a job that is
 * not internal is a `StatusChange`; `Ready`, `Pending`, `Completed` and
 * `Cancelled` carry QEMU's block-job event payloads, in QEMU's order: the status
 * change first, then `Ready`/`Pending`; `Completed`/`Cancelled` after commit or
 * abort and clean, before the `concluded` status change.
 *
 * Every event carries its place in the engine's event log: `seq`, a sequence
 * number that only grows (1, 2, 3, … per engine, with no gaps), and
 * `timestamp`, the engine's clock in milliseconds when it was published. A
 * subscriber that lost its connection resumes from the last `seq` it saw
 * (`Jobs.subscribe({ since })`).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JobStatus } from "./JobStatus.ts"

/** Where an event stands in the engine's log. */
const logFields = {
  /** Its sequence number: one more than the event before it. */
  seq: Schema.Number,
  /** When it was published, in milliseconds of the engine's clock. */
  timestamp: Schema.Number
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const StatusChange = Schema.TaggedStruct("StatusChange", { ...logFields, id: Schema.String, status: JobStatus })

/**
 * @since 0.1.0
 * @category models
 */
export type StatusChange = typeof StatusChange.Type

const progressFields = {
  ...logFields,
  id: Schema.String,
  type: Schema.String,
  /** total progress (QEMU: `len`) */
  len: Schema.Number,
  /** current progress (QEMU: `offset`) */
  offset: Schema.Number,
  speed: Schema.Number
}

/**
 * The job converged (RUNNING → READY) and waits to be completed.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Ready = Schema.TaggedStruct("Ready", progressFields)

/**
 * @since 0.1.0
 * @category models
 */
export type Ready = typeof Ready.Type

/**
 * The job's transaction finished successfully and the job waits for `finalize`
 * (sent only for jobs with manual finalize).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Pending = Schema.TaggedStruct("Pending", { ...logFields, id: Schema.String, type: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export type Pending = typeof Pending.Type

/**
 * A started job finished, successfully or (with `error`) not, without being force-cancelled.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Completed = Schema.TaggedStruct("Completed", {
  ...progressFields,
  error: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Completed = typeof Completed.Type

/**
 * A started job was force-cancelled (directly, or because its transaction aborted).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Cancelled = Schema.TaggedStruct("Cancelled", progressFields)

/**
 * @since 0.1.0
 * @category models
 */
export type Cancelled = typeof Cancelled.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const JobEvent = Schema.Union([StatusChange, Ready, Pending, Completed, Cancelled])

/**
 * @since 0.1.0
 * @category models
 */
export type JobEvent = typeof JobEvent.Type

/**
 * An event as the engine builds it, before the log gives it its place.
 *
 * @since 0.1.0
 * @category models
 */
export type Unstamped<E extends JobEvent = JobEvent> = E extends JobEvent ? Omit<E, "seq" | "timestamp"> : never
