/**
 * What a durable engine tells about its store (`Jobs.storeNotices`): that it
 * cannot be written — disk full, database down, lease lost — and that it can
 * again. While it cannot, new jobs are refused with `StoreNotWritable` and
 * events wait for their commit; nothing already committed is lost.
 *
 * Notices are not entries of the event log: a store that cannot be written
 * cannot keep them, and a number given to one could be given to another event
 * after a crash. So they go, as they happen, to whoever listens then — and a
 * listener that starts during an outage gets its `StoreUnwritable` first: the
 * QMP server's clients (`STORE_UNWRITABLE`, `STORE_WRITABLE`; one that
 * negotiates during an outage gets it after its `qmp_capabilities`), the HTTP
 * event streams (`event: StoreUnwritable` with no `id`, each stream from its
 * start) and `Jobs.storeNotices`. They are not ordered against the job events.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The first write that failed, once per outage.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StoreUnwritable = Schema.TaggedStruct("StoreUnwritable", {
  /** When the write failed, in milliseconds of the engine's clock. */
  timestamp: Schema.Number,
  /** Why, as the store reported it. */
  error: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type StoreUnwritable = typeof StoreUnwritable.Type

/**
 * The first write that succeeded after an outage: the events that waited are
 * delivered now.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StoreWritable = Schema.TaggedStruct("StoreWritable", {
  timestamp: Schema.Number,
  /** How long the store could not be written, in milliseconds. */
  unwritableMillis: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type StoreWritable = typeof StoreWritable.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const StoreNotice = Schema.Union([StoreUnwritable, StoreWritable])

/**
 * @since 0.1.0
 * @category models
 */
export type StoreNotice = typeof StoreNotice.Type
