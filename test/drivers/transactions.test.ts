/**
 * Transactions of file jobs: all targets appear or none; the commit journal
 * written before the first rename, removed after the last, and finished by
 * recovery when a commit was cut short.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Path, PlatformError } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { recoverDirectory, recoverJournals } from "../../src/drivers/commitJournal.ts"
import { Jobs } from "../../src/Jobs.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import * as Testing from "../../src/testing.ts"
import {
  bytes,
  chunk,
  deadPid,
  entries,
  hashBytes,
  hashOf,
  journals,
  layerOver,
  nodeFsWith,
  nodeLayer,
  tempDir,
  temps,
  writeFile
} from "./helpers.ts"

/** Three sources in `dir` (different sizes and contents). */
const threeSources = (dir: string) =>
  [1, 2, 3].map((i) => {
    const data = bytes(i * 3 * chunk + i, i)
    writeFile(join(dir, `src${i}`), data)
    return data
  })

const backupsIn = (dir: string, txn: JobTxn.JobTxn, targetDir = dir) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const created = []
    for (const i of [1, 2, 3]) {
      created.push(
        yield* jobs.create({
          type: "backup",
          id: `b${i}`,
          txn,
          params: { source: join(dir, `src${i}`), target: join(targetDir, `dst${i}`) }
        })
      )
    }
    return created
  })

