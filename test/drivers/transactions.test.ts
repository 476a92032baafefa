/**
 * Transactions of file jobs: all targets appear or none; the commit journal
 * written before the first rename, removed after the last, and finished by
 * recovery when a commit was cut short.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Path, PlatformError } from "effect"
import * as fs from "node:fs"
import { basename, join } from "node:path"
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

const isTemp = (path: string) => /\.effect-jobs-\d+-[0-9a-z]+\.tmp$/.test(path)

const failure = (method: string, path: string) =>
  PlatformError.systemError({ _tag: "Unknown", module: "FileSystem", method, pathOrDescriptor: path })

/**
 * Node's file system, running `before(target)` before each step that puts a
 * temporary copy in place: a rename (`overwrite`) or a link (no replace). A
 * failure of `before` is that step's failure.
 */
const puttingInPlace = (before: (target: string) => Effect.Effect<void, PlatformError.PlatformError>) =>
  nodeFsWith((fs) => ({
    rename: (from, to) => (isTemp(from) ? Effect.andThen(before(to), fs.rename(from, to)) : fs.rename(from, to)),
    link: (from, to) => (isTemp(from) ? Effect.andThen(before(to), fs.link(from, to)) : fs.link(from, to))
  }))

/** Node's file system, recording the destination of every rename and link. */
const recordingRenames = (seen: Array<string>) =>
  nodeFsWith((fs) => ({
    rename: (from, to) => Effect.andThen(Effect.sync(() => seen.push(to)), fs.rename(from, to)),
    link: (from, to) => Effect.andThen(Effect.sync(() => seen.push(to)), fs.link(from, to))
  }))

/** The role (`record` or `intent`) of each journal file in `dir`. */
const rolesIn = (dir: string): Array<string> =>
  journals(dir).map((name) => (JSON.parse(fs.readFileSync(join(dir, name), "utf8")) as { role: string }).role)

