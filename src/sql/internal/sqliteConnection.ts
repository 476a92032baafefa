/**
 * One `node:sqlite` database seen as an `effect/sql` `Connection`: opening it
 * (pragmas included), running compiled statements with bound parameters, and
 * turning what SQLite throws into `SqlError`.
 *
 * `node:sqlite` is synchronous, so every method runs the statement to its end
 * inside one effect step; the client around it decides who may use the
 * connection when.
 *
 * @internal
 */
import { type Array as Arr, Cause, Duration, Effect, type Pull, type Scope, Stream } from "effect"
import { SqlClient, type SqlConnection, SqlError } from "effect/sql"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"

/** How the database is opened; the public options with their defaults filled in. */
export interface OpenOptions {
  readonly filename: string
  readonly readonly: boolean
  readonly wal: boolean
  readonly busyTimeout: Duration.Input
  readonly foreignKeys: boolean
}

type Row = Record<string, unknown>
type Rows = ReadonlyArray<Row>
type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

/**
 * node:sqlite reports SQLite's (extended) result code as `errcode`; effect's
 * classifier reads `errno`. The error is fresh from the failed call, so the
 * code is copied onto it and the original stays the cause.
 */
export const toSqlError = (cause: unknown, operation: string): SqlError.SqlError => {
  if (SqlError.isSqlError(cause)) return cause
  const error = cause as { errcode?: unknown; errno?: unknown; message?: unknown }
  const code = typeof error === "object" && error !== null && typeof error.errcode === "number"
    ? error.errcode
    : undefined
  if (code !== undefined && error.errno === undefined) error.errno = code
  const text = typeof error?.message === "string" ? error.message : String(cause)
  const message = code === undefined ? text : `${text} (SQLite error ${code})`
  return new SqlError.SqlError({ reason: SqlError.classifySqliteError(cause, { message, operation }) })
}

const isInMemory = (filename: string) => filename === "" || filename === ":memory:"

/**
 * Passed ahead of the positional parameters: node:sqlite reads a plain object
 * in first place as named parameters, which would make a `Date` or a record
 * parameter vanish silently instead of failing to bind.
 */
const noNamedParameters: Record<string, SQLInputValue> = Object.freeze({})

/**
 * The parameters as node:sqlite takes them. `undefined` binds as NULL, as it
 * does in effect's insert and update helpers; node:sqlite refuses it.
 */
const bind = (params: ReadonlyArray<unknown>): Array<SQLInputValue> =>
  (params.includes(undefined) ? params.map((value) => value ?? null) : params) as Array<SQLInputValue>

/** Rows as plain objects: node:sqlite makes them without a prototype. */
const plainRows = (rows: Rows): Rows => {
  const out = new Array<Row>(rows.length)
  for (let i = 0; i < rows.length; i++) out[i] = { ...rows[i] }
  return out
}

/**
 * Runs `body` with the fiber's `SafeIntegers` setting (read 64-bit integers as
 * `bigint`) and maps anything it throws to `SqlError`.
 */
const attempt = <A>(operation: string, body: (readBigInts: boolean) => A): Effect.Effect<A, SqlError.SqlError> =>
  Effect.withFiber((fiber) => {
    try {
      return Effect.succeed(body(fiber.getRef(SqlClient.SafeIntegers)))
    } catch (cause) {
      return Effect.fail(toSqlError(cause, operation))
    }
  })

const rowsOf = (statement: StatementSync, params: ReadonlyArray<unknown>, readBigInts: boolean): Rows => {
  statement.setReadBigInts(readBigInts)
  statement.setReturnArrays(false)
  return plainRows(statement.all(noNamedParameters, ...bind(params)))
}

const valuesOf = (
  statement: StatementSync,
  params: ReadonlyArray<unknown>,
  readBigInts: boolean
): ReadonlyArray<ReadonlyArray<unknown>> => {
  statement.setReadBigInts(readBigInts)
  statement.setReturnArrays(true)
  return statement.all(noNamedParameters, ...bind(params)) as unknown as ReadonlyArray<ReadonlyArray<unknown>>
}

