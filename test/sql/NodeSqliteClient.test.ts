/**
 * The `node:sqlite` client against real databases, in memory and in files in
 * a temporary directory: bound parameters, the statement helpers, transactions
 * and savepoints, one connection shared by fibers, errors, the pragmas it sets,
 * closing, and effect's `Migrator` and `SqlSchema` running on it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Array as Arr, Cause, Deferred, Effect, Exit, Fiber, Layer, Schema, Scope, Stream, String as Str } from "effect"
import { Reactivity } from "effect/reactivity"
import { Migrator, SqlClient, type SqlError, SqlSchema } from "effect/sql"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as NodeSqliteClient from "../../src/sql/NodeSqliteClient.ts"

/** A fresh directory, removed with its contents when the scope closes. */
const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(tmpdir(), "effect-jobs-sql-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

const fileIn: Effect.Effect<string, never, Scope.Scope> = Effect.map(tempDir, (dir) => join(dir, "jobs.db"))

type Options = Omit<NodeSqliteClient.NodeSqliteClientConfig, "filename">

/** The client as a layer, on the database `filename` names (a temp dir's lives as long as the layer). */
const clientOn = (filename: Effect.Effect<string, never, Scope.Scope>, options: Options = {}) =>
  Layer.unwrap(Effect.map(filename, (filename) => NodeSqliteClient.layer({ ...options, filename })))

/** A client of its own, for the life of the test's scope. */
const openClient = (config: NodeSqliteClient.NodeSqliteClientConfig) =>
  NodeSqliteClient.make(config).pipe(Effect.provide(Reactivity.layer))

const createItems = SqlClient.SqlClient.use((sql) =>
  sql`CREATE TABLE item (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    size REAL,
    data BLOB,
    big INTEGER
  )`
)

const insertItem = (name: string) => SqlClient.SqlClient.use((sql) => sql`INSERT INTO item (name) VALUES (${name})`)

const itemNames = SqlClient.SqlClient.use((sql) =>
  Effect.map(sql<{ name: string }>`SELECT name FROM item ORDER BY id`, (rows) => rows.map((row) => row.name))
)

const reasonOf = (error: SqlError.SqlError) => error.reason

// #region doc
const migrations = Migrator.fromRecord({
  "1_create_jobs": SqlClient.SqlClient.use((sql) =>
    sql`CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL, progress INTEGER NOT NULL DEFAULT 0)`
  )
})

const program = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* Migrator.make({})({ loader: migrations }) // runs "1_create_jobs" once per database
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`INSERT INTO jobs ${sql.insert({ id: "j1", status: "running" })}`
    yield* sql`UPDATE jobs SET progress = ${40} WHERE id = ${"j1"}`
  }))
  return yield* sql<{ id: string; status: string; progress: number }>`SELECT * FROM jobs`
})

const database = (filename: string) => NodeSqliteClient.layer({ filename, busyTimeout: "2 seconds" })
// #endregion doc

const targets = [
  { name: "in memory", filename: Effect.succeed(":memory:") },
  { name: "in a file", filename: fileIn }
]

