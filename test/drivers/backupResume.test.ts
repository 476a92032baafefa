/**
 * A backup brought back after a crash goes on from its checkpoint: the state a
 * killed server leaves (its store's records and checkpoint, a temporary copy
 * named by its dead process) is written here as that server would have, then a
 * durable engine with the file drivers recovers it. Real files in a temp dir.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as JobStore from "../../src/JobStore.ts"

/** A process id that no process has (Linux pids stay below 2^22). */
const deadPid = 4_194_399
const size = 3 * 1024 * 1024
const offset = 1024 * 1024

const sourceBytes = (): Uint8Array => {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >> 11)) & 0xff
  return bytes
}

/** The crashed server's state: a backup RUNNING, its checkpoint at `offset`, the copy so far on disk. */
const crashed = (
  dir: string,
  tempHead: Uint8Array,
  type: "backup" | "mirror" = "backup",
  status: "running" | "ready" | "pending" = "running",
  at = offset,
  /** The checkpoint says the copy is whole (as one taken when the copy finished does). */
  complete = false
) =>
  Effect.gen(function*() {
    const source = join(dir, "src")
    const target = join(dir, "dst")
    fs.writeFileSync(source, sourceBytes())
    const temp = join(dir, `.dst.effect-jobs-${deadPid}-k1.tmp`)
    fs.writeFileSync(temp, tempHead)
    const info = fs.statSync(source)
    const store = yield* JobStore.JobStore
    yield* Effect.scoped(Effect.gen(function*() {
      const owned = yield* store.acquire(JobStore.processOwner(), { ttl: "1 millis" })
      yield* owned.commit({
        jobs: [{
          id: "b1", type, params: { source, target }, txn: "job:b1", status,
          manualFinalize: status === "pending", manualDismiss: true, progress: { current: at, total: size }, speed: 0,
          userPaused: false, pauseHolds: [], createdAt: 1, startedAt: 2, updatedAt: 3
        }],
        txns: [{ id: "job:b1", explicit: false, phase: status === "pending" ? "pending" : "running" }],
        checkpoints: [{
          job: "b1",
          data: {
            temp,
            offset: at,
            source: { dev: info.dev, ino: info.ino, size: info.size, mtime: info.mtime.getTime() },
            ...(complete ? { complete: true } : {})
          }
        }]
      })
    }))
    return { source, target, temp }
  })

