/**
 * What a commit journal found on disk may make the server do, and what a
 * commit checks before it moves anything:
 *
 * - journals planted in a shared target directory never make a backup touch a
 *   file outside the rules (another directory, a file named like no copy, a
 *   journal that is not the server's own file), and never block the backup:
 *   bad ones of the server's own are set aside, others left untouched, each
 *   reported once;
 * - a journal whose rename can never succeed is set aside, not retried forever;
 * - a transaction whose target became a directory fails before anything moves;
 * - without `overwrite`, a file (or a dangling symbolic link) that appears at
 *   the target while the job copies is never replaced.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Logger, PlatformError } from "effect"
import * as fs from "node:fs"
import { basename, join } from "node:path"
import { Jobs } from "../../src/Jobs.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import {
  bytes,
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

/** Warnings logged, instead of printed. */
const captureWarnings = () => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel !== "Warn") return
    warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
  })
  return { warnings, layer: Logger.layer([logger]) }
}

const journalName = (token: string) => `.effect-jobs-${deadPid}-${token}.commit-journal`

/** A commit record as the server writes it, for a dead process. */
const recordOf = (token: string, renames: Array<{ temp: string; target: string }>, pid = deadPid) =>
  JSON.stringify({
    format: "effect-jobs commit journal",
    version: 2,
    pid,
    token,
    renames: renames.map((r) => ({ ...r, replace: true })),
    role: "record",
    intents: []
  })

/** Writes a file readable and writable by its owner only, as the server writes its journals. */
const plant = (path: string, text: string) => {
  fs.writeFileSync(path, text, { mode: 0o600 })
  fs.chmodSync(path, 0o600)
}

const read = (path: string) => fs.readFileSync(path, "utf8")

const existsMessage = (path: string) => `Target '${path}' already exists (pass overwrite: true to replace it)`

