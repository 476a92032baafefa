/**
 * What a file job reads and how widely it lets others read it: a mirror never
 * follows its source path to another file (a symbolic link or a rename swapped
 * in between rounds fails it with `SourceReplaced`); a copy never grants more
 * permission bits than its source; and a source whose size is reported as 0
 * but has content (procfs) is backed up to its end, or refused by a mirror —
 * never copied as an empty file.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import { join } from "node:path"
import { Jobs } from "../../src/Jobs.ts"
import {
  bytes,
  chunk,
  entries,
  hashBytes,
  hashOf,
  layerOver,
  nodeFsWith,
  nodeLayer,
  syncFs,
  tempDir,
  temps,
  writeFile
} from "./helpers.ts"

const secretText = "the secret nobody else may read"

/** A 0600 file holding `secretText`. */
const writeSecret = (path: string) => {
  fs.writeFileSync(path, secretText, { mode: 0o600 })
  fs.chmodSync(path, 0o600)
}

const modeOf = (path: string) => fs.statSync(path).mode & 0o777

/** No file in `dir` but `except` holds the secret (the temporary copies included). */
const secretOnlyIn = (dir: string, except: string) => {
  for (const name of entries(dir)) {
    const path = join(dir, name)
    if (path === except || !fs.lstatSync(path).isFile()) continue
    assert.notInclude(fs.readFileSync(path, "utf8"), secretText, `${name} holds the secret`)
  }
}

const replacedMessage = (source: string) => `Source file '${source}' was replaced or removed during the copy`

/** Points the symbolic link `link` at `to`, the way `ln -sf` does: a new link renamed over the old one. */
const repoint = (link: string, to: string) => {
  fs.symlinkSync(to, `${link}.new`)
  fs.renameSync(`${link}.new`, link)
}

/** Node's file system, calling `after` once the `n`-th open of `path` has succeeded. */
const afterOpen = (path: string, n: number, after: () => void) => {
  let opens = 0
  return nodeFsWith((files) => ({
    open: (p, options) =>
      Effect.tap(files.open(p, options), () =>
        Effect.sync(() => {
          if (p === path && ++opens === n) after()
        }))
  }))
}