const engineOn = (filename: string) => {
  const store = JobStore.sqlite({ filename })
  return FileDrivers.layerWith({ chunkSize: 256 * 1024, checkpointInterval: 512 * 1024 }).pipe(
    Layer.provideMerge(Jobs.layerDurable().pipe(Layer.provideMerge(store))),
    Layer.provideMerge(NodeServices.layer),
    Layer.orDie
  )
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-resume-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

describe("backup after a restart", () => {
  it.live("goes on from its checkpoint into the same copy: the target is byte-identical to the source", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes().subarray(0, offset)).pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      const tempInode = fs.statSync(temp).ino
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        assert.deepStrictEqual(report.resumed, [{ id: "b1", status: "running" }])
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.isTrue(fs.readFileSync(target).equals(fs.readFileSync(source)))
      // The copy it went on with is the one renamed into place.
      assert.strictEqual(fs.statSync(target).ino, tempInode)
      assert.isFalse(fs.existsSync(temp))
      assert.deepStrictEqual(fs.readdirSync(dir).filter((name) => name.endsWith(".tmp")), [])
    }))

  it.live("does not copy again what its checkpoint covers", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      // A copy whose first part differs from the source: only a resumed copy keeps it.
      const head = new Uint8Array(offset).fill(0x78)
      const { source, target } = yield* crashed(dir, head).pipe(Effect.provide(JobStore.sqlite({ filename: db })))
      yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        assert.strictEqual((yield* jobs.awaitOutcome("b1"))._tag, "Succeeded")
      })).pipe(Effect.provide(engineOn(db)))
      const copied = fs.readFileSync(target)
      assert.isTrue(copied.subarray(0, offset).equals(Buffer.from(head)))
      assert.isTrue(copied.subarray(offset).equals(fs.readFileSync(source).subarray(offset)))
    }))

  it.live("fails with SourceChanged when the source is not the file the checkpoint was taken of", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes().subarray(0, offset)).pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      // Changed while the server was down.
      fs.appendFileSync(source, "more")
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Failed")
      assert.include(outcome._tag === "Failed" ? outcome.error : "", `Source file '${source}' changed while the server was stopped`)
      assert.isFalse(fs.existsSync(target))
      assert.isFalse(fs.existsSync(temp))
    }))

  it.live("a mirror goes on with its first copy from its checkpoint, reaches READY again, and completes in sync", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes().subarray(0, offset), "mirror", "ready").pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      const tempInode = fs.statSync(temp).ino
      // Written to while the server was down (the same file): the mirror's rounds catch up.
      const fd = fs.openSync(source, "r+")
      fs.writeSync(fd, Buffer.from("changed"), 0, 7, 100)
      fs.closeSync(fd)
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        assert.deepStrictEqual(report.resumed, [{ id: "b1", status: "ready" }])
        yield* jobs.awaitStatus("b1", "ready")
        yield* jobs.complete("b1")
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.isTrue(fs.readFileSync(target).equals(fs.readFileSync(source)))
      // It went on with the copy it had: that file is the target now.
      assert.strictEqual(fs.statSync(target).ino, tempInode)
    }))

  it.live("a backup brought back PENDING has its copy to commit: finalize puts it in place", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes(), "backup", "pending", size).pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      const tempInode = fs.statSync(temp).ino
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        assert.deepStrictEqual(report.resumed, [{ id: "b1", status: "pending" }])
        assert.strictEqual((yield* jobs.get("b1")).status, "pending")
        yield* jobs.finalize("b1")
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.isTrue(fs.readFileSync(target).equals(fs.readFileSync(source)))
      assert.strictEqual(fs.statSync(target).ino, tempInode)
    }))
  it.live("an empty source's backup, RUNNING with a complete copy when the server died: written again into that copy, no other left", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const source = join(dir, "src")
      const target = join(dir, "dst")
      fs.writeFileSync(source, new Uint8Array(0))
      const temp = join(dir, `.dst.effect-jobs-${deadPid}-k2.tmp`)
      fs.writeFileSync(temp, new Uint8Array(0))
      const info = fs.statSync(source)
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* JobStore.JobStore
        const owned = yield* store.acquire(JobStore.processOwner(), { ttl: "1 millis" })
        yield* owned.commit({
          jobs: [{
            id: "b1", type: "backup", params: { source, target }, txn: "job:b1", status: "running",
            manualFinalize: false, manualDismiss: true, progress: { current: 0, total: 0 }, speed: 0,
            userPaused: false, pauseHolds: [], createdAt: 1, startedAt: 2, updatedAt: 3
          }],
          txns: [{ id: "job:b1", explicit: false, phase: "running" }],
          checkpoints: [{
            job: "b1",
            data: { temp, offset: 0, complete: true, source: { dev: info.dev, ino: info.ino, size: 0, mtime: info.mtime.getTime() } }
          }]
        })
      })).pipe(Effect.provide(JobStore.sqlite({ filename: db })))
      const tempInode = fs.statSync(temp).ino
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.strictEqual(fs.statSync(target).size, 0)
      assert.strictEqual(fs.statSync(target).ino, tempInode)
      assert.deepStrictEqual(fs.readdirSync(dir).filter((name) => name.endsWith(".tmp")), [])
    }))
  it.live("a backup brought back PENDING whose source was deleted meanwhile still commits its complete copy", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes(), "backup", "pending", size, true).pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      fs.rmSync(source)
      const tempInode = fs.statSync(temp).ino
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        assert.deepStrictEqual(report.resumed, [{ id: "b1", status: "pending" }])
        yield* jobs.finalize("b1")
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Succeeded", JSON.stringify(outcome))
      assert.isTrue(fs.readFileSync(target).equals(sourceBytes()))
      assert.strictEqual(fs.statSync(target).ino, tempInode)
    }))

  it.live("a backup brought back RUNNING whose source was deleted fails with SourceNotFound, its copy removed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const db = join(dir, "jobs.db")
      const { source, target, temp } = yield* crashed(dir, sourceBytes(), "backup", "running", size, true).pipe(
        Effect.provide(JobStore.sqlite({ filename: db }))
      )
      fs.rmSync(source)
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        return yield* jobs.awaitOutcome("b1")
      })).pipe(Effect.provide(engineOn(db)))
      assert.strictEqual(outcome._tag, "Failed", JSON.stringify(outcome))
      assert.include(outcome._tag === "Failed" ? outcome.error : "", source)
      assert.isFalse(fs.existsSync(target))
      assert.isFalse(fs.existsSync(temp))
    }))
})
