/**
 * The store contract against a SQLite file in a temporary directory, each
 * opening a connection of its own; and what only a file goes through: WAL
 * mode, a database a newer version wrote, a file that is no database, and a
 * file that cannot be opened. A refused file is left byte for byte as it was.
 */
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import * as JobStore from "../../src/JobStore.ts"
import * as NodeSqliteClient from "../../src/sql/NodeSqliteClient.ts"
import { open, storeSuite } from "./storeSuite.ts"

/** A fresh directory, removed with the scope. */
const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-store-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

storeSuite("SQLite", Effect.map(tempDir, (dir) => JobStore.sqlite({ filename: join(dir, "jobs.db") })))

const owner = JobStore.processOwner("owner-a")

/** The directory's files and the bytes of each. */
const contents = (dir: string) =>
  Object.fromEntries(fs.readdirSync(dir).sort().map((name) => [name, fs.readFileSync(join(dir, name)).toString("hex")]))

/** Runs SQL on the file through a connection of its own (another program, as far as the store is concerned). */
const onFile = (filename: string, statement: (sql: SqlClient.SqlClient) => Effect.Effect<unknown, unknown>) =>
  Effect.scoped(Effect.flatMap(
    Layer.build(NodeSqliteClient.layer({ filename })),
    (context) => statement(Context.get(context, SqlClient.SqlClient))
  ))

// #region doc
const thisProcess = JobStore.processOwner() // a fresh id, with this process's pid and host

const startAndCommit = Effect.gen(function*() {
  const store = yield* JobStore.JobStore
  // At start: the lease (StoreOwned, naming the owner, while another server holds it),
  // and what the store holds, to recover from.
  const owned = yield* store.acquire(thisProcess)
  const { jobs, lastSeq } = owned.snapshot
  // Then, once per tick: what changed, in one atomic commit.
  yield* owned.commit({
    jobs: [{
      id: `backup-${jobs.length}`, type: "backup", params: { source: "disk.img", target: "disk.bak" },
      txn: `txn-${jobs.length}`, status: "running", manualFinalize: false, manualDismiss: true,
      progress: { current: 0, total: 1 << 30 }, speed: 0, userPaused: false, pauseHolds: [],
      createdAt: 0, updatedAt: 0
    }],
    txns: [{ id: `txn-${jobs.length}`, explicit: false, phase: "running" }],
    events: [{ _tag: "StatusChange", seq: lastSeq + 1, timestamp: 0, id: `backup-${jobs.length}`, status: "running" }]
  })
  return jobs.map((job) => job.id)
})

// The lease is released when the scope closes.
const run = (filename: string) => Effect.scoped(startAndCommit).pipe(Effect.provide(JobStore.sqlite({ filename })))
// #endregion doc

describe("JobStore (SQLite file)", () => {
  it.effect("runs the example of docs/durability.md: each start finds what the ones before committed", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "effect-jobs.db")
      assert.deepStrictEqual(yield* run(filename), [])
      assert.deepStrictEqual(yield* run(filename), ["backup-0"])
      assert.deepStrictEqual(yield* run(filename), ["backup-0", "backup-1"])
    }))

  it.effect("keeps the file in WAL mode", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "jobs.db")
      yield* Effect.scoped(Effect.flatMap(open(JobStore.sqlite({ filename })), (store) => store.acquire(owner)))
      const header = fs.readFileSync(filename).subarray(0, 20)
      assert.strictEqual(header.subarray(0, 16).toString("latin1"), "SQLite format 3\0")
      // Bytes 18 and 19 are the write and read versions: 2 for WAL.
      assert.deepStrictEqual([header[18], header[19]], [2, 2])
    }))

  it.effect("refuses a database a newer version wrote, and leaves it as it was", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = join(dir, "jobs.db")
      const store = JobStore.sqlite({ filename })
      yield* Effect.scoped(Effect.gen(function*() {
        const owned = yield* Effect.flatMap(open(store), (s) => s.acquire(owner))
        yield* owned.commit({ events: [{ _tag: "StatusChange", seq: 1, timestamp: 0, id: "a", status: "created" }] })
      }))
      yield* onFile(
        filename,
        (sql) => sql`INSERT INTO effect_jobs_migrations (migration_id, name) VALUES (7, 'future')`
      )
      const before = contents(dir)
      assert.deepStrictEqual(Object.keys(before), ["jobs.db"])
      const error = yield* Effect.scoped(Effect.flip(Effect.flatMap(open(store), (s) => s.acquire(owner))))
      assert.strictEqual(error._tag, "StoreTooNew")
      if (error._tag !== "StoreTooNew") return
      assert.deepStrictEqual([error.found, error.known], [7, 1])
      assert.strictEqual(
        error.message,
        `The job store sqlite:${filename} has schema version 7, written by a newer effect-jobs; ` +
          "this version knows versions up to 1 and leaves it untouched: upgrade effect-jobs to use it"
      )
      assert.deepStrictEqual(contents(dir), before)
    }))

  it.effect("refuses a file that is not a database, and leaves it as it was", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const filename = join(dir, "jobs.db")
      fs.writeFileSync(filename, "not a database, but a list of things to back up\n".repeat(200))
      const before = contents(dir)
      const error = yield* Effect.scoped(Effect.flip(open(JobStore.sqlite({ filename }))))
      assert.strictEqual(error._tag, "StoreCorrupt")
      assert.include(
        error.message,
        `The job store sqlite:${filename} cannot be read as a job store, and is left untouched`
      )
      assert.include(error.message, "file is not a database")
      assert.deepStrictEqual(contents(dir), before)
    }))

  it.effect("says why a file cannot be opened", () =>
    Effect.gen(function*() {
      const filename = join(yield* tempDir, "missing-directory", "jobs.db")
      const error = yield* Effect.scoped(Effect.flip(open(JobStore.sqlite({ filename }))))
      assert.strictEqual(error._tag, "StoreUnavailable")
      assert.include(
        error.message,
        `The job store sqlite:${filename} is unavailable (open): unable to open database file`
      )
    }))
})