for (const target of targets) {
  const withClient = <A, E>(effect: Effect.Effect<A, E, SqlClient.SqlClient | Scope.Scope>) =>
    Effect.provide(effect, clientOn(target.filename))

  describe(`NodeSqliteClient ${target.name}`, () => {
    it.effect("binds numbers, strings, null, blobs and booleans as parameters, never as SQL text", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const hostile = "x', 0, NULL); DROP TABLE item; --"
        const blob = new Uint8Array([0, 1, 127, 255])
        const insert = sql`INSERT INTO item (name, size, data) VALUES (${hostile}, ${-1.5}, ${blob})`
        assert.deepStrictEqual(insert.compile(), [
          "INSERT INTO item (name, size, data) VALUES (?, ?, ?)",
          [hostile, -1.5, blob]
        ])
        yield* insert
        yield* sql`INSERT INTO item (name, size, data) VALUES (${"é ☃ \"quoted\""}, ${null}, ${undefined})`
        assert.deepStrictEqual(yield* sql`SELECT name, size, data FROM item ORDER BY id`, [
          { name: hostile, size: -1.5, data: blob },
          { name: "é ☃ \"quoted\"", size: null, data: null }
        ])
        assert.deepStrictEqual(yield* sql`SELECT ${true} AS yes, ${false} AS no, ${7} * 6 AS product`, [
          { yes: 1, no: 0, product: 42 }
        ])
      })))

    it.effect("binds bigints, and reads 64-bit integers back exactly under SafeIntegers", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const big = 2n ** 62n + 1n
        yield* sql`INSERT INTO item (name, big) VALUES (${"big"}, ${big})`
        const exact = yield* sql`SELECT big FROM item WHERE name = ${"big"}`.pipe(
          Effect.provideService(SqlClient.SafeIntegers, true)
        )
        assert.deepStrictEqual(exact, [{ big }])
        // Without SafeIntegers a value past 2^53 cannot be a number, and says so rather than rounding.
        const tooLarge = yield* Effect.flip(sql`SELECT big FROM item WHERE name = ${"big"}`)
        assert.include(tooLarge.message, "too large")
        assert.deepStrictEqual(yield* sql`SELECT ${5n} + 1 AS n`, [{ n: 6 }])
      })))

    it.effect("refuses a parameter SQLite cannot store instead of dropping it", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const error = yield* Effect.flip(sql`SELECT ${new Date(0)} AS d, ${1} AS one`)
        assert.include(error.message, "cannot be bound")
      })))

    it.effect("refuses SQL that holds more than one statement, rather than run only the first", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const script = yield* Effect.flip(sql`CREATE TABLE a (x); CREATE TABLE b (y)`)
        assert.strictEqual(script.reason._tag, "SqlSyntaxError")
        assert.include(script.message, "ignore 'CREATE TABLE b (y)'")
        assert.deepStrictEqual(yield* sql`SELECT name FROM sqlite_master`, [])
        // A trailing semicolon or comment is not a second statement.
        assert.deepStrictEqual(yield* sql`SELECT ${1} AS one; -- the answer\n`, [{ one: 1 }])
        assert.deepStrictEqual(yield* sql`SELECT 2 AS two /* comment */ ;`.unprepared, [{ two: 2 }])
      })))

    it.effect("runs the statement helpers: insert, in, update, RETURNING, values, raw, unprepared", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const rows = [{ name: "a", size: 1 }, { name: "b", size: 2 }, { name: "c", size: 3 }] as const
        yield* sql`INSERT INTO item ${sql.insert(rows)}`
        const picked = yield* sql`SELECT name FROM item WHERE ${sql.in("name", ["a", "c", "absent"])} ORDER BY name`
        assert.deepStrictEqual(picked, [{ name: "a" }, { name: "c" }])
        assert.deepStrictEqual(yield* sql`SELECT name FROM item WHERE ${sql.in("name", [])}`, [])
        yield* sql`UPDATE item SET ${sql.update({ size: 10 })} WHERE name = ${"b"}`
        const returned = yield* sql`INSERT INTO item ${sql.insert({ name: "d" })} RETURNING id, name`
        assert.deepStrictEqual(returned, [{ id: 4, name: "d" }])
        assert.strictEqual(Object.getPrototypeOf(returned[0]), Object.prototype)
        assert.deepStrictEqual(yield* sql`SELECT name, size FROM item ORDER BY id`.values, [
          ["a", 1],
          ["b", 10],
          ["c", 3],
          ["d", null]
        ])
        assert.deepStrictEqual(yield* sql`DELETE FROM item WHERE size > ${2}`.raw, { changes: 2, lastInsertRowid: 4 })
        assert.deepStrictEqual(yield* sql`SELECT count(*) AS n FROM item`.unprepared, [{ n: 2 }])
        assert.deepStrictEqual(yield* sql`SELECT name FROM item ORDER BY id`.valuesUnprepared, [["a"], ["d"]])
      })))

    it.effect("streams rows from the statement's iterator, and frees the connection when the stream stops", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const names = Arr.makeBy(300, (i) => `item-${String(i).padStart(3, "0")}`)
        yield* sql`INSERT INTO item ${sql.insert(Arr.map(names, (name) => ({ name })))}`
        const streamed = yield* Stream.runCollect(sql<{ name: string }>`SELECT name FROM item ORDER BY name`.stream)
        assert.deepStrictEqual(streamed.map((row) => row.name), names)
        const firstThree = yield* Stream.runCollect(
          Stream.take(sql<{ name: string }>`SELECT name FROM item ORDER BY name`.stream, 3)
        )
        assert.deepStrictEqual(firstThree.map((row) => row.name), names.slice(0, 3))
        // A stream holds the connection while it runs; had this one kept it, this would wait forever.
        const count = yield* sql`SELECT count(*) AS n FROM item`.pipe(Effect.timeout("5 seconds"))
        assert.deepStrictEqual(count, [{ n: 300 }])
        // SQLite refuses to drop a table that an unfinished statement is still reading.
        yield* sql`DROP TABLE item`
      })))

    it.effect("commits a transaction, and rolls a failed one back whole", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        yield* sql.withTransaction(Effect.andThen(insertItem("a"), insertItem("b")))
        const failed = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* insertItem("c")
          yield* insertItem("d")
          return yield* Effect.fail("refused" as const)
        })))
        assert.deepStrictEqual(failed, Exit.fail("refused" as const))
        assert.deepStrictEqual(yield* itemNames, ["a", "b"])
      })))

    it.effect("a failure in a nested transaction rolls back to its savepoint only", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* insertItem("outer-1")
          const inner = yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
            yield* insertItem("inner")
            return yield* Effect.fail("inner refused" as const)
          })))
          assert.deepStrictEqual(inner, Exit.fail("inner refused" as const))
          yield* sql.withTransaction(insertItem("inner-kept"))
          yield* insertItem("outer-2")
        }))
        assert.deepStrictEqual(yield* itemNames, ["outer-1", "inner-kept", "outer-2"])
        // A savepoint that succeeded still goes when the transaction around it fails.
        yield* Effect.exit(sql.withTransaction(Effect.gen(function*() {
          yield* sql.withTransaction(insertItem("nested-ok"))
          return yield* Effect.fail("outer refused")
        })))
        assert.deepStrictEqual(yield* itemNames, ["outer-1", "inner-kept", "outer-2"])
      })))

    it.effect("an interrupted transaction rolls back, and the connection is usable after it", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const inserted = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          sql.withTransaction(Effect.gen(function*() {
            yield* insertItem("interrupted")
            yield* Deferred.succeed(inserted, undefined)
            return yield* Effect.never
          })),
          { startImmediately: true }
        )
        yield* Deferred.await(inserted)
        yield* Fiber.interrupt(fiber)
        assert.deepStrictEqual(yield* itemNames, [])
        yield* sql.withTransaction(insertItem("after"))
        assert.deepStrictEqual(yield* itemNames, ["after"])
      })))

    it.effect("a transaction holds the connection: another fiber's statement waits until it has ended", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const inserted = yield* Deferred.make<void>()
        const finish = yield* Deferred.make<void>()
        const transaction = yield* Effect.forkChild(
          Effect.exit(sql.withTransaction(Effect.gen(function*() {
            yield* insertItem("uncommitted")
            yield* Deferred.succeed(inserted, undefined)
            yield* Deferred.await(finish)
            return yield* Effect.fail("rolled back" as const)
          }))),
          { startImmediately: true }
        )
        yield* Deferred.await(inserted)
        // Run inside the open transaction, this would see its row at once.
        const reader = yield* Effect.forkChild(itemNames, { startImmediately: true })
        yield* Effect.yieldNow
        assert.isUndefined(reader.pollUnsafe())
        yield* Deferred.succeed(finish, undefined)
        assert.deepStrictEqual(yield* Fiber.join(transaction), Exit.fail("rolled back" as const))
        assert.deepStrictEqual(yield* Fiber.join(reader), [])
      })))

    it.effect("concurrent transactions run one after another", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE counter (n INTEGER NOT NULL)`
        yield* sql`INSERT INTO counter (n) VALUES (${0})`
        // Each reads, yields to the other fibers, then writes what it read plus one.
        const increment = sql.withTransaction(Effect.gen(function*() {
          const [{ n }] = yield* sql<{ n: number }>`SELECT n FROM counter`
          yield* Effect.yieldNow
          yield* sql`UPDATE counter SET n = ${n + 1}`
        }))
        yield* Effect.all(Array.from({ length: 20 }, () => increment), { concurrency: "unbounded" })
        assert.deepStrictEqual(yield* sql`SELECT n FROM counter`, [{ n: 20 }])
      })))

    it.effect("a COMMIT that fails (a deferred foreign key) rolls back, and the connection goes on", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        yield* sql`CREATE TABLE part (
          id INTEGER PRIMARY KEY,
          item INTEGER NOT NULL REFERENCES item (id) DEFERRABLE INITIALLY DEFERRED
        )`
        const failed = yield* Effect.flip(sql.withTransaction(Effect.gen(function*() {
          yield* insertItem("kept only if the commit succeeds")
          yield* sql`INSERT INTO part (item) VALUES (${999})`
        })))
        assert.strictEqual(failed.message, "FOREIGN KEY constraint failed (SQLite error 787)")
        assert.deepStrictEqual(yield* itemNames, [])
        yield* sql.withTransaction(insertItem("next"))
        assert.deepStrictEqual(yield* itemNames, ["next"])
      })))

    it.effect("fails with SqlError carrying SQLite's message and code", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createItems
        const syntax = yield* Effect.flip(sql`SELEC name FROM item`)
        assert.strictEqual(syntax._tag, "SqlError")
        assert.strictEqual(syntax.message, "near \"SELEC\": syntax error (SQLite error 1)")
        yield* insertItem("a")
        const duplicate = reasonOf(yield* Effect.flip(insertItem("a")))
        assert.strictEqual(duplicate._tag, "UniqueViolation")
        assert.strictEqual(duplicate._tag === "UniqueViolation" && duplicate.constraint, "item.name")
        assert.strictEqual(duplicate.message, "UNIQUE constraint failed: item.name (SQLite error 2067)")
        // Foreign keys are enforced.
        yield* sql`CREATE TABLE part (id INTEGER PRIMARY KEY, item INTEGER NOT NULL REFERENCES item (id))`
        const orphan = reasonOf(yield* Effect.flip(sql`INSERT INTO part (item) VALUES (${999})`))
        assert.strictEqual(orphan._tag, "ConstraintError")
        assert.strictEqual(orphan.message, "FOREIGN KEY constraint failed (SQLite error 787)")
      })))

    it.effect("effect's Migrator runs versioned migrations once, and records them", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const migrate = Migrator.make({})
        const migrations = {
          "1_create_jobs": SqlClient.SqlClient.use((sql) =>
            sql`CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT NOT NULL)`
          ),
          "2_add_progress": SqlClient.SqlClient.use((sql) =>
            sql`ALTER TABLE jobs ADD COLUMN progress INTEGER NOT NULL DEFAULT 0`
          )
        }
        assert.deepStrictEqual(yield* migrate({ loader: Migrator.fromRecord(migrations) }), [
          [1, "create_jobs"],
          [2, "add_progress"]
        ])
        assert.deepStrictEqual(yield* migrate({ loader: Migrator.fromRecord(migrations) }), [])
        const later = {
          ...migrations,
          "3_index_status": SqlClient.SqlClient.use((sql) => sql`CREATE INDEX jobs_status ON jobs (status)`)
        }
        assert.deepStrictEqual(yield* migrate({ loader: Migrator.fromRecord(later) }), [[3, "index_status"]])
        yield* sql`INSERT INTO jobs (id, status) VALUES (${"j1"}, ${"running"})`
        assert.deepStrictEqual(yield* sql`SELECT id, status, progress FROM jobs`, [
          { id: "j1", status: "running", progress: 0 }
        ])
        // A failing migration leaves neither its changes nor its record.
        const broken = {
          ...later,
          "4_broken": Effect.andThen(
            SqlClient.SqlClient.use((sql) => sql`CREATE TABLE half_done (x)`),
            Effect.fail("broken")
          )
        }
        const failure = yield* Effect.flip(migrate({ loader: Migrator.fromRecord(broken) }))
        assert.strictEqual(failure._tag, "MigrationError")
        assert.strictEqual(failure._tag === "MigrationError" && failure.kind, "Failed")
        assert.deepStrictEqual(yield* sql`SELECT name FROM sqlite_master WHERE name = ${"half_done"}`, [])
        assert.deepStrictEqual(
          yield* sql`SELECT migration_id, name FROM effect_sql_migrations ORDER BY migration_id`,
          [
            { migration_id: 1, name: "create_jobs" },
            { migration_id: 2, name: "add_progress" },
            { migration_id: 3, name: "index_status" }
          ]
        )
      })))

    it.effect("SqlSchema encodes requests and decodes rows", () =>
      withClient(Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE job (id TEXT PRIMARY KEY, progress INTEGER NOT NULL, params TEXT NOT NULL)`
        const Params = Schema.fromJsonString(Schema.Struct({ source: Schema.String, speed: Schema.Number }))
        const Job = Schema.Struct({ id: Schema.String, progress: Schema.Number, params: Params })
        const save = SqlSchema.void({
          Request: Job,
          execute: (job) => sql`INSERT INTO job ${sql.insert(job)}`
        })
        const atLeast = SqlSchema.findAll({
          Request: Schema.Number,
          Result: Job,
          execute: (progress) => sql`SELECT id, progress, params FROM job WHERE progress >= ${progress} ORDER BY id`
        })
        const byId = SqlSchema.findOne({
          Request: Schema.String,
          Result: Job,
          execute: (id) => sql`SELECT id, progress, params FROM job WHERE id = ${id}`
        })
        yield* save({ id: "j1", progress: 10, params: { source: "a.img", speed: 0 } })
        yield* save({ id: "j2", progress: 70, params: { source: "b.img", speed: 5 } })
        assert.deepStrictEqual(yield* sql`SELECT params FROM job WHERE id = ${"j1"}`, [
          { params: "{\"source\":\"a.img\",\"speed\":0}" }
        ])
        assert.deepStrictEqual(yield* atLeast(50), [{ id: "j2", progress: 70, params: { source: "b.img", speed: 5 } }])
        assert.deepStrictEqual(yield* byId("j1"), { id: "j1", progress: 10, params: { source: "a.img", speed: 0 } })
        const missing = yield* Effect.flip(byId("j3"))
        assert.isTrue(Cause.isNoSuchElementError(missing))
        // A row that does not fit the schema fails to decode.
        yield* sql`UPDATE job SET params = ${"not json"} WHERE id = ${"j2"}`
        const undecodable = yield* Effect.flip(byId("j2"))
        assert.isTrue(Schema.isSchemaError(undecodable))
      })))

    it.effect("renames identifiers and result columns with the transforms", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE ${sql("jobRuns")} (${sql("jobId")} TEXT, ${sql("startedAt")} INTEGER)`
        yield* sql`INSERT INTO ${sql("jobRuns")} ${sql.insert({ jobId: "j1", startedAt: 5 })}`
        assert.deepStrictEqual(yield* sql`SELECT * FROM ${sql("jobRuns")}`, [{ jobId: "j1", startedAt: 5 }])
        const untransformed = sql.withoutTransforms()
        assert.deepStrictEqual(yield* untransformed`SELECT * FROM job_runs`, [{ job_id: "j1", started_at: 5 }])
      }).pipe(Effect.provide(clientOn(target.filename, {
        transformQueryNames: Str.camelToSnake,
        transformResultNames: Str.snakeToCamel
      }))))
  })
}

describe("NodeSqliteClient on a file", () => {
  it.effect("runs the example of docs/sql.md, twice on one file", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const first = yield* Effect.provide(program, database(filename))
      assert.deepStrictEqual(first, [{ id: "j1", status: "running", progress: 40 }])
      // Reopened, the migration is recorded and does not run again; the insert meets the row it left.
      const second = yield* Effect.flip(Effect.provide(program, database(filename)))
      assert.strictEqual(second.message, "UNIQUE constraint failed: jobs.id (SQLite error 1555)")
    }))

  it.effect("puts the file in WAL mode, enforces foreign keys and sets the busy timeout", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = join(dir, "wal.db")
      const sql = yield* openClient({ filename, busyTimeout: "250 millis" })
      assert.deepStrictEqual(yield* sql`PRAGMA journal_mode`, [{ journal_mode: "wal" }])
      assert.deepStrictEqual(yield* sql`PRAGMA foreign_keys`, [{ foreign_keys: 1 }])
      assert.deepStrictEqual(yield* sql`PRAGMA busy_timeout`, [{ timeout: 250 }])
      yield* sql`CREATE TABLE t (x)`
      assert.isTrue(fs.existsSync(`${filename}-wal`))

      const plain = yield* openClient({ filename: join(dir, "plain.db"), wal: false })
      assert.deepStrictEqual(yield* plain`PRAGMA journal_mode`, [{ journal_mode: "delete" }])
      const memory = yield* openClient({ filename: ":memory:" })
      assert.deepStrictEqual(yield* memory`PRAGMA journal_mode`, [{ journal_mode: "memory" }])
      assert.deepStrictEqual(yield* memory`PRAGMA busy_timeout`, [{ timeout: 5000 }])
    }))

  it.effect("closing the scope closes the database; what was committed is there on reopening", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const scope = yield* Scope.make()
      const sql = yield* Scope.provide(openClient({ filename }), scope)
      yield* sql`CREATE TABLE t (x)`
      yield* sql.withTransaction(sql`INSERT INTO t (x) VALUES (${1}), (${2})`)
      assert.isTrue(fs.existsSync(`${filename}-wal`))
      yield* Scope.close(scope, Exit.void)
      // The last connection to close checkpoints the WAL into the database and removes it.
      assert.isFalse(fs.existsSync(`${filename}-wal`))
      const closed = yield* Effect.flip(sql`SELECT x FROM t`)
      assert.strictEqual(closed.reason._tag, "ConnectionError")
      assert.include(closed.message, "is closed")

      const reopened = yield* openClient({ filename })
      assert.deepStrictEqual(yield* reopened`SELECT x FROM t ORDER BY x`, [{ x: 1 }, { x: 2 }])
    }))

  it.effect("a write blocked by another connection's transaction fails after the busy timeout", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const holder = yield* openClient({ filename })
      const waiter = yield* openClient({ filename, busyTimeout: "50 millis" })
      yield* holder`CREATE TABLE t (x)`
      const holding = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const transaction = yield* Effect.forkChild(
        holder.withTransaction(Effect.gen(function*() {
          yield* holder`INSERT INTO t (x) VALUES (${1})`
          yield* Deferred.succeed(holding, undefined)
          yield* Deferred.await(release)
        })),
        { startImmediately: true }
      )
      yield* Deferred.await(holding)
      const blocked = yield* Effect.flip(waiter`INSERT INTO t (x) VALUES (${2})`)
      assert.strictEqual(blocked.reason._tag, "LockTimeoutError")
      assert.strictEqual(blocked.message, "database is locked (SQLite error 5)")
      // In WAL mode a reader is not blocked by a writer; it sees the last commit.
      assert.deepStrictEqual(yield* waiter`SELECT count(*) AS n FROM t`, [{ n: 0 }])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(transaction)
      yield* waiter`INSERT INTO t (x) VALUES (${2})`
      assert.deepStrictEqual(yield* waiter`SELECT x FROM t ORDER BY x`, [{ x: 1 }, { x: 2 }])
    }))

  it.effect("a transaction takes the write lock at BEGIN: no write elsewhere slips in after its reads", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const counter = yield* openClient({ filename })
      const other = yield* openClient({ filename, busyTimeout: "50 millis" })
      yield* counter`CREATE TABLE counter (n INTEGER NOT NULL)`
      yield* counter`INSERT INTO counter (n) VALUES (${0})`
      const hasRead = yield* Deferred.make<void>()
      const proceed = yield* Deferred.make<void>()
      const increment = yield* Effect.forkChild(
        counter.withTransaction(Effect.gen(function*() {
          const [{ n }] = yield* counter<{ n: number }>`SELECT n FROM counter`
          yield* Deferred.succeed(hasRead, undefined)
          yield* Deferred.await(proceed)
          yield* counter`UPDATE counter SET n = ${n + 1}`
        })),
        { startImmediately: true }
      )
      yield* Deferred.await(hasRead)
      const refused = yield* Effect.flip(other`UPDATE counter SET n = n + 100`)
      assert.strictEqual(refused.reason._tag, "LockTimeoutError")
      yield* Deferred.succeed(proceed, undefined)
      yield* Fiber.join(increment)
      assert.deepStrictEqual(yield* other`SELECT n FROM counter`, [{ n: 1 }])
    }))

  it.effect("a read-only client reads, and its writes fail", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const writer = yield* openClient({ filename })
      yield* writer`CREATE TABLE t (x)`
      yield* writer`INSERT INTO t (x) VALUES (${1})`
      const reader = yield* openClient({ filename, readonly: true })
      assert.deepStrictEqual(yield* reader`SELECT x FROM t`, [{ x: 1 }])
      const refused = yield* Effect.flip(reader`INSERT INTO t (x) VALUES (${2})`)
      assert.strictEqual(refused.message, "attempt to write a readonly database (SQLite error 8)")
      assert.deepStrictEqual(yield* reader.withTransaction(reader`SELECT count(*) AS n FROM t`), [{ n: 1 }])
    }))

  it.effect("refuses a file that is not a database, and leaves it as it was", () =>
    Effect.gen(function*() {
      const filename = yield* fileIn
      const content = Buffer.from("not a database, only text\n".repeat(200))
      fs.writeFileSync(filename, content)
      const error = yield* Effect.flip(openClient({ filename }))
      assert.strictEqual(error.message, "file is not a database (SQLite error 26)")
      assert.deepStrictEqual(fs.readFileSync(filename), content)
      assert.isFalse(fs.existsSync(`${filename}-wal`))
    }))

  it.effect("fails to open a file in a directory that does not exist", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const error = yield* Effect.flip(openClient({ filename: join(dir, "missing", "jobs.db") }))
      assert.strictEqual(error.reason._tag, "ConnectionError")
      assert.strictEqual(error.message, "unable to open database file (SQLite error 14)")
    }))
})