/** What may follow the one statement in a statement's SQL: blanks, comments and semicolons. */
const emptyTail = /^(?:\s|;|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*$/

/**
 * Prepares `sql`, refusing SQL that holds more than one statement: SQLite
 * prepares the first and node:sqlite drops the rest without a word, so a
 * script's later statements would silently never run.
 */
const prepare = (db: DatabaseSync, sql: string): StatementSync => {
  const statement = db.prepare(sql)
  const first = statement.sourceSQL
  const tail = sql.startsWith(first) ? sql.slice(first.length) : ""
  if (!emptyTail.test(tail)) {
    throw new SqlError.SqlError({
      reason: new SqlError.SqlSyntaxError({
        cause: sql,
        message: `One statement at a time: SQLite would run only the first, and ignore '${tail.trim()}'`,
        operation: "prepare"
      })
    })
  }
  return statement
}

/** Rows per chunk of a streamed query. */
const streamChunkSize = 128

/**
 * Opens the database and closes it with the scope. Checks that the file is a
 * database now, so that a wrong file fails here rather than at the first query,
 * and switches a writable file to WAL, refusing to go on if SQLite will not.
 */
export const open = (options: OpenOptions): Effect.Effect<DatabaseSync, SqlError.SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () =>
          new DatabaseSync(options.filename, {
            readOnly: options.readonly,
            enableForeignKeyConstraints: options.foreignKeys,
            timeout: Duration.toMillis(Duration.fromInputUnsafe(options.busyTimeout))
          }),
        catch: (cause) => toSqlError(cause, "open")
      }),
      (db) => Effect.sync(() => db.isOpen && db.close())
    )
    yield* Effect.try({
      try: () => db.prepare("PRAGMA schema_version").get(),
      catch: (cause) => toSqlError(cause, "open")
    })
    if (options.wal && !options.readonly && !isInMemory(options.filename)) {
      const mode = yield* Effect.try({
        try: () => db.prepare("PRAGMA journal_mode = WAL").get()?.journal_mode,
        catch: (cause) => toSqlError(cause, "open")
      })
      if (mode !== "wal") {
        return yield* new SqlError.SqlError({
          reason: new SqlError.ConnectionError({
            cause: mode,
            message: `SQLite kept journal_mode '${String(mode)}' for ${options.filename} instead of switching to WAL`,
            operation: "open"
          })
        })
      }
    }
    return db
  })

/**
 * The `Connection` over an open database. Statements run through `execute`
 * (and its values/raw forms) are prepared once and kept, up to
 * `cacheSize` of them, least recently used first out; unprepared and streamed
 * ones are prepared for the one run.
 */
export const make = (db: DatabaseSync, cacheSize: number): SqlConnection.Connection => {
  const cache = new Map<string, StatementSync>()

  const prepared = (sql: string): StatementSync => {
    const hit = cache.get(sql)
    if (hit !== undefined) {
      // Re-inserting moves it to the young end of the map's order.
      cache.delete(sql)
      cache.set(sql, hit)
      return hit
    }
    const statement = prepare(db, sql)
    if (cacheSize > 0) {
      if (cache.size >= cacheSize) cache.delete(cache.keys().next().value!)
      cache.set(sql, statement)
    }
    return statement
  }

  const rows = (sql: string, params: ReadonlyArray<unknown>, transform: TransformRows, cached: boolean) => {
    const effect = attempt("execute", (readBigInts) =>
      rowsOf(cached ? prepared(sql) : prepare(db, sql), params, readBigInts))
    return transform === undefined ? effect : Effect.map(effect, transform)
  }

  const stream = (sql: string, params: ReadonlyArray<unknown>, transform: TransformRows) =>
    Stream.unwrap(Effect.gen(function*() {
      const iterator = yield* Effect.acquireRelease(
        attempt("executeStream", (readBigInts) => {
          // Its own statement: a cached one could be re-run, and so reset, while the stream is being read.
          const statement = prepare(db, sql)
          statement.setReadBigInts(readBigInts)
          return statement.iterate(noNamedParameters, ...bind(params))
        }),
        (iterator) => Effect.sync(() => iterator.return?.())
      )
      let done = false
      const pull = Effect.suspend((): Pull.Pull<Arr.NonEmptyReadonlyArray<Row>, SqlError.SqlError> => {
        if (done) return Cause.done()
        const chunk: Array<Row> = []
        try {
          while (chunk.length < streamChunkSize) {
            const next = iterator.next()
            if (next.done === true) {
              done = true
              break
            }
            chunk.push({ ...next.value })
          }
        } catch (cause) {
          return Effect.fail(toSqlError(cause, "executeStream"))
        }
        if (chunk.length === 0) return Cause.done()
        const out = transform === undefined ? chunk : transform(chunk)
        return Effect.succeed(out as Arr.NonEmptyReadonlyArray<Row>)
      })
      return Stream.fromPull(Effect.succeed(pull))
    }))

  return {
    execute: (sql, params, transform) => rows(sql, params, transform, true),
    executeUnprepared: (sql, params, transform) => rows(sql, params ?? [], transform, false),
    executeValues: (sql, params) =>
      attempt("executeValues", (readBigInts) => valuesOf(prepared(sql), params, readBigInts)),
    executeValuesUnprepared: (sql, params) =>
      attempt("executeValuesUnprepared", (readBigInts) => valuesOf(prepare(db, sql), params, readBigInts)),
    // Rows for a statement that returns some; otherwise SQLite's count of changed rows and the last rowid.
    executeRaw: (sql, params) =>
      attempt("executeRaw", (readBigInts) => {
        const statement = prepared(sql)
        if (statement.columns().length > 0) return rowsOf(statement, params, readBigInts)
        statement.setReadBigInts(readBigInts)
        const { changes, lastInsertRowid } = statement.run(noNamedParameters, ...bind(params))
        return { changes, lastInsertRowid }
      }),
    executeStream: stream
  }
}