describe("the commit journal", () => {
  it.effect("is written before the first copy is put in place and removed after the last", () => {
    const puts: Array<string> = []
    const journalsAtPut: Array<number> = []
    let watched = ""
    const fsLayer = puttingInPlace((to) =>
      Effect.sync(() => {
        puts.push(to)
        journalsAtPut.push(journals(watched).length)
      })
    )
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      watched = dir
      threeSources(dir)
      const txn = yield* JobTxn.make
      for (const job of yield* backupsIn(dir, txn)) yield* jobs.start(job)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      // Newest member first, as QEMU commits a transaction.
      assert.deepStrictEqual(puts, [3, 2, 1].map((i) => join(dir, `dst${i}`)))
      assert.deepStrictEqual(journalsAtPut, [1, 1, 1])
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
    let failing = ""
    const fsLayer = puttingInPlace((to) => (to === failing ? Effect.fail(failure("link", to)) : Effect.void))
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

  it.effect("targets in two directories: the record in one, an intent in the other; each directory's recovery finishes its own renames", () => {
    let failing = ""
    const fsLayer = puttingInPlace((to) => (to === failing ? Effect.fail(failure("link", to)) : Effect.void))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const [a, b] = [join(dir, "a"), join(dir, "b")]
      fs.mkdirSync(a)
      fs.mkdirSync(b)
      const data = threeSources(dir)
      const txn = yield* JobTxn.make
      const created = []
      for (const [i, sub] of [[1, a], [2, b], [3, b]] as const) {
        created.push(yield* jobs.create({ type: "backup", id: `b${i}`, txn, params: { source: join(dir, `src${i}`), target: join(sub, `dst${i}`) } }))
      }
      // dst3 commits first (newest first): its directory holds the record.
      failing = join(b, "dst3")
      for (const job of created) yield* jobs.start(job)
      yield* JobTxn.awaitOutcome(txn)
      assert.deepStrictEqual([rolesIn(a), rolesIn(b)], [["intent"], ["record"]])
      assert.isFalse(fs.existsSync(join(b, "dst3")))
      // Each journal file lists only its own directory's renames.
      const intent = JSON.parse(fs.readFileSync(join(a, journals(a)[0]!), "utf8")) as { renames: Array<{ target: string }> }
      assert.deepStrictEqual(intent.renames.map((r) => r.target), [join(a, "dst1")])

      failing = ""
      // The record's directory first: dst3 goes in place; the record stays while the intent exists.
      const inB = yield* recoverJournals(b)
      assert.deepStrictEqual(inB.renamed, [join(b, "dst3")])
      assert.deepStrictEqual(rolesIn(b), ["record"])
      // The intent's directory: its record is there, so its (already done) renames are finished; it goes.
      const inA = yield* recoverJournals(a)
      assert.deepStrictEqual(inA.renamed, [])
      assert.deepStrictEqual(entries(a), ["dst1"])
      // Now the record goes too.
      yield* recoverJournals(b)
      assert.deepStrictEqual(entries(b), ["dst2", "dst3"])
      for (const [i, sub] of [[1, a], [2, b], [3, b]] as const) {
        assert.strictEqual(hashOf(join(sub, `dst${i}`)), hashBytes(data[i - 1]!))
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
  const journalOf = (
    pid: number,
    token: string,
    renames: Array<{ temp: string; target: string; replace?: boolean }>,
    role: { role: "record"; intents: Array<string> } | { role: "intent"; record: string } = { role: "record", intents: [] }
  ) =>
    JSON.stringify({
      format: "effect-jobs commit journal",
      version: 2,
      pid,
      token,
      renames: renames.map((r) => ({ replace: true, ...r })),
      ...role
    })

  /** A journal file as its writer makes it: readable and writable by its owner only. */
  const plant = (path: string, text: string) => fs.writeFileSync(path, text, { mode: 0o600 })

  const services = Layer.mergeAll(NodeServices.layer, Path.layer)

  it.effect("a record of a dead process: the renames are finished, the record and stale copies removed", () =>
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
      const record = join(dir, `.effect-jobs-${deadPid}-j1.commit-journal`)
      plant(record, journalOf(deadPid, "j1", [{ temp: temp1, target: join(dir, "x") }, { temp: temp2, target: join(dir, "y") }]))
      const report = yield* recoverDirectory(dir)
      assert.deepStrictEqual(report, { journals: [record], renamed: [join(dir, "x")], removedTemps: [stray] })
      assert.deepStrictEqual(entries(dir), ["x", "y"])
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "new x")
    }).pipe(Effect.scoped, Effect.provide(services)))

  it.effect("an intent whose record does not exist: the writer died before committing, nothing is renamed", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.mkdirSync(join(dir, "other"))
      const temp = join(dir, `.x.effect-jobs-${deadPid}-t1.tmp`)
      writeFile(temp, Buffer.from("new x"))
      writeFile(join(dir, "x"), Buffer.from("old x"))
      const name = `.effect-jobs-${deadPid}-j1.commit-journal`
      plant(join(dir, name), journalOf(deadPid, "j1", [{ temp, target: join(dir, "x") }], { role: "intent", record: join(dir, "other", name) }))
      plant(join(dir, `.effect-jobs-${deadPid}-j2.commit-journal.tmp`), "{ half wri")
      const report = yield* recoverDirectory(dir)
      assert.deepStrictEqual(report.renamed, [])
      assert.deepStrictEqual(entries(dir), ["other", "x"])
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "old x")
    }).pipe(Effect.scoped, Effect.provide(services)))

  it.effect("an intent whose record exists: the transaction committed, its renames are finished", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const other = join(dir, "other")
      fs.mkdirSync(other)
      const temp = join(dir, `.x.effect-jobs-${deadPid}-t1.tmp`)
      writeFile(temp, Buffer.from("new x"))
      const name = `.effect-jobs-${deadPid}-j1.commit-journal`
      plant(join(dir, name), journalOf(deadPid, "j1", [{ temp, target: join(dir, "x"), replace: false }], { role: "intent", record: join(other, name) }))
      const otherTemp = join(other, `.y.effect-jobs-${deadPid}-t2.tmp`)
      plant(join(other, name), journalOf(deadPid, "j1", [{ temp: otherTemp, target: join(other, "y") }], { role: "record", intents: [join(dir, name)] }))
      const report = yield* recoverJournals(dir)
      assert.deepStrictEqual(report, { journals: [join(dir, name)], renamed: [join(dir, "x")], removedTemps: [] })
      assert.deepStrictEqual(entries(dir), ["other", "x"])
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "new x")
      // The record's directory was not touched: its own recovery handles it.
      assert.deepStrictEqual(entries(other), [name])
      assert.deepStrictEqual(yield* recoverJournals(other), { journals: [join(other, name)], renamed: [], removedTemps: [] })
      assert.deepStrictEqual(entries(other), [])
    }).pipe(Effect.scoped, Effect.provide(services)))

  it.effect("a journal of the earlier format is finished when it covers one directory, set aside when it spans several", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const other = join(dir, "other")
      fs.mkdirSync(other)
      const v1 = (token: string, renames: Array<{ temp: string; target: string }>, copies: Array<string>) =>
        JSON.stringify({ format: "effect-jobs commit journal", version: 1, pid: deadPid, token, renames, copies })
      const temp = join(dir, `.x.effect-jobs-${deadPid}-t1.tmp`)
      writeFile(temp, Buffer.from("new x"))
      writeFile(join(dir, "x"), Buffer.from("old x"))
      const single = join(dir, `.effect-jobs-${deadPid}-j1.commit-journal`)
      plant(single, v1("j1", [{ temp, target: join(dir, "x") }], [single]))
      const spanning = join(dir, `.effect-jobs-${deadPid}-j2.commit-journal`)
      const temp2 = join(dir, `.y.effect-jobs-${deadPid}-t2.tmp`)
      writeFile(temp2, Buffer.from("new y"))
      plant(spanning, v1("j2", [{ temp: temp2, target: join(dir, "y") }], [spanning, join(other, basename(spanning))]))
      const report = yield* recoverJournals(dir)
      assert.deepStrictEqual(report, { journals: [single], renamed: [join(dir, "x")], removedTemps: [] })
      assert.strictEqual(fs.readFileSync(join(dir, "x"), "utf8"), "new x")
      assert.isFalse(fs.existsSync(join(dir, "y")))
      assert.deepStrictEqual(journals(dir), [`${basename(spanning)}.rejected`])
    }).pipe(Effect.scoped, Effect.provide(services)))

  it.effect("journals and copies of running processes are left alone; a journal that cannot be decoded is set aside", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const live = [`.effect-jobs-1-j1.commit-journal`, `.x.effect-jobs-1-t1.tmp`]
      for (const name of live) plant(join(dir, name), "in use")
      assert.deepStrictEqual(yield* recoverDirectory(dir), { journals: [], renamed: [], removedTemps: [] })
      assert.deepStrictEqual(entries(dir), live.sort())
      const broken = `.effect-jobs-${deadPid}-j9.commit-journal`
      plant(join(dir, broken), "not json")
      assert.deepStrictEqual(yield* recoverDirectory(dir), { journals: [], renamed: [], removedTemps: [] })
      assert.deepStrictEqual(entries(dir), [...live, `${broken}.rejected`].sort())
    }).pipe(Effect.scoped, Effect.provide(services)))
})