describe("planted commit journals", () => {
  it.live("never make a backup touch a file outside the rules, never block it, and are each reported once", () => {
    const logs = captureWarnings()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const elsewhere = yield* tempDir
      writeFile(join(dir, "src"), bytes(100_000))
      // What an attacker would like to overwrite or remove.
      const victim = join(dir, "victim")
      const victim2 = join(dir, "victim2")
      const secret = join(elsewhere, "secret")
      writeFile(victim, Buffer.from("victim"))
      writeFile(victim2, Buffer.from("victim2"))
      writeFile(secret, Buffer.from("secret"))
      // Files named like copies, with the content an attacker would put in place.
      const evil = join(dir, `.victim.effect-jobs-${deadPid}-e1.tmp`)
      const evilElsewhere = join(elsewhere, `.secret.effect-jobs-${deadPid}-e2.tmp`)
      const evilOtherPid = join(dir, `.victim.effect-jobs-12345-e3.tmp`)
      for (const path of [evil, evilElsewhere, evilOtherPid]) writeFile(path, Buffer.from("evil"))

      // Each of these would put `evil` onto the victim if it were obeyed; each fails one rule.
      const inDir = (token: string) => join(dir, journalName(token))
      const wouldReplaceVictim = (token: string) => recordOf(token, [{ temp: evil, target: victim }])
      const setAside = {
        // Renames in another directory.
        otherDirectory: inDir("a1"),
        // A path that leaves the directory through `..`.
        dotDot: inDir("a2"),
        // A "copy" that is not named as one: the second victim renamed over the first.
        notACopy: inDir("a3"),
        // A copy named as one of another process.
        otherPid: inDir("a4"),
        garbage: inDir("a5")
      }
      plant(setAside.otherDirectory, recordOf("a1", [{ temp: evilElsewhere, target: secret }]))
      plant(
        setAside.dotDot,
        recordOf("a2", [{ temp: `${dir}/../${basename(elsewhere)}/${basename(evilElsewhere)}`, target: `${dir}/../${basename(elsewhere)}/secret` }])
      )
      plant(setAside.notACopy, recordOf("a3", [{ temp: victim2, target: victim }]))
      plant(setAside.otherPid, recordOf("a4", [{ temp: evilOtherPid, target: victim }]))
      plant(setAside.garbage, "{ not a journal")

      const untouched = {
        symlink: inDir("b1"),
        foreign: inDir("b2"),
        groupWritable: inDir("b3"),
        hardLinked: inDir("b4")
      }
      const linkedTo = join(elsewhere, "journal-b1")
      plant(linkedTo, wouldReplaceVictim("b1"))
      fs.symlinkSync(linkedTo, untouched.symlink)
      plant(untouched.foreign, wouldReplaceVictim("b2"))
      fs.chownSync(untouched.foreign, 65534, 65534)
      plant(untouched.groupWritable, wouldReplaceVictim("b3"))
      fs.chmodSync(untouched.groupWritable, 0o620)
      const otherName = join(elsewhere, "journal-b4")
      plant(otherName, wouldReplaceVictim("b4"))
      fs.linkSync(otherName, untouched.hardLinked)

      const before = new Map(
        [...Object.values(setAside), ...Object.values(untouched), linkedTo].map((p) => [p, read(p)] as const)
      )
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashOf(join(dir, "src")))

      // Nothing an attacker aimed at moved or changed.
      assert.strictEqual(read(victim), "victim")
      assert.strictEqual(read(victim2), "victim2")
      assert.strictEqual(read(secret), "secret")
      for (const path of [evil, evilElsewhere, evilOtherPid]) assert.strictEqual(read(path), "evil")

      // The server's own bad journals are set aside, content intact.
      for (const path of Object.values(setAside)) {
        assert.isFalse(fs.existsSync(path), path)
        assert.strictEqual(read(`${path}.rejected`), before.get(path))
      }
      // Those that are not its own files are left exactly as they were.
      assert.isTrue(fs.lstatSync(untouched.symlink).isSymbolicLink())
      assert.strictEqual(fs.readlinkSync(untouched.symlink), linkedTo)
      assert.strictEqual(read(linkedTo), before.get(linkedTo))
      assert.strictEqual(fs.lstatSync(untouched.foreign).uid, 65534)
      assert.strictEqual(fs.lstatSync(untouched.groupWritable).mode & 0o777, 0o620)
      assert.strictEqual(fs.lstatSync(untouched.hardLinked).nlink, 2)
      for (const path of Object.values(untouched)) assert.strictEqual(read(path), before.get(path), path)

      // One warning per journal, naming it.
      const planted = [...Object.values(setAside), ...Object.values(untouched)]
      assert.strictEqual(logs.warnings.length, planted.length, logs.warnings.join("\n"))
      for (const path of planted) {
        assert.strictEqual(logs.warnings.filter((w) => w.includes(`'${path}'`)).length, 1, path)
      }
      assert.match(logs.warnings.find((w) => w.includes(untouched.foreign))!, /owned by uid 65534.*; left untouched$/)
      assert.match(logs.warnings.find((w) => w.includes(setAside.otherDirectory))!, /another directory.*; set aside as '.*\.rejected'$/)

      // Another backup into the directory: the journals left untouched are not reported again.
      const again = yield* jobs.run({ type: "backup", id: "again", params: { source: join(dir, "src"), target: join(dir, "dst2") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(again), { _tag: "Succeeded" })
      assert.strictEqual(logs.warnings.length, planted.length)
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(nodeLayer(), logs.layer)))
  })

  it.live("a journal replaced between its inspection and its opening is left untouched", () => {
    const logs = captureWarnings()
    let swap = () => {}
    let watched = ""
    const fsLayer = nodeFsWith((files) => ({
      lstat: (path) =>
        Effect.tap(files.lstat(path), () =>
          Effect.sync(() => {
            if (path === watched) swap()
          }))
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const elsewhere = yield* tempDir
      writeFile(join(dir, "src"), bytes(1000))
      const victim = join(dir, "victim")
      writeFile(victim, Buffer.from("victim"))
      const evil = join(dir, `.victim.effect-jobs-${deadPid}-e1.tmp`)
      writeFile(evil, Buffer.from("evil"))
      // Two swaps, each of a harmless journal for one that would replace the victim:
      // by a symbolic link, and by another file of the server's own.
      const swaps: Array<(path: string, token: string) => void> = [
        (path, token) => {
          const link = join(elsewhere, `link-${token}`)
          plant(join(elsewhere, token), recordOf(token, [{ temp: evil, target: victim }]))
          fs.symlinkSync(join(elsewhere, token), link)
          fs.renameSync(link, path)
        },
        (path, token) => {
          const other = join(dir, `other-${token}`)
          plant(other, recordOf(token, [{ temp: evil, target: victim }]))
          fs.renameSync(other, path)
        }
      ]
      for (const [i, replace] of swaps.entries()) {
        const token = `s${i}`
        const path = join(dir, journalName(token))
        plant(path, recordOf(token, [{ temp: join(dir, `.x.effect-jobs-${deadPid}-t${i}.tmp`), target: join(dir, "x") }]))
        let swapped = false
        watched = path
        swap = () => {
          if (swapped) return
          swapped = true
          replace(path, token)
        }
        const job = yield* jobs.run({ type: "backup", id: `b${i}`, params: { source: join(dir, "src"), target: join(dir, `dst${i}`) } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.isTrue(swapped)
        assert.strictEqual(read(victim), "victim")
        assert.strictEqual(read(evil), "evil")
        assert.isTrue(fs.existsSync(path))
        assert.isFalse(fs.existsSync(`${path}.rejected`))
      }
      assert.strictEqual(logs.warnings.length, 2, logs.warnings.join("\n"))
      assert.match(logs.warnings[0]!, /cannot be opened.*; left untouched$/)
      assert.match(logs.warnings[1]!, /replaced while being read; left untouched$/)
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(layerOver(fsLayer), logs.layer)))
  })

  it.live("a journal whose rename can never succeed (its target became a directory) is set aside; backups go on", () => {
    const logs = captureWarnings()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(1000))
      const blocked = join(dir, "blocked")
      fs.mkdirSync(blocked)
      writeFile(join(blocked, "inside"), Buffer.from("inside"))
      const temp = join(dir, `.blocked.effect-jobs-${deadPid}-t1.tmp`)
      writeFile(temp, Buffer.from("new blocked"))
      const journal = join(dir, journalName("j1"))
      plant(journal, recordOf("j1", [{ temp, target: blocked }]))

      for (const target of ["dst1", "dst2"]) {
        const job = yield* jobs.run({ type: "backup", id: target, params: { source: join(dir, "src"), target: join(dir, target) } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      }
      assert.deepStrictEqual(entries(blocked), ["inside"])
      assert.isFalse(fs.existsSync(journal))
      assert.isTrue(fs.existsSync(`${journal}.rejected`))
      assert.strictEqual(logs.warnings.length, 1)
      assert.match(logs.warnings[0]!, /its commit cannot be finished: its target '.*blocked' exists and is not a regular file; set aside/)
    }).pipe(Effect.scoped, Effect.provide(Layer.mergeAll(nodeLayer(), logs.layer)))
  })
})

describe("checks before the first rename of a transaction", () => {
  const twoBackups = (dir: string, overwrite: boolean) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      for (const i of [1, 2]) writeFile(join(dir, `src${i}`), bytes(50_000 * i, i))
      const txn = yield* JobTxn.make
      const created = []
      for (const i of [1, 2]) {
        created.push(
          yield* jobs.create({ type: "backup", id: `b${i}`, txn, params: { source: join(dir, `src${i}`), target: join(dir, `dst${i}`), overwrite } })
        )
      }
      return { txn, created }
    })

  it.effect("a target that became a directory after make: the transaction aborts at prepare, nothing is renamed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const { created, txn } = yield* twoBackups(dir, true)
      fs.mkdirSync(join(dir, "dst2"))
      for (const job of created) yield* jobs.start(job)
      const outcome = yield* JobTxn.awaitOutcome(txn)
      assert.deepStrictEqual(outcome, {
        _tag: "Aborted",
        error: `Target '${join(dir, "dst2")}' exists and is not a regular file`
      })
      assert.deepStrictEqual(entries(dir), ["dst2", "src1", "src2"])
      assert.deepStrictEqual(entries(join(dir, "dst2")), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a target that became a directory after its own prepare: the first commit's check refuses, nothing is renamed", () => {
    let directory = ""
    let made = false
    // b2 prepares first (newest first); the directory appears while b1 prepares.
    const fsLayer = nodeFsWith((files) => ({
      lstat: (path) =>
        Effect.andThen(
          Effect.sync(() => {
            if (!made && directory !== "" && basename(path).startsWith(".dst1.effect-jobs-")) {
              made = true
              fs.mkdirSync(directory)
            }
          }),
          files.lstat(path)
        )
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const { created, txn } = yield* twoBackups(dir, true)
      directory = join(dir, "dst2")
      for (const job of created) yield* jobs.start(job)
      yield* JobTxn.awaitOutcome(txn)
      assert.isTrue(made)
      for (const job of created) {
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), {
          _tag: "Failed",
          error: `Target '${directory}' exists and is not a regular file`
        })
      }
      assert.deepStrictEqual(entries(dir), ["dst2", "src1", "src2"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("a target directory that is not writable (as access(W_OK) says): the transaction aborts at prepare, nothing is renamed", () => {
    let readOnly = ""
    // Root may write anywhere, so the refusal is the file system's answer, injected.
    const fsLayer = nodeFsWith((files) => ({
      access: (path, options) =>
        path === readOnly && options?.writable === true
          ? Effect.fail(PlatformError.systemError({ _tag: "PermissionDenied", module: "FileSystem", method: "access", pathOrDescriptor: path }))
          : files.access(path, options)
    }))
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const { created, txn } = yield* twoBackups(dir, true)
      readOnly = dir
      for (const job of created) yield* jobs.start(job)
      const outcome = yield* JobTxn.awaitOutcome(txn)
      assert.strictEqual(outcome._tag, "Aborted")
      assert.match((outcome as { error: string }).error, new RegExp(`^Cannot write in '${dir}': `))
      assert.deepStrictEqual(entries(dir), ["src1", "src2"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("without overwrite, a target created by someone else during the copies: the transaction aborts, that file is intact", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const { created, txn } = yield* twoBackups(dir, false)
      writeFile(join(dir, "dst1"), Buffer.from("someone else's"))
      for (const job of created) yield* jobs.start(job)
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: existsMessage(join(dir, "dst1")) })
      assert.strictEqual(read(join(dir, "dst1")), "someone else's")
      assert.deepStrictEqual(entries(dir), ["dst1", "src1", "src2"])
      assert.deepStrictEqual(journals(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("overwrite: false holds at commit", () => {
  const backupWith = (dir: string, meanwhile: (target: string) => void) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const data = bytes(200_000)
      writeFile(join(dir, "src"), data)
      const target = join(dir, "dst")
      const job = yield* jobs.create({ type: "backup", id: "b", params: { source: join(dir, "src"), target } })
      meanwhile(target)
      yield* jobs.start(job)
      return { outcome: yield* jobs.awaitOutcome(job), target, data }
    })

  it.effect("a file created at the target after make: the job fails with TargetExists, the file is intact", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { outcome, target } = yield* backupWith(dir, (t) => writeFile(t, Buffer.from("someone else's")))
      assert.deepStrictEqual(outcome, { _tag: "Failed", error: existsMessage(target) })
      assert.strictEqual(read(target), "someone else's")
      assert.deepStrictEqual(temps(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a dangling symbolic link created at the target: the job fails with TargetExists, the link stays", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const nowhere = join(dir, "nowhere")
      const { outcome, target } = yield* backupWith(dir, (t) => fs.symlinkSync(nowhere, t))
      assert.deepStrictEqual(outcome, { _tag: "Failed", error: existsMessage(target) })
      assert.strictEqual(fs.readlinkSync(target), nowhere)
      assert.isFalse(fs.existsSync(nowhere))
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a file created after every check, just before the commit: the link refuses to replace it", () => {
    let planted = false
    const fsLayer = nodeFsWith((files) => ({
      link: (from, to) =>
        Effect.andThen(
          Effect.sync(() => {
            planted = true
            writeFile(to, Buffer.from("someone else's"))
          }),
          files.link(from, to)
        )
    }))
    return Effect.gen(function*() {
      const dir = yield* tempDir
      const { outcome, target } = yield* backupWith(dir, () => {})
      assert.isTrue(planted)
      assert.deepStrictEqual(outcome, { _tag: "Failed", error: existsMessage(target) })
      assert.strictEqual(read(target), "someone else's")
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped, Effect.provide(layerOver(fsLayer)))
  })

  it.effect("with overwrite, a file created at the target after make is replaced (an atomic rename)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = bytes(10_000)
      writeFile(join(dir, "src"), data)
      const target = join(dir, "dst")
      const job = yield* jobs.create({ type: "backup", id: "b", params: { source: join(dir, "src"), target, overwrite: true } })
      writeFile(target, Buffer.from("old"))
      yield* jobs.start(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(target), hashBytes(data))
      assert.strictEqual(fs.statSync(target).nlink, 1)
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})
