/**
 * The job store on an `effect/sql` client: the same statements on SQLite and
 * Postgres. A commit is one database transaction that first checks and renews
 * the lease (so an owner that lost it writes nothing), then applies the
 * batch's removals and writes, and advances the event sequence only if the
 * batch's events come after it; any failure rolls all of it back.
 *
 * Records are encoded with their schemas on the way in and decoded on the way
 * out; a stored value that no longer decodes is reported as `StoreCorrupt`.
 *
 * @since 0.1.0
 */
import { type Cause, Clock, Effect, Option, Schema, Semaphore } from "effect"
import { SqlClient, SqlError, SqlSchema } from "effect/sql"
import { JobEvent } from "../JobEvent.ts"
import {
  LeaseHolder,
  SeqNotIncreasing,
  seqRefusal,
  StoreCorrupt,
  StoreLeaseLost,
  StoreOwned,
  StoreTooNew,
  StoreUnavailable,
  StoreWriteFailed
} from "./errors.ts"
import { heartbeats, holderGone, type LeaseOwner, timing } from "./lease.ts"
import { latestVersion, migrate, schemaVersion } from "./migrations.ts"
import { Int64, StoredJob, StoredTxn } from "./records.ts"
import type { CommitBatch, JobStoreService, OwnedStore, StoreSnapshot } from "./service.ts"

export interface SqlStoreOptions {
  /** Where the store is, for messages. */
  readonly location: string
  /** Whether `error` says the database is damaged or not a database at all (the driver knows its codes). */
  readonly isCorrupt?: ((error: SqlError.SqlError) => boolean) | undefined
}

/** The lease table has one row, under this name. */
const leaseName = "store"
/** The sequence table's row for the event log. */
const sequenceName = "events"
/** Rows per INSERT: far below SQLite's and Postgres' limits on bound parameters. */
const rowsPerStatement = 500

const chunks = <A>(items: ReadonlyArray<A>): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += rowsPerStatement) out.push(items.slice(i, i + rowsPerStatement))
  return out
}

/** The last of each key wins, in the place of its first (Postgres refuses one INSERT touching a row twice). */
const lastByKey = <A>(items: ReadonlyArray<A> | undefined, key: (a: A) => string): ReadonlyArray<A> => {
  if (items === undefined || items.length < 2) return items ?? []
  const byKey = new Map<string, A>()
  for (const item of items) byKey.set(key(item), item)
  return byKey.size === items.length ? items : Array.from(byKey.values())
}