describe("a transaction of backups: all targets or none", () => {
  it.effect("all succeed: all three targets appear, identical to their sources; no journal or temporary file is left", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = threeSources(dir)
      const txn = yield* JobTxn.make
      for (const job of yield* backupsIn(dir, txn)) yield* jobs.start(job)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      for (const i of [1, 2, 3]) assert.strictEqual(hashOf(join(dir, `dst${i}`)), hashBytes(data[i - 1]!))
      assert.deepStrictEqual(entries(dir), ["dst1", "dst2", "dst3", "src1", "src2", "src3"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("one fails (its source is truncated mid-copy): none of the three targets exists", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      threeSources(dir)
      const txn = yield* JobTxn.make
      const [b1, b2, b3] = yield* backupsIn(dir, txn)
      yield* jobs.start(b1!)
      yield* jobs.start(b2!)
      yield* jobs.awaitStatus(b1!, "waiting")
      yield* jobs.awaitStatus(b2!, "waiting")
      yield* jobs.start(b3!)
      yield* jobs.pause(b3!)
      yield* jobs.awaitStatus(b3!, "paused")
      fs.truncateSync(join(dir, "src3"), chunk)
      yield* jobs.resume(b3!)
      const outcome = yield* JobTxn.awaitOutcome(txn)
      assert.strictEqual(outcome._tag, "Aborted")
      assert.match((outcome as { error: string }).error, /src3' was truncated during the copy/)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b1!), { _tag: "Cancelled" })
      assert.deepStrictEqual(entries(dir), ["src1", "src2", "src3"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("another member's prepare fails after the backups prepared: none of the targets exists", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const dir = yield* tempDir
      threeSources(dir)
      const txn = yield* JobTxn.make
      const backups = yield* backupsIn(dir, txn)
      const peer = yield* jobs.create({ type: "test", id: "peer", txn, params: { iterations: 0, fail: ["prepare"] } })
      for (const job of [...backups, peer]) yield* jobs.start(job)
      const outcome = yield* JobTxn.awaitOutcome(txn)
      assert.strictEqual(outcome._tag, "Aborted")
      assert.deepStrictEqual(log.of("peer").slice(0, 3), ["make", "run", "prepare"])
      assert.deepStrictEqual(entries(dir), ["src1", "src2", "src3"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(NodeServices.layer, { chunkSize: chunk }, Testing.layer))))

  it.effect("a backup and a mirror in one transaction commit together", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = threeSources(dir)
      const txn = yield* JobTxn.make
      // Both members first: a backup started alone could finish before the mirror joins.
      const backup = yield* jobs.create({ type: "backup", id: "b", txn, params: { source: join(dir, "src1"), target: join(dir, "dst1") } })
      const mirror = yield* jobs.create({ type: "mirror", id: "m", txn, params: { source: join(dir, "src2"), target: join(dir, "dst2") } })
      yield* jobs.start(backup)
      yield* jobs.start(mirror)
      yield* jobs.awaitStatus(mirror, "ready")
      yield* jobs.complete(mirror)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(backup), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst1")), hashBytes(data[0]!))
      assert.strictEqual(hashOf(join(dir, "dst2")), hashBytes(data[1]!))
      assert.deepStrictEqual(journals(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

/** Node's file system, recording the destination of every rename. */
const recordingRenames = (seen: Array<string>) =>
  nodeFsWith((fs) => ({ rename: (from, to) => Effect.andThen(Effect.sync(() => seen.push(to)), fs.rename(from, to)) }))

describe("the commit journal", () => {
  it.effect("is written before the first rename and removed after the last", () => {
    const renames: Array<string> = []
    const journalsAtRename: Array<number> = []
    let watched = ""
    const fsLayer = nodeFsWith((fs) => ({
      rename: (from, to) =>
        Effect.andThen(
          Effect.sync(() => {
            if (!to.includes("commit-journal")) {
              renames.push(to)
              journalsAtRename.push(journals(watched).length)
            }
          }),
          fs.rename(from, to)
        )
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      watched = dir
      threeSources(dir)
      const txn = yield* JobTxn.make
      for (const job of yield* backupsIn(dir, txn)) yield* jobs.start(job)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      // Newest member first, as QEMU commits a transaction.
      assert.deepStrictEqual(renames, [3, 2, 1].map((i) => join(dir, `dst${i}`)))
      assert.deepStrictEqual(journalsAtRename, [1, 1, 1])
      assert.deepStrictEqual(journals(dir), [])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("a lone backup writes no journal", () => {
    const renames: Array<string> = []
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10))
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      yield* jobs.awaitOutcome(job)
      assert.deepStrictEqual(renames, [join(dir, "dst")])
    }).pipe(Effect.scoped, Effect.provide(layerOver(recordingRenames(renames))))
  })

  it.effect("a commit cut short after the first rename is finished by the next backup to one of the targets", () => {
    const renames: Array<string> = []
    let failing = ""
    const fsLayer = nodeFsWith((fs) => ({
      rename: (from, to) =>
        to === failing
          ? Effect.fail(PlatformError.systemError({ _tag: "Unknown", module: "FileSystem", method: "rename", pathOrDescriptor: from }))
          : Effect.andThen(Effect.sync(() => renames.push(to)), fs.rename(from, to))
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = threeSources(dir)
      failing = join(dir, "dst2")
      const txn = yield* JobTxn.make
      const [b1, b2, b3] = yield* backupsIn(dir, txn)
      for (const job of [b1!, b2!, b3!]) yield* jobs.start(job)
      yield* JobTxn.awaitOutcome(txn)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b1!), { _tag: "Succeeded" })
      assert.strictEqual((yield* jobs.awaitOutcome(b2!))._tag, "Failed")
      // The state a crash between the renames leaves: dst1 and dst3 in place, dst2's copy and the journal beside it.
      assert.isTrue(fs.existsSync(join(dir, "dst1")))
      assert.isFalse(fs.existsSync(join(dir, "dst2")))
      assert.strictEqual(temps(dir).length, 1)
      assert.strictEqual(journals(dir).length, 1)

      failing = ""
      // The next backup to dst2 finishes the commit first: dst2 now exists, so it is refused.
      const error = yield* Effect.flip(
        jobs.create({ type: "backup", id: "again", params: { source: join(dir, "src1"), target: join(dir, "dst2") } })
      )
      assert.strictEqual(error.message, `Target '${join(dir, "dst2")}' already exists (pass overwrite: true to replace it)`)
      for (const i of [1, 2, 3]) assert.strictEqual(hashOf(join(dir, `dst${i}`)), hashBytes(data[i - 1]!))
      assert.deepStrictEqual(entries(dir), ["dst1", "dst2", "dst3", "src1", "src2", "src3"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("targets in two directories: one journal copy in each; recovery from either finishes every rename", () => {
    let failing = ""
    const fsLayer = nodeFsWith((fs) => ({
      rename: (from, to) =>
        to === failing
          ? Effect.fail(PlatformError.systemError({ _tag: "Unknown", module: "FileSystem", method: "rename", pathOrDescriptor: from }))
          : fs.rename(from, to)
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      fs.mkdirSync(join(dir, "a"))
      fs.mkdirSync(join(dir, "b"))
      const data = threeSources(dir)
      const txn = yield* JobTxn.make
      const created = []
      for (const [i, sub] of [[1, "a"], [2, "b"], [3, "b"]] as const) {
        created.push(yield* jobs.create({ type: "backup", id: `b${i}`, txn, params: { source: join(dir, `src${i}`), target: join(dir, sub, `dst${i}`) } }))
      }
      failing = join(dir, "b", "dst3")
      for (const job of created) yield* jobs.start(job)
      yield* JobTxn.awaitOutcome(txn)
      assert.deepStrictEqual([journals(join(dir, "a")).length, journals(join(dir, "b")).length], [1, 1])
      assert.isFalse(fs.existsSync(join(dir, "b", "dst3")))

      failing = ""
      const report = yield* recoverJournals(join(dir, "a"))
      assert.deepStrictEqual(report.renamed, [join(dir, "b", "dst3")])
      assert.deepStrictEqual(entries(join(dir, "a")), ["dst1"])
      assert.deepStrictEqual(entries(join(dir, "b")), ["dst2", "dst3"])
      for (const [i, sub] of [[1, "a"], [2, "b"], [3, "b"]] as const) {
        assert.strictEqual(hashOf(join(dir, sub, `dst${i}`)), hashBytes(data[i - 1]!))
      }
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("if the journal cannot be written, no target changes and every member fails with the journal's error", () => {
    const fsLayer = nodeFsWith((fs) => ({
      open: (path, options) =>
        path.includes("commit-journal")
          ? Effect.fail(PlatformError.systemError({ _tag: "Unknown", module: "FileSystem", method: "open", pathOrDescriptor: path, description: "disk full" }))
          : fs.open(path, options)
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      threeSources(dir)
      writeFile(join(dir, "dst1"), Buffer.from("old dst1"))
      const txn = yield* JobTxn.make
      const created = []
      for (const i of [1, 2]) {
        created.push(yield* jobs.create({ type: "backup", id: `b${i}`, txn, params: { source: join(dir, `src${i}`), target: join(dir, `dst${i}`), overwrite: true } }))
      }
      for (const job of created) yield* jobs.start(job)
      yield* JobTxn.awaitOutcome(txn)
      for (const job of created) {
        const outcome = yield* jobs.awaitOutcome(job)
        assert.strictEqual(outcome._tag, "Failed")
        assert.match((outcome as { error: string }).error, /^Cannot write '.*commit-journal\.tmp'/)
      }
      assert.strictEqual(fs.readFileSync(join(dir, "dst1"), "utf8"), "old dst1")
      assert.deepStrictEqual(entries(dir), ["dst1", "src1", "src2", "src3"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })
})

describe("recovery", () => {
  const journalOf = (pid: number, token: string, renames: Array<{ temp: string; target: string }>, copies: Array<string>) =>
    JSON.stringify({ format: "effect-jobs commit journal", version: 1, pid, token, renames, copies })

  it.effect("a journal of a dead process with every copy present: the renames are finished, the journal and stale copies removed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const temp1 = join(dir, `.x.effect-jobs-${deadPid}-t1.tmp`)
      const temp2 = join(dir, `.y.effect-jobs-${deadPid}-t2.tmp`)
      const stray = join(dir, `.z.effect-jobs-${deadPid}-t3.tmp`)
      writeFile(temp1, Buffer.from("new x"))
      writeFile(join(dir, "x"), Buffer.from("old x"))
      writeFile(stray, Buffer.from("partial"))
      // temp2 is gone: its rename already happened before the crash.
      writeFile(join(dir, "y"), Buffer.from("new y"))
      const copy = join(dir, `.effect-jobs-${deadPid}-j1.commit-journal`)
      writeFile(copy, Buffer.from(journalOf(deadPid, "j1", [{ temp: temp1, target: join(dir, "x") }, { temp: temp2, target: join(dir, "y") }], [copy])))
      const report = yield* recoverDirectory(dir)
      assert.deepStrictEqual(report, { journals: [copy], renamed: [join(dir, "x")], removedTemps: [stray] })
      assert.deepStrictEqual(entries(dir), ["x", "y"])
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "new x")
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeServices.layer, Path.layer))))

  it.effect("a journal whose other copy is missing was still being written: nothing is renamed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const temp = join(dir, `.x.effect-jobs-${deadPid}-t1.tmp`)
      writeFile(temp, Buffer.from("new x"))
      writeFile(join(dir, "x"), Buffer.from("old x"))
      const copy = join(dir, `.effect-jobs-${deadPid}-j1.commit-journal`)
      const otherCopy = join(dir, "elsewhere", `.effect-jobs-${deadPid}-j1.commit-journal`)
      writeFile(copy, Buffer.from(journalOf(deadPid, "j1", [{ temp, target: join(dir, "x") }], [copy, otherCopy])))
      writeFile(join(dir, `.effect-jobs-${deadPid}-j2.commit-journal.tmp`), Buffer.from("{ half wri"))
      const report = yield* recoverDirectory(dir)
      assert.deepStrictEqual(report.renamed, [])
      assert.deepStrictEqual(entries(dir), ["x"])
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "old x")
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeServices.layer, Path.layer))))

  it.effect("journals and copies of running processes are left alone; an unreadable journal is a clear error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const live = [`.effect-jobs-1-j1.commit-journal`, `.x.effect-jobs-1-t1.tmp`]
      for (const name of live) writeFile(join(dir, name), Buffer.from("in use"))
      assert.deepStrictEqual(yield* recoverDirectory(dir), { journals: [], renamed: [], removedTemps: [] })
      assert.deepStrictEqual(entries(dir), live.sort())
      const broken = join(dir, `.effect-jobs-${deadPid}-j9.commit-journal`)
      writeFile(broken, Buffer.from("not json"))
      const error = yield* Effect.flip(recoverDirectory(dir))
      assert.strictEqual(error._tag, "CommitJournalError")
      assert.match(error.message, new RegExp(`^Commit journal '${broken}': not a valid commit journal`))
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(NodeServices.layer, Path.layer))))
})