describe("mirror: the source path is never followed to another file", () => {
  const poll = 1000
  const layer = () => layerOver(syncFs().layer, { chunkSize: chunk, pollInterval: poll })

  it.effect("swapped for a symbolic link to a 0600 file between rounds: SourceReplaced, the secret is never copied", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      const target = join(dir, "dst")
      const secret = join(dir, "secret")
      writeFile(source, bytes(2 * chunk))
      fs.chmodSync(source, 0o644)
      writeFile(target, Buffer.from("old target"))
      writeSecret(secret)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target, overwrite: true } })
      yield* jobs.awaitStatus(job, "ready")

      fs.rmSync(source)
      fs.symlinkSync(secret, source)
      yield* TestClock.adjust(poll) // one round
      secretOnlyIn(dir, secret)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: replacedMessage(source) })
      assert.strictEqual(fs.readFileSync(target, "utf8"), "old target")
      assert.deepStrictEqual(temps(dir), [])
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.effect("replaced by a rename of another regular file (another inode) between rounds: SourceReplaced", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(2 * chunk, 1))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target: join(dir, "dst") } })
      yield* jobs.awaitStatus(job, "ready")

      writeSecret(join(dir, "other"))
      fs.renameSync(join(dir, "other"), source)
      yield* TestClock.adjust(poll)
      secretOnlyIn(dir, source)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: replacedMessage(source) })
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.effect("a source named through a symbolic link is mirrored while the link still leads to the file opened", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const real = join(dir, "real")
      const link = join(dir, "link")
      writeFile(real, bytes(2 * chunk, 3))
      fs.symlinkSync(real, link)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source: link, target: join(dir, "dst") } })
      yield* jobs.awaitStatus(job, "ready")
      fs.appendFileSync(real, bytes(100, 4))
      yield* TestClock.adjust(poll)
      assert.deepStrictEqual(job.progress, { current: 2 * chunk + 100, total: 2 * chunk + 100 })

      // The link is pointed at the secret (links cannot change in place: a new one is renamed over it).
      writeSecret(join(dir, "secret"))
      fs.symlinkSync(join(dir, "secret"), join(dir, "link2"))
      fs.renameSync(join(dir, "link2"), link)
      yield* TestClock.adjust(poll)
      secretOnlyIn(dir, join(dir, "secret"))
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: replacedMessage(link) })
      assert.isFalse(fs.existsSync(join(dir, "dst")))
    }).pipe(Effect.scoped, Effect.provide(layer())))

  it.effect("swapped for a symbolic link right after make opened it: make fails with SourceReplaced (created, null)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(10))
      writeSecret(join(dir, "secret"))
      // A backup's check opens nothing: the first open of the source is make's.
      const swapped = afterOpen(source, 1, () => {
        fs.rmSync(source)
        fs.symlinkSync(join(dir, "secret"), source)
      })
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const error = yield* Effect.flip(jobs.create({ type: "backup", id: "b", params: { source, target: join(dir, "dst") } }))
        assert.strictEqual(error._tag, "JobSetupFailed")
        assert.strictEqual(error.message, replacedMessage(source))
        assert.deepStrictEqual(yield* jobs.list, [])
      }).pipe(Effect.provide(layerOver(swapped)))
      assert.deepStrictEqual(entries(dir), ["secret", "src"])
    }).pipe(Effect.scoped))

  it.effect("swapped and then completed on Node's file system: the final round fails with SourceReplaced", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(3 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target: join(dir, "dst") } })
      yield* jobs.awaitStatus(job, "ready")
      writeSecret(join(dir, "secret"))
      fs.rmSync(source)
      fs.symlinkSync(join(dir, "secret"), source)
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: replacedMessage(source) })
      assert.deepStrictEqual(entries(dir), ["secret", "src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("a copy never grants more than its source", () => {
  it.effect("backup of a 0600 source: the target is 0600, also when it replaces an existing 0644 target", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(3 * chunk))
      fs.chmodSync(source, 0o600)
      for (const [id, target, overwrite] of [["fresh", join(dir, "new"), false], ["over", join(dir, "old"), true]] as const) {
        if (overwrite) {
          writeFile(target, Buffer.from("old, world-readable"))
          fs.chmodSync(target, 0o644)
        }
        const job = yield* jobs.run({ type: "backup", id, params: { source, target, overwrite } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.strictEqual(hashOf(target), hashOf(source))
        assert.strictEqual(modeOf(target).toString(8), "600", id)
      }
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("mirror of a 0600 source over an existing 0644 target: the copy and the target are 0600", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      const target = join(dir, "dst")
      writeFile(source, bytes(2 * chunk))
      fs.chmodSync(source, 0o600)
      writeFile(target, Buffer.from("old, world-readable"))
      fs.chmodSync(target, 0o644)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target, overwrite: true } })
      yield* jobs.awaitStatus(job, "ready")
      assert.strictEqual(modeOf(join(dir, temps(dir)[0]!)).toString(8), "600")
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(target), hashOf(source))
      assert.strictEqual(modeOf(target).toString(8), "600")
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  /** The synchronous file system, with a `chmod` that records whether the file held the secret at that moment. */
  const chmods: Array<{ readonly mode: number; readonly heldSecret: boolean }> = []
  const syncWithChmod = () =>
    layerOver(
      Layer.effect(
        FileSystem.FileSystem,
        Effect.map(Effect.service(FileSystem.FileSystem), (files) =>
          FileSystem.FileSystem.of({
            ...files,
            chmod: (path, mode) =>
              Effect.sync(() => {
                chmods.push({ mode, heldSecret: fs.readFileSync(path, "utf8").includes(secretText) })
                fs.chmodSync(path, mode)
              })
          }))
      ).pipe(Layer.provide(syncFs().layer)),
      { chunkSize: chunk, pollInterval: 1000 }
    )

  it.effect("a mirror's source narrowed to 0600 while READY: the copy is narrowed before the next round copies anything", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      const target = join(dir, "dst")
      writeFile(source, bytes(2 * chunk))
      fs.chmodSync(source, 0o644)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target } })
      yield* jobs.awaitStatus(job, "ready")
      const copy = join(dir, temps(dir)[0]!)
      assert.strictEqual(modeOf(copy).toString(8), "644")

      fs.chmodSync(source, 0o600)
      fs.appendFileSync(source, secretText)
      yield* TestClock.adjust(1000) // one round
      assert.include(fs.readFileSync(copy, "utf8"), secretText)
      assert.strictEqual(modeOf(copy).toString(8), "600")
      assert.deepStrictEqual(chmods, [{ mode: 0o600, heldSecret: false }])

      fs.chmodSync(source, 0o640) // wider again: bits are never added back
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(target), hashOf(source))
      assert.strictEqual(modeOf(target).toString(8), "600")
      assert.strictEqual(chmods.length, 1)
    }).pipe(Effect.scoped, Effect.provide(syncWithChmod())))
})

