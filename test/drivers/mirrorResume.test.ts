/**
 * A mirror brought back after its process died: a first durable engine (SQLite
 * store, real files in a temp dir) runs a real mirror up to the moment of the
 * death; from then on its store takes no commit and its copy stays on disk as
 * it was. A second engine on the same store recovers the mirror, with the
 * bytes it writes into its copy counted.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, Path, Schedule } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as JobStore from "../../src/JobStore.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import { fileWithWrites } from "../helpers/fileWithWrites.ts"
import { storeWithCommit } from "../helpers/storeWithCommit.ts"
import { bytes, KiB, MiB, tempDir, temps } from "./helpers.ts"

const chunkSize = 256 * KiB
const size = 3 * MiB

/** Whether the first engine's process still lives: once it is dead, nothing it does reaches the store. */
interface Life {
  alive: boolean
}

/** Bytes written into temporary copies. */
interface Written {
  bytes: number
}

const isTemp = (path: string) => /\.effect-jobs-\d+-[0-9a-z]+\.tmp$/.test(path)

/** A SQLite store whose commits are dropped once its process is dead (the lease is still released, as a dead pid's would be). */
const storeOf = (filename: string, life: Life) =>
  storeWithCommit(JobStore.sqlite({ filename }), (batch, commit) => (life.alive ? commit(batch) : Effect.void))

/** A handle on a temporary copy that counts the bytes written through it. */
const counted = (file: FileSystem.File, written: Written): FileSystem.File =>
  fileWithWrites(file, {
    write: (buffer, write) =>
      Effect.tap(write(buffer), (n) =>
        Effect.sync(() => {
          written.bytes += n
        })),
    writeAll: (buffer, writeAll) =>
      Effect.andThen(
        writeAll(buffer),
        Effect.sync(() => {
          written.bytes += buffer.length
        })
      )
  })

/** Node's file system, every temporary copy's writes counted in `written`. */
const countingFileSystem = (written: Written) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(Effect.service(FileSystem.FileSystem), (files) =>
      FileSystem.FileSystem.of({
        ...files,
        open: (path, options) => Effect.map(files.open(path, options), (file) => (isTemp(path) ? counted(file, written) : file))
      }))
  ).pipe(Layer.provide(NodeServices.layer))

const engineOn = (filename: string, life: Life, written: Written) =>
  FileDrivers.layerWith({ chunkSize, pollInterval: "20 millis" }).pipe(
    Layer.provideMerge(Jobs.layerDurable().pipe(Layer.provideMerge(storeOf(filename, life)))),
    Layer.provideMerge(Layer.merge(countingFileSystem(written), Path.layer)),
    Layer.orDie
  )

/**
 * Runs `untilDeath` on a first engine, waits until what it did is stored, and
 * then has its process die there: the store takes nothing more, and the job's
 * copy is kept as it is (the engine's closing cancels the job, whose `abort`
 * removes the copy's name: a second name keeps the file, and gives it back).
 * Returns the copy's path.
 */
const runThenDie = <E>(db: string, dir: string, untilDeath: (jobs: Jobs.JobsService) => Effect.Effect<void, E>) =>
  Effect.gen(function*() {
    const life: Life = { alive: true }
    const kept = join(dir, "copy-kept")
    const copy = yield* Effect.scoped(Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      yield* jobs.recover
      yield* untilDeath(jobs)
      yield* jobs.durable
      life.alive = false
      const copies = temps(dir)
      assert.strictEqual(copies.length, 1, `temporary copies: ${copies.join(", ")}`)
      const copy = join(dir, copies[0]!)
      fs.linkSync(copy, kept)
      return copy
    })).pipe(Effect.provide(engineOn(db, life, { bytes: 0 })))
    fs.renameSync(kept, copy)
    return copy
  })

/**
 * A second engine on the store: the mirror `id` comes back READY, is completed,
 * and succeeds. Returns what it wrote into temporary copies.
 */
const completeAfterRestart = (db: string, id: string) =>
  Effect.gen(function*() {
    const written: Written = { bytes: 0 }
    const outcome = yield* Effect.scoped(Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const report = yield* jobs.recover
      assert.deepStrictEqual(report.resumed, [{ id, status: "ready" }])
      yield* jobs.awaitStatus(id, "ready")
      yield* jobs.complete(id)
      return yield* jobs.awaitOutcome(id)
    })).pipe(Effect.provide(engineOn(db, { alive: true }, written)))
    assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
    return written
  })

/** The checkpoint the SQLite store `db` holds for job `id`, read beside the engine that owns the store. */
const storedCheckpoint = (db: string, id: string): Record<string, unknown> | undefined => {
  const database = new DatabaseSync(db, { readOnly: true })
  try {
    const row = database.prepare("SELECT data FROM effect_jobs_checkpoints WHERE job = ?").get(id) as
      | { data: string }
      | undefined
    return row === undefined ? undefined : JSON.parse(row.data)
  } finally {
    database.close()
  }
}

