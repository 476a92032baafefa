/**
 * The job store's typed errors. Each names the store (`store`: where it is,
 * as `sqlite:PATH`, a Postgres URL without its password, or `memory`) and says
 * in its message what went wrong and, where there is one, what to do.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * Who holds the store's lease, as the lease row records it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const LeaseHolder = Schema.Struct({
  /** The owner's id (one per process run). */
  owner: Schema.String,
  pid: Schema.Number,
  host: Schema.String,
  /** When it took the lease (milliseconds of its clock). */
  since: Schema.Number,
  /** Its last heartbeat. */
  heartbeatAt: Schema.Number,
  /** When the lease runs out unless it beats again. */
  expiresAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type LeaseHolder = typeof LeaseHolder.Type

/** "abc (pid 12 on host) since 2026-…". */
const describeHolder = (holder: LeaseHolder): string =>
  `${holder.owner} (pid ${holder.pid} on ${holder.host}) since ${new Date(holder.since).toISOString()}`

/**
 * Another owner holds the store's lease, and it has not expired: the store is
 * in use by another server.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreOwned extends Schema.TaggedError<StoreOwned>()("StoreOwned", {
  store: Schema.String,
  holder: LeaseHolder
}) {
  override get message() {
    return `The job store ${this.store} is in use by ${describeHolder(this.holder)}; ` +
      `its lease runs until ${new Date(this.holder.expiresAt).toISOString()} unless it is renewed`
  }
}

/**
 * This owner's lease ran out and another owner took the store over (this
 * process stalled longer than the lease lasts): nothing more may be written.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreLeaseLost extends Schema.TaggedError<StoreLeaseLost>()("StoreLeaseLost", {
  store: Schema.String,
  owner: Schema.String,
  holder: Schema.optionalKey(LeaseHolder)
}) {
  override get message() {
    const now = this.holder === undefined ? "nobody holds it now" : `it is now held by ${describeHolder(this.holder)}`
    return `The lease of ${this.owner} on the job store ${this.store} was lost (${now}): nothing more is written`
  }
}

/**
 * The database was written by a newer version of effect-jobs, whose schema
 * this version does not know. It is left as it is.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreTooNew extends Schema.TaggedError<StoreTooNew>()("StoreTooNew", {
  store: Schema.String,
  /** The schema version the database has. */
  found: Schema.Number,
  /** The newest schema version this code knows. */
  known: Schema.Number
}) {
  override get message() {
    return `The job store ${this.store} has schema version ${this.found}, written by a newer effect-jobs; ` +
      `this version knows versions up to ${this.known} and leaves it untouched: upgrade effect-jobs to use it`
  }
}

/**
 * The store cannot be reached or read: the database cannot be opened or
 * connected to, or a read failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  store: Schema.String,
  /** What was being done: "open", "acquire", "read events", … */
  operation: Schema.String,
  /** The database's own words. */
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Unknown)
}) {
  override get message() {
    return `The job store ${this.store} is unavailable (${this.operation}): ${this.reason}`
  }
}

/**
 * A write failed (disk full, database down, …) and was rolled back: nothing
 * of it was stored, and what was stored before is intact.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreWriteFailed extends Schema.TaggedError<StoreWriteFailed>()("StoreWriteFailed", {
  store: Schema.String,
  operation: Schema.String,
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Unknown)
}) {
  override get message() {
    return `Writing to the job store ${this.store} failed (${this.operation}), and nothing of it was stored: ` +
      this.reason
  }
}

/**
 * The store is not a database, or not one that can be read: a damaged file,
 * or one that is something else entirely. It is left as it is.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreCorrupt extends Schema.TaggedError<StoreCorrupt>()("StoreCorrupt", {
  store: Schema.String,
  reason: Schema.String,
  cause: Schema.optionalKey(Schema.Unknown)
}) {
  override get message() {
    return `The job store ${this.store} cannot be read as a job store, and is left untouched: ${this.reason}`
  }
}

/**
 * A commit's events do not come after the ones stored: a sequence number was
 * repeated or went back. Nothing of the commit was stored.
 *
 * @since 0.1.0
 * @category errors
 */
export class SeqNotIncreasing extends Schema.TaggedError<SeqNotIncreasing>()("SeqNotIncreasing", {
  store: Schema.String,
  /** The offending sequence number. */
  seq: Schema.Number,
  /** The sequence number it had to be greater than. */
  after: Schema.Number
}) {
  override get message() {
    return `Event sequence number ${this.seq} does not come after ${this.after} in the job store ${this.store}: ` +
      `sequence numbers must be strictly increasing, and the commit was refused`
  }
}

/**
 * The first of `events` whose sequence number does not come after the one
 * before it (the first compared with `after`), as the error; none if all do.
 * @internal
 */
export const seqRefusal = (
  store: string,
  events: ReadonlyArray<{ readonly seq: number }>,
  after: number
): SeqNotIncreasing | undefined => {
  let previous = after
  for (const event of events) {
    if (!(event.seq > previous)) return new SeqNotIncreasing({ store, seq: event.seq, after: previous })
    previous = event.seq
  }
  return undefined
}
