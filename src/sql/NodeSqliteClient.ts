/**
 * An `effect/sql` client for SQLite on Node's built-in `node:sqlite`.
 *
 * It gives the generic `SqlClient.SqlClient`, so code written against
 * `effect/sql` (statements, `Migrator`, `SqlSchema`, `SqlResolver`) runs on it
 * unchanged. One database connection is shared by every fiber: a statement
 * holds it for the statement, a transaction for the whole transaction (nested
 * ones use savepoints), a stream until it ends. Files are opened in WAL mode
 * with foreign keys enforced; closing the scope closes the database.
 *
 * Everything here is assembled from `effect/sql`'s own parts
 * (`SqlClient.make`, `SqlClient.makeSqliteAcquirers`, the SQLite compiler and
 * error classifier); this module only supplies what runs a statement on
 * `node:sqlite`.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Scope, Semaphore } from "effect"
import { Reactivity } from "effect/reactivity"
import { SqlClient, SqlError, Statement } from "effect/sql"
import * as SqliteConnection from "./internal/sqliteConnection.ts"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId = "~effect-jobs/sql/NodeSqliteClient" as const

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The client: a `SqlClient` that also carries the options it was made with.
 * `updateValues` (multi-row UPDATE … FROM VALUES) is not available in the
 * SQLite dialect and compiles to nothing.
 *
 * @since 0.1.0
 * @category models
 */
export interface NodeSqliteClient extends SqlClient.SqlClient {
  readonly [TypeId]: TypeId
  readonly config: NodeSqliteClientConfig
}

/**
 * The client's own tag, beside the generic `SqlClient.SqlClient` that `layer`
 * also provides.
 *
 * @since 0.1.0
 * @category services
 */
export const NodeSqliteClient = Context.Service<NodeSqliteClient>("effect-jobs/sql/NodeSqliteClient")

/**
 * @since 0.1.0
 * @category models
 */
export interface NodeSqliteClientConfig {
  /** A file path, or `":memory:"` for a private in-memory database. */
  readonly filename: string
  /** Open without write access; writes fail with `SqlError`. Default `false`. */
  readonly readonly?: boolean | undefined
  /** Put a writable file in WAL mode (`PRAGMA journal_mode = WAL`). Default `true`; ignored in memory. */
  readonly wal?: boolean | undefined
  /**
   * How long a statement waits for a lock held by another connection before
   * failing with a `LockTimeoutError` (SQLite's `busy_timeout`). Default 5 seconds.
   */
  readonly busyTimeout?: Duration.Input | undefined
  /** Enforce foreign keys (`PRAGMA foreign_keys`). Default `true`. */
  readonly foreignKeys?: boolean | undefined
  /** How many prepared statements to keep for reuse. Default 200; 0 prepares every statement anew. */
  readonly prepareCacheSize?: number | undefined
  readonly spanAttributes?: Record<string, unknown> | undefined
  /** Renames result columns, e.g. `snake_case` to `camelCase`. */
  readonly transformResultNames?: ((name: string) => string) | undefined
  /** Renames identifiers in queries, e.g. `camelCase` to `snake_case`. */
  readonly transformQueryNames?: ((name: string) => string) | undefined
}

const defaults = {
  readonly: false,
  wal: true,
  busyTimeout: Duration.seconds(5),
  foreignKeys: true,
  prepareCacheSize: 200
} as const

/**
 * Opens the database and builds the client on it, for the life of the scope.
 *
 * Fails with `SqlError` when the file cannot be opened, is not a database, or
 * cannot be put in WAL mode.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: NodeSqliteClientConfig
): Effect.Effect<NodeSqliteClient, SqlError.SqlError, Scope.Scope | Reactivity.Reactivity> =>
  Effect.gen(function*() {
    const readonly = config.readonly ?? defaults.readonly
    const db = yield* SqliteConnection.open({
      filename: config.filename,
      readonly,
      wal: config.wal ?? defaults.wal,
      busyTimeout: config.busyTimeout ?? defaults.busyTimeout,
      foreignKeys: config.foreignKeys ?? defaults.foreignKeys
    })
    const connection = SqliteConnection.make(db, config.prepareCacheSize ?? defaults.prepareCacheSize)
    const closed = new SqlError.SqlError({
      reason: new SqlError.ConnectionError({
        cause: undefined,
        message: `The SQLite database ${config.filename} is closed`,
        operation: "acquire"
      })
    })
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.suspend(() => db.isOpen ? Effect.succeed(connection) : Effect.fail(closed)),
      semaphore: yield* Semaphore.make(1),
      isTransaction: () => db.isOpen && db.isTransaction
    })
    const client = yield* SqlClient.make({
      driver: "node-sqlite",
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.transactionAcquirer,
      onCommitFailure: acquirers.onCommitFailure,
      isTransaction: acquirers.isTransaction,
      compiler: Statement.makeCompilerSqlite(config.transformQueryNames),
      transformRows: config.transformResultNames === undefined
        ? undefined
        : Statement.defaultTransforms(config.transformResultNames).array,
      // IMMEDIATE takes the write lock at BEGIN: a deferred transaction that
      // reads and then writes fails at once with SQLITE_BUSY when another
      // connection has written meanwhile, without waiting out `busyTimeout`.
      // A read-only connection never writes, so it must not hold that lock against others.
      beginTransaction: readonly ? "BEGIN" : "BEGIN IMMEDIATE",
      releaseSavepoint: (name) => `RELEASE SAVEPOINT ${name}`,
      prepareTransactionControls: true,
      spanAttributes: [
        ...Object.entries(config.spanAttributes ?? {}),
        ["db.system.name", "sqlite"]
      ]
    })
    return Object.assign(client, { [TypeId]: TypeId, config })
  })

/**
 * `make` as a layer: provides `NodeSqliteClient` and `SqlClient.SqlClient`
 * (the same client), with its own `Reactivity`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  config: NodeSqliteClientConfig
): Layer.Layer<NodeSqliteClient | SqlClient.SqlClient, SqlError.SqlError> =>
  Layer.effectContext(
    Effect.map(make(config), (client) =>
      Context.make(NodeSqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client)))
  ).pipe(Layer.provide(Reactivity.layer))
