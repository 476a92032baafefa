/**
 * The store's schema, as versioned migrations run by effect's `Migrator`, in
 * SQL that SQLite and Postgres both take. The version of a database is the
 * highest migration recorded in `effect_jobs_migrations`; a database with a
 * version above the newest one here was written by a newer effect-jobs and is
 * refused before anything is written to it.
 *
 * Tables (every name prefixed `effect_jobs_`, so a shared Postgres database
 * can hold them beside an application's own):
 *
 * - `lease`: one row, the owner of the store and until when.
 * - `jobs`, `txns`: one row per job and transaction, the record as JSON text,
 *   the fields worth querying in columns, and `ordinal`, the order in which
 *   each was first stored.
 * - `checkpoints`: a driver's JSON per job.
 * - `events`: the event log, by sequence number, each event as JSON text.
 * - `sequence`: the last sequence number committed, which outlives trimmed events.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { Migrator, SqlClient, type SqlError } from "effect/sql"
import { Int64 } from "./records.ts"

/** Where `Migrator` records the migrations run. */
export const migrationsTable = "effect_jobs_migrations"

const statements = (
  ...make: ReadonlyArray<(sql: SqlClient.SqlClient) => Effect.Effect<unknown, SqlError.SqlError>>
) => SqlClient.SqlClient.use((sql) => Effect.forEach(make, (f) => f(sql), { discard: true }))

const migrations = {
  "1_store": statements(
    (sql) =>
      sql`CREATE TABLE effect_jobs_lease (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        pid BIGINT NOT NULL,
        host TEXT NOT NULL,
        since BIGINT NOT NULL,
        heartbeat_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      )`,
    (sql) =>
      sql`CREATE TABLE effect_jobs_jobs (
        id TEXT PRIMARY KEY,
        ordinal BIGINT NOT NULL,
        type TEXT NOT NULL,
        status TEXT NOT NULL,
        txn TEXT NOT NULL,
        record TEXT NOT NULL
      )`,
    (sql) => sql`CREATE INDEX effect_jobs_jobs_ordinal ON effect_jobs_jobs (ordinal)`,
    (sql) => sql`CREATE INDEX effect_jobs_jobs_txn ON effect_jobs_jobs (txn)`,
    (sql) =>
      sql`CREATE TABLE effect_jobs_txns (
        id TEXT PRIMARY KEY,
        ordinal BIGINT NOT NULL,
        phase TEXT NOT NULL,
        record TEXT NOT NULL
      )`,
    (sql) => sql`CREATE INDEX effect_jobs_txns_ordinal ON effect_jobs_txns (ordinal)`,
    (sql) =>
      sql`CREATE TABLE effect_jobs_checkpoints (
        job TEXT PRIMARY KEY,
        data TEXT NOT NULL
      )`,
    (sql) =>
      sql`CREATE TABLE effect_jobs_events (
        seq BIGINT PRIMARY KEY,
        job TEXT NOT NULL,
        event TEXT NOT NULL
      )`,
    (sql) =>
      sql`CREATE TABLE effect_jobs_sequence (
        name TEXT PRIMARY KEY,
        last_seq BIGINT NOT NULL
      )`,
    (sql) => sql`INSERT INTO effect_jobs_sequence (name, last_seq) VALUES ('events', 0)`
  )
}

/** The newest schema version this code knows. */
export const latestVersion: number = Math.max(...Object.keys(migrations).map((key) => Number(key.split("_")[0])))

/** Runs the migrations the database has not had yet, in one transaction. */
export const migrate = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: migrationsTable })

const VersionRow = Schema.Struct({ version: Schema.NullOr(Int64) })

/** The database's schema version: 0 for a database the store has never used. Reads only. */
export const schemaVersion: Effect.Effect<number, SqlError.SqlError | Schema.SchemaError, SqlClient.SqlClient> =
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const exists = yield* sql.onDialectOrElse({
      pg: () => sql`SELECT 1 AS found WHERE to_regclass(${migrationsTable}) IS NOT NULL`,
      // The two dialects the store runs on: the other is SQLite.
      orElse: () => sql`SELECT 1 AS found FROM sqlite_master WHERE type = 'table' AND name = ${migrationsTable}`
    })
    if (exists.length === 0) return 0
    const rows = yield* sql`SELECT MAX(migration_id) AS version FROM ${sql(migrationsTable)}`
    const [row] = yield* Schema.decodeUnknownEffect(Schema.Array(VersionRow))(rows)
    return row?.version ?? 0
  })