const unique = (ids: ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  ids === undefined || ids.length < 2 ? ids ?? [] : Array.from(new Set(ids))

const JobRow = Schema.Struct({
  id: Schema.String,
  ordinal: Schema.Number,
  type: Schema.String,
  status: Schema.String,
  txn: Schema.String,
  record: Schema.fromJsonString(StoredJob)
})

const TxnRow = Schema.Struct({
  id: Schema.String,
  ordinal: Schema.Number,
  phase: Schema.String,
  record: Schema.fromJsonString(StoredTxn)
})

const CheckpointRow = Schema.Struct({ job: Schema.String, data: Schema.fromJsonString(Schema.Json) })

const EventRow = Schema.Struct({ seq: Schema.Number, job: Schema.String, event: Schema.fromJsonString(JobEvent) })

const LeaseRow = Schema.Struct({
  owner: Schema.String,
  pid: Int64,
  host: Schema.String,
  since: Int64,
  heartbeat_at: Int64,
  expires_at: Int64
})

/** What a statement, or decoding its rows, can fail with. */
type Failure = SqlError.SqlError | Schema.SchemaError | Cause.NoSuchElementError

const holderOf = (row: typeof LeaseRow.Type): LeaseHolder => ({
  owner: row.owner,
  pid: row.pid,
  host: row.host,
  since: row.since,
  heartbeatAt: row.heartbeat_at,
  expiresAt: row.expires_at
})

const Counters = Schema.Struct({
  last_seq: Int64,
  oldest: Schema.NullOr(Int64),
  jobs_ordinal: Schema.NullOr(Int64),
  txns_ordinal: Schema.NullOr(Int64)
})

/** The store on `sql`. */
export const make = (sql: SqlClient.SqlClient, options: SqlStoreOptions): JobStoreService => {
  const store = options.location
  const isCorrupt = options.isCorrupt ?? (() => false)

  // --- failures, by what was being done -------------------------------------------------------

  const reasonOf = (error: Failure) =>
    SqlError.isSqlError(error)
      ? error.message
      : error._tag === "SchemaError"
      ? `a stored value does not decode: ${error.message}`
      : "the row of the event sequence is missing"

  /** A read that failed: the store is unreachable, or what it holds is damaged. */
  const readFailed = (operation: string) => (error: Failure) =>
    !SqlError.isSqlError(error) || isCorrupt(error)
      ? new StoreCorrupt({ store, reason: `${operation}: ${reasonOf(error)}`, cause: error })
      : new StoreUnavailable({ store, operation, reason: reasonOf(error), cause: error })

  const writeFailed = (operation: string) => (error: Failure) =>
    new StoreWriteFailed({ store, operation, reason: reasonOf(error), cause: error })

  // --- the lease ---------------------------------------------------------------------------------

  const findHolder = SqlSchema.findOneOption({
    Request: Schema.Void,
    Result: LeaseRow,
    execute: () =>
      sql`SELECT owner, pid, host, since, heartbeat_at, expires_at FROM effect_jobs_lease WHERE name = ${leaseName}`
  })

  const holder = Effect.map(findHolder(undefined), (row) => Option.getOrUndefined(Option.map(row, holderOf)))

  /**
   * One attempt at the lease: a conditional upsert, which the database
   * applies atomically however many owners race. Taken, with the expired lease
   * it replaced if any; or refused, with who holds it.
   */
  const attemptLease = (owner: LeaseOwner, ttl: number) =>
    sql.withTransaction(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const previous = yield* holder
      const over = [sql`effect_jobs_lease.expires_at <= ${now}`, sql`effect_jobs_lease.owner = excluded.owner`]
      // A dead holder's lease is over now; but only its own: whoever took the lease since keeps it.
      if (previous !== undefined && previous.owner !== owner.id && holderGone(previous)) {
        over.push(sql`effect_jobs_lease.owner = ${previous.owner}`)
      }
      const taken = yield* sql`INSERT INTO effect_jobs_lease ${
        sql.insert({
          name: leaseName,
          owner: owner.id,
          pid: owner.pid,
          host: owner.host,
          since: now,
          heartbeat_at: now,
          expires_at: now + ttl
        })
      } ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, host = excluded.host,
        since = excluded.since, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
      WHERE ${sql.or(over)}
      RETURNING owner`
      if (taken.length > 0) {
        return { taken: true, takenOver: previous !== undefined && previous.owner !== owner.id ? previous : undefined }
      }
      return { taken: false, holder: yield* holder }
    }))

  /** Takes the lease unless another owner holds it unexpired; returns the expired lease it replaced, if any. */
  const takeLease = (owner: LeaseOwner, ttl: number): Effect.Effect<LeaseHolder | undefined, StoreOwned | Failure> =>
    Effect.flatMap(attemptLease(owner, ttl), (attempt) =>
      attempt.taken
        ? Effect.succeed(attempt.takenOver)
        : attempt.holder !== undefined
        ? Effect.fail(new StoreOwned({ store, holder: attempt.holder }))
        // Its holder released it between the two statements (Postgres reads each at its own moment): again.
        : takeLease(owner, ttl))

  /** Checks that `owner` still holds the lease, and renews it; inside a commit, in its transaction. */
  const renew = (owner: string, ttl: number) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const renewed = yield* sql`UPDATE effect_jobs_lease SET heartbeat_at = ${now}, expires_at = ${now + ttl}
        WHERE name = ${leaseName} AND owner = ${owner} RETURNING owner`
      if (renewed.length === 0) {
        const current = yield* holder
        return yield* new StoreLeaseLost({ store, owner, ...(current === undefined ? {} : { holder: current }) })
      }
    })

  const release = (owner: string) =>
    sql`DELETE FROM effect_jobs_lease WHERE name = ${leaseName} AND owner = ${owner}`.pipe(
      Effect.asVoid,
      // The lease then expires on its own: the next owner waits for that.
      Effect.catch((error) =>
        Effect.logWarning(`Releasing the lease on the job store ${store} failed: ${error.message}`)
      )
    )

  // --- reading -----------------------------------------------------------------------------------

  const readJobs = SqlSchema.findAll({
    Request: Schema.Void,
    Result: Schema.Struct({ record: JobRow.fields.record }),
    execute: () => sql`SELECT record FROM effect_jobs_jobs ORDER BY ordinal`
  })

  const readTxns = SqlSchema.findAll({
    Request: Schema.Void,
    Result: Schema.Struct({ record: TxnRow.fields.record }),
    execute: () => sql`SELECT record FROM effect_jobs_txns ORDER BY ordinal`
  })

  const readCheckpoints = SqlSchema.findAll({
    Request: Schema.Void,
    Result: CheckpointRow,
    execute: () => sql`SELECT job, data FROM effect_jobs_checkpoints ORDER BY job`
  })

  const readCounters = SqlSchema.findOne({
    Request: Schema.Void,
    Result: Counters,
    execute: () =>
      sql`SELECT last_seq,
        (SELECT MIN(seq) FROM effect_jobs_events) AS oldest,
        (SELECT MAX(ordinal) FROM effect_jobs_jobs) AS jobs_ordinal,
        (SELECT MAX(ordinal) FROM effect_jobs_txns) AS txns_ordinal
      FROM effect_jobs_sequence WHERE name = ${sequenceName}`
  })

  const findEvents = SqlSchema.findAll({
    Request: Schema.Struct({ after: Schema.Number, limit: Schema.Number }),
    Result: Schema.Struct({ event: EventRow.fields.event }),
    execute: ({ after, limit }) =>
      sql`SELECT event FROM effect_jobs_events WHERE seq > ${after} ORDER BY seq LIMIT ${limit}`
  })

  // --- writing -----------------------------------------------------------------------------------

  const upsertJobs = SqlSchema.void({
    Request: Schema.NonEmptyArray(JobRow),
    execute: (rows) =>
      sql`INSERT INTO effect_jobs_jobs ${sql.insert(rows)} ON CONFLICT (id) DO UPDATE SET
        type = excluded.type, status = excluded.status, txn = excluded.txn, record = excluded.record`
  })

  const upsertTxns = SqlSchema.void({
    Request: Schema.NonEmptyArray(TxnRow),
    execute: (rows) =>
      sql`INSERT INTO effect_jobs_txns ${sql.insert(rows)} ON CONFLICT (id) DO UPDATE SET
        phase = excluded.phase, record = excluded.record`
  })

  const upsertCheckpoints = SqlSchema.void({
    Request: Schema.NonEmptyArray(CheckpointRow),
    execute: (rows) =>
      sql`INSERT INTO effect_jobs_checkpoints ${sql.insert(rows)} ON CONFLICT (job) DO UPDATE SET data = excluded.data`
  })

  const insertEvents = SqlSchema.void({
    Request: Schema.NonEmptyArray(EventRow),
    execute: (rows) => sql`INSERT INTO effect_jobs_events ${sql.insert(rows)}`
  })

  const deleteWhereIn = (table: string, column: string, ids: ReadonlyArray<string>) =>
    Effect.forEach(chunks(ids), (chunk) => sql`DELETE FROM ${sql(table)} WHERE ${sql.in(column, chunk)}`, {
      discard: true
    })

  const each = <A>(
    items: ReadonlyArray<A>,
    write: (rows: readonly [A, ...Array<A>]) => Effect.Effect<void, SqlError.SqlError | Schema.SchemaError>
  ) => Effect.forEach(chunks(items), (chunk) => write(chunk as readonly [A, ...Array<A>]), { discard: true })

  /**
   * Moves the sequence to the batch's last event, provided its first comes
   * after the one stored: otherwise the whole commit is refused.
   */
  const advanceSequence = (first: number, last: number) =>
    Effect.gen(function*() {
      const moved = yield* sql`UPDATE effect_jobs_sequence SET last_seq = ${last}
        WHERE name = ${sequenceName} AND last_seq < ${first} RETURNING last_seq`
      if (moved.length === 0) {
        const counters = yield* readCounters(undefined)
        return yield* new SeqNotIncreasing({ store, seq: first, after: counters.last_seq })
      }
    })

  // --- the owner's state -------------------------------------------------------------------------

  /** The next `ordinal`: a new row's place, after every stored one. */
  let nextOrdinal = 1
  /** Commits and trims, one at a time and in call order, so sequence numbers reach the database in order. */
  const writing = Semaphore.makeUnsafe(1)

  const snapshot = (takenOver: LeaseHolder | undefined) =>
    Effect.gen(function*() {
      const jobs = yield* readJobs(undefined)
      const txns = yield* readTxns(undefined)
      const checkpoints = yield* readCheckpoints(undefined)
      const counters = yield* readCounters(undefined)
      nextOrdinal = Math.max(counters.jobs_ordinal ?? 0, counters.txns_ordinal ?? 0) + 1
      const result: StoreSnapshot = {
        jobs: jobs.map((row) => row.record),
        txns: txns.map((row) => row.record),
        checkpoints,
        lastSeq: counters.last_seq,
        oldestSeq: counters.oldest ?? counters.last_seq + 1,
        takenOver
      }
      return result
    })

  const acquire: JobStoreService["acquire"] = (owner, leaseOptions) =>
    Effect.gen(function*() {
      const every = timing(leaseOptions)
      const version = yield* schemaVersion.pipe(
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.mapError(readFailed("open"))
      )
      if (version > latestVersion) return yield* new StoreTooNew({ store, found: version, known: latestVersion })
      // Migrations run under the lease, so that an owner never sees its schema change under it;
      // a new database has no lease table until the first migration made it.
      const take = takeLease(owner, every.ttl).pipe(
        Effect.mapError((error) => error._tag === "StoreOwned" ? error : writeFailed("take the lease")(error)),
        Effect.tap(() => Effect.addFinalizer(() => release(owner.id)))
      )
      const earlyTakenOver = version >= 1 ? yield* take : undefined
      yield* migrate.pipe(
        Effect.provideService(SqlClient.SqlClient, sql),
        Effect.mapError((error) =>
          error._tag === "MigrationError"
            ? new StoreWriteFailed({ store, operation: "migrate", reason: error.message, cause: error })
            : writeFailed("migrate")(error)
        )
      )
      const takenOver = version >= 1 ? earlyTakenOver : yield* take
      const found = yield* snapshot(takenOver).pipe(Effect.mapError(readFailed("read the store")))
      yield* Effect.forkScoped(heartbeats(renewAlone(owner.id, every.ttl), every))
      const owned: OwnedStore = {
        owner,
        snapshot: found,
        commit: (batch) => writing.withPermits(1)(write(batch, owner.id, every.ttl)),
        trimEvents: (keep) => writing.withPermits(1)(trim(keep, owner.id, every.ttl))
      }
      return owned
    })

  /** A heartbeat: the lease renewed in a transaction of its own. */
  const renewAlone = (owner: string, ttl: number) =>
    sql.withTransaction(renew(owner, ttl)).pipe(
      Effect.catchTag(["SqlError", "SchemaError"], (error) => Effect.fail(writeFailed("renew the lease")(error)))
    )

  const write = (batch: CommitBatch, owner: string, ttl: number) =>
    Effect.gen(function*() {
      const events = batch.events ?? []
      // Among themselves here; after the stored ones in the database (`advanceSequence`).
      const refused = seqRefusal(store, events.slice(1), events[0]?.seq ?? 0)
      if (refused !== undefined) return yield* refused
      const jobs = lastByKey(batch.jobs, (job) => job.id).map((record) => ({
        id: record.id,
        ordinal: nextOrdinal++,
        type: record.type,
        status: record.status,
        txn: record.txn,
        record
      }))
      const txns = lastByKey(batch.txns, (txn) => txn.id).map((record) => ({
        id: record.id,
        ordinal: nextOrdinal++,
        phase: record.phase,
        record
      }))
      const checkpoints = lastByKey(batch.checkpoints, (checkpoint) => checkpoint.job)
      yield* sql.withTransaction(Effect.gen(function*() {
        yield* renew(owner, ttl)
        const removedJobs = unique(batch.removedJobs)
        yield* deleteWhereIn("effect_jobs_jobs", "id", removedJobs)
        yield* deleteWhereIn("effect_jobs_checkpoints", "job", removedJobs)
        yield* deleteWhereIn("effect_jobs_txns", "id", unique(batch.removedTxns))
        yield* deleteWhereIn("effect_jobs_checkpoints", "job", unique(batch.removedCheckpoints))
        yield* each(jobs, upsertJobs)
        yield* each(txns, upsertTxns)
        yield* each(checkpoints, upsertCheckpoints)
        if (events.length > 0) {
          yield* advanceSequence(events[0]!.seq, events[events.length - 1]!.seq)
          yield* each(events.map((event) => ({ seq: event.seq, job: event.id, event })), insertEvents)
        }
      }))
    }).pipe(
      Effect.catchTag(
        ["SqlError", "SchemaError", "NoSuchElementError"],
        (error) => Effect.fail(writeFailed("commit")(error))
      )
    )

  const trim = (keep: number, owner: string, ttl: number) =>
    sql.withTransaction(Effect.gen(function*() {
      yield* renew(owner, ttl)
      // The newest `keep` events stay: everything up to the one just older than them goes.
      yield* sql`DELETE FROM effect_jobs_events WHERE seq <= (
        SELECT seq FROM effect_jobs_events ORDER BY seq DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(keep))}
      )`
      const counters = yield* readCounters(undefined)
      return counters.oldest ?? counters.last_seq + 1
    })).pipe(
      Effect.catchTag(
        ["SqlError", "SchemaError", "NoSuchElementError"],
        (error) => Effect.fail(writeFailed("trim events")(error))
      )
    )

  return {
    location: store,
    acquire,
    readEvents: (afterSeq, limit) =>
      findEvents({ after: afterSeq, limit: Math.max(0, Math.floor(limit)) }).pipe(
        Effect.map((rows) => rows.map((row) => row.event)),
        Effect.mapError(readFailed("read events"))
      )
  }
}