// procfs files report a size of 0 and have content. Chosen for stable content: /proc/version is the
// same for every reader, /proc/self/cmdline is this process's command line (the job reads it from this
// process too).
const procfs = fs.existsSync("/proc/version") && fs.existsSync("/proc/self/cmdline")
const skipReason = procfs ? "" : " (skipped: no /proc on this system)"

describe(`sources whose size is reported as 0 but have content (procfs)${skipReason}`, () => {
  it.effect.skipIf(!procfs)("backup of /proc/version and /proc/self/cmdline: the whole content, never an empty target", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      for (const [id, source] of [["version", "/proc/version"], ["cmdline", "/proc/self/cmdline"]] as const) {
        assert.strictEqual(fs.statSync(source).size, 0) // what makes the case
        const target = join(dir, id)
        const job = yield* jobs.run({ type: "backup", id, params: { source, target } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        const expected = fs.readFileSync(source)
        assert.isAbove(expected.length, 0)
        assert.strictEqual(hashOf(target), hashBytes(expected), id)
        assert.deepStrictEqual(job.progress, { current: expected.length, total: expected.length })
      }
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect.skipIf(!procfs)("backup of /proc/self/status (content that changes): a non-empty copy of it", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: "/proc/self/status", target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      const copy = fs.readFileSync(join(dir, "dst"), "utf8")
      assert.match(copy, /^Name:\t/)
      assert.include(copy, `\nPid:\t${process.pid}\n`)
      assert.strictEqual(job.progress.current, Buffer.byteLength(copy))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect.skipIf(!procfs)("in small chunks: the progress total grows with what was read (one chunk ahead), and ends equal", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const expected = fs.readFileSync("/proc/version")
      assert.isAbove(expected.length, 48)
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: "/proc/version", target: join(dir, "dst") } })
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      // Parked after the first chunk, the second one already read: the total is what is known to exist.
      assert.deepStrictEqual(job.progress, { current: 16, total: 32 })
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(expected))
      assert.deepStrictEqual(job.progress, { current: expected.length, total: expected.length })
    }).pipe(Effect.scoped, Effect.provide(nodeLayer({ chunkSize: 16 }))))

  it.effect.skipIf(!procfs)("mirror: a link re-pointed at /proc/version after the check is refused by make; the target is free again", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const link = join(dir, "src")
      const target = join(dir, "dst")
      writeFile(join(dir, "empty"), new Uint8Array(0))
      fs.symlinkSync(join(dir, "empty"), link)
      // The check opens the (empty) source to look for unreported content; then the link is re-pointed.
      const repointed = afterOpen(link, 1, () => repoint(link, "/proc/version"))
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const error = yield* Effect.flip(jobs.create({ type: "mirror", id: "m", params: { source: link, target } }))
        assert.strictEqual(error._tag, "JobSetupFailed")
        assert.match(error.message, /^Source file '.*' reports a size of 0 but has content/)
        // make released what it held: the target may be written by the next job.
        repoint(link, join(dir, "empty"))
        const next = yield* jobs.run({ type: "mirror", id: "next", params: { source: link, target } })
        yield* jobs.awaitStatus(next, "ready")
        yield* jobs.complete(next)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(next), { _tag: "Succeeded" })
      }).pipe(Effect.provide(layerOver(repointed)))
      assert.strictEqual(fs.statSync(target).size, 0)
    }).pipe(Effect.scoped))

  it.effect.skipIf(!procfs)("mirror of /proc/version is refused before the job exists (SourceSizeUnknown)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const error = yield* Effect.flip(
        jobs.create({ type: "mirror", id: "m", params: { source: "/proc/version", target: join(dir, "dst") } })
      )
      assert.strictEqual(error._tag, "JobRefused")
      assert.strictEqual(
        error.message,
        "Source file '/proc/version' reports a size of 0 but has content (a procfs-like file, whose content is made at each read): it cannot be mirrored; back it up instead"
      )
      assert.deepStrictEqual(yield* jobs.list, [])
      assert.deepStrictEqual(entries(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("an empty regular file is still an empty file", () => {
  it.effect("backup of an empty file: an empty target, progress 0 of 0", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), new Uint8Array(0))
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(fs.statSync(join(dir, "dst")).size, 0)
      assert.deepStrictEqual(job.progress, { current: 0, total: 0 })
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("mirror of an empty file is accepted; what is appended later is mirrored", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, new Uint8Array(0))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: { source, target: join(dir, "dst") } })
      yield* jobs.awaitStatus(job, "ready")
      fs.appendFileSync(source, bytes(100, 2))
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(bytes(100, 2)))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})