/** Waits (5 s at most) until the store holds a checkpoint of job `id` that passes `check`. */
const awaitStoredCheckpoint = (db: string, id: string, check: (data: Record<string, unknown> | undefined) => boolean) =>
  Effect.retry(
    Effect.suspend(() => {
      const data = storedCheckpoint(db, id)
      return check(data) ? Effect.succeed(data) : Effect.fail(new Error(`stored checkpoint of ${id}: ${JSON.stringify(data)}`))
    }),
    { schedule: Schedule.spaced("20 millis"), times: 250 }
  )

/** A temp dir with its store `db`, a source of `size` bytes (made from `seed`) and the target's path. */
const mirrorFiles = (seed: number) =>
  Effect.map(tempDir, (dir) => {
    const source = join(dir, "src")
    fs.writeFileSync(source, bytes(size, seed))
    return { dir, db: join(dir, "jobs.db"), source, target: join(dir, "dst") }
  })

describe("mirror after a restart", () => {
  it.live("READY when its process died: READY again without copying again, and completes in sync with its changed source", () =>
    Effect.gen(function*() {
      const { db, dir, source, target } = yield* mirrorFiles(3)
      const copy = yield* runThenDie(db, dir, (jobs) =>
        Effect.gen(function*() {
          yield* jobs.run({ type: "mirror", id: "m1", params: { source, target }, manualDismiss: true })
          yield* jobs.awaitStatus("m1", "ready")
        }))
      const copyInode = fs.statSync(copy).ino

      // Changed while no server ran (the same file): a few bytes of its second chunk rewritten, more appended.
      const fd = fs.openSync(source, "r+")
      fs.writeSync(fd, Buffer.from("changed"), 0, 7, chunkSize + 100)
      fs.closeSync(fd)
      const appended = Buffer.from("appended while the server was down")
      fs.appendFileSync(source, appended)

      const written = yield* completeAfterRestart(db, "m1")
      assert.isTrue(fs.readFileSync(target).equals(fs.readFileSync(source)))
      // It went on with the copy it had: the appended bytes, and the one chunk that differed, are all
      // it wrote (a copy made again would have been the whole source).
      assert.strictEqual(written.bytes, appended.length + chunkSize)
      assert.strictEqual(fs.statSync(target).ino, copyInode)
      assert.deepStrictEqual(temps(dir), [])
    }))

  it.live("READY, its source cut short: the round that brings the copy back in sync records it, and a restart goes on with that copy", () =>
    Effect.gen(function*() {
      const { db, dir, source, target } = yield* mirrorFiles(6)
      const shorter = MiB + 5
      const copy = yield* runThenDie(db, dir, (jobs) =>
        Effect.gen(function*() {
          yield* jobs.run({ type: "mirror", id: "m1", params: { source, target }, manualDismiss: true })
          yield* jobs.awaitStatus("m1", "ready")
          fs.truncateSync(source, shorter)
          // A round cuts the copy; the next one finds it in sync, and its length is recorded.
          yield* awaitStoredCheckpoint(db, "m1", (data) => data?.offset === shorter && data?.complete === true)
        }))
      const copyInode = fs.statSync(copy).ino
      assert.strictEqual(fs.statSync(copy).size, shorter)

      const written = yield* completeAfterRestart(db, "m1")
      assert.isTrue(fs.readFileSync(target).equals(fs.readFileSync(source)))
      // The copy was in sync: nothing to write (a checkpoint past its end would have had it copied again).
      assert.strictEqual(written.bytes, 0)
      assert.strictEqual(fs.statSync(target).ino, copyInode)
    }))

  it.live("completed in a transaction with manual finalize, PENDING when its process died: PENDING again, and finalize puts its copy in place", () =>
    Effect.gen(function*() {
      const { db, dir, source, target } = yield* mirrorFiles(4)
      const copy = yield* runThenDie(db, dir, (jobs) =>
        Effect.gen(function*() {
          const txn = yield* JobTxn.make
          yield* jobs.run({
            type: "mirror",
            id: "m1",
            params: { source, target },
            txn,
            manualFinalize: true,
            manualDismiss: true
          })
          yield* jobs.awaitStatus("m1", "ready")
          // Grown in READY: the final rounds catch up before the copy is complete.
          fs.appendFileSync(source, bytes(100 * KiB, 5))
          yield* jobs.complete("m1")
          yield* jobs.awaitStatus("m1", "pending")
        }))
      const copyInode = fs.statSync(copy).ino
      const atCompletion = fs.readFileSync(source)
      assert.strictEqual(atCompletion.length, size + 100 * KiB)
      // The source goes on changing after the completion: what is committed is the copy as completed.
      fs.appendFileSync(source, Buffer.from("written after the completion"))

      const written: Written = { bytes: 0 }
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        assert.deepStrictEqual(report.resumed, [{ id: "m1", status: "pending" }])
        assert.strictEqual((yield* jobs.get("m1")).status, "pending")
        yield* jobs.finalize("m1")
        return yield* jobs.awaitOutcome("m1")
      })).pipe(Effect.provide(engineOn(db, { alive: true }, written)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.isTrue(fs.readFileSync(target).equals(atCompletion))
      assert.strictEqual(fs.statSync(target).ino, copyInode)
      assert.strictEqual(written.bytes, 0)
      assert.deepStrictEqual(temps(dir), [])
    }))
})
