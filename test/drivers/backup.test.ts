/**
 * The `backup` driver on real files: identical copies, pause and resume,
 * force cancel, a source truncated or replaced mid-copy, the checks of `make`,
 * stale temporary copies, and its events.
 *
 * "Mid-copy" is deterministic: `jobs.run` returns as soon as the job first
 * waits for I/O, and a pause requested then parks the job at the pause point
 * after its first chunk.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type FileSystem, PlatformError } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { writePiece } from "../../src/drivers/chunkCopy.ts"
import * as FileDrivers from "../../src/drivers/layer.ts"
import type { Job } from "../../src/Job.ts"
import { Jobs } from "../../src/Jobs.ts"
import { recordEvents } from "../helpers/eventRecorder.ts"
import {
  bytes,
  chunk,
  deadPid,
  entries,
  hashBytes,
  hashOf,
  layerOver,
  nodeFsWith,
  nodeLayer,
  tempDir,
  temps,
  writeFile
} from "./helpers.ts"

const removeFile = (path: string) => fs.rmSync(path)
const renameFile = (from: string, to: string) => fs.renameSync(from, to)

/** Runs a backup and pauses it after its first chunk. */
const pausedAfterFirstChunk = (id: string, params: Record<string, unknown>) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const job = yield* jobs.run({ type: "backup", id, params })
    yield* jobs.pause(job)
    yield* jobs.awaitStatus(job, "paused")
    return job
  })

/**
 * `validate` and `create` both refused by the driver's check, with one
 * message: `JobRefused`, no job listed, and no event — the first events the
 * engine sends after it are those of a job created next (the events go out in
 * order, so a refused job's would come first).
 */
const refusal = (params: Record<string, unknown>) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const recorder = yield* recordEvents
    const validated = yield* Effect.flip(jobs.validate({ type: "backup", id: "b", params }))
    const error = yield* Effect.flip(jobs.create({ type: "backup", id: "b", params }))
    assert.strictEqual(error._tag, "JobRefused")
    assert.strictEqual(validated.message, error.message)
    assert.deepStrictEqual(yield* jobs.list, [])
    const elsewhere = yield* tempDir
    writeFile(join(elsewhere, "src"), bytes(10))
    yield* jobs.run({ type: "backup", id: "next", params: { source: join(elsewhere, "src"), target: join(elsewhere, "dst") } })
    yield* recorder.until("next", "null")
    assert.deepStrictEqual(recorder.events.filter((e) => e.id !== "next"), [])
    return error.message
  })

describe("backup: copies", () => {
  for (const size of [0, 1, chunk - 1, chunk, chunk + 1, 10 * chunk + 7]) {
    it.effect(`a ${size}-byte file is copied byte for byte`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const dir = yield* tempDir
        const data = bytes(size, size + 1)
        writeFile(join(dir, "src"), data)
        const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
        assert.deepStrictEqual(job.progress, { current: size, total: size })
        assert.deepStrictEqual(entries(dir), ["dst", "src"])
      }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
  }

  it.effect("with the default chunk size (4 MiB), a file one byte longer than a chunk", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = bytes(FileDrivers.defaultChunkSize + 1)
      writeFile(join(dir, "src"), data)
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer({}))))

  it.effect("paused mid-copy, the target does not exist yet; resumed, the copy is identical", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = bytes(10 * chunk + 7)
      writeFile(join(dir, "src"), data)
      const job = yield* pausedAfterFirstChunk("b", { source: join(dir, "src"), target: join(dir, "dst") })
      assert.deepStrictEqual(job.progress, { current: chunk, total: data.length })
      assert.strictEqual(temps(dir).length, 1)
      assert.isFalse(fs.existsSync(join(dir, "dst")))
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("with overwrite, the old target stays whole until the commit replaces it", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = bytes(5 * chunk, 7)
      writeFile(join(dir, "src"), data)
      writeFile(join(dir, "dst"), Buffer.from("old target"))
      const job = yield* pausedAfterFirstChunk("b", { source: join(dir, "src"), target: join(dir, "dst"), overwrite: true })
      assert.strictEqual(fs.readFileSync(join(dir, "dst"), "utf8"), "old target")
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("events: created, running, waiting, pending, COMPLETED with the progress, concluded, null", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(3 * chunk))
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      yield* jobs.awaitOutcome(job)
      yield* recorder.until("b", "null")
      assert.deepStrictEqual(recorder.trace("b"), ["created", "running", "waiting", "pending", "COMPLETED", "concluded", "null"])
      const completed = recorder.events.find((e) => e._tag === "Completed")
      assert.deepInclude(completed, { type: "backup", len: 3 * chunk, offset: 3 * chunk })
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("backup: the read ahead and a pause", () => {
  it.effect("a job pauses only once the read of the next chunk is done: paused, it has no read under way", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const source = join(dir, "src")
      const data = bytes(10 * chunk + 7, 8)
      writeFile(source, data)
      // Reads of the source past its first chunk take 50 ms (real time), so one is under way when the
      // job reaches the pause point after its first chunk.
      let readsUnderWay = 0
      const slowReads = nodeFsWith((fs) => ({
        open: (path, options) =>
          path !== source ? fs.open(path, options) : Effect.map(fs.open(path, options), (file) => {
            const slow: FileSystem.File = Object.create(file)
            Object.assign(slow, {
              read: (buffer: Uint8Array, readOptions?: FileSystem.File.ReadOptions) => {
                const late = (readOptions?.position ?? 0n) >= BigInt(chunk)
                return Effect.ensuring(
                  Effect.andThen(
                    Effect.sync(() => readsUnderWay++),
                    Effect.andThen(late ? Effect.promise(() => new Promise((r) => setTimeout(r, 50))) : Effect.void, file.read(buffer, readOptions))
                  ),
                  Effect.sync(() => readsUnderWay--)
                )
              }
            })
            return slow
          })
      }))
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* pausedAfterFirstChunk("b", { source, target: join(dir, "dst") })
        assert.strictEqual(readsUnderWay, 0)
        assert.deepStrictEqual(job.progress, { current: chunk, total: data.length })
        yield* jobs.resume(job)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      }).pipe(Effect.provide(layerOver(slowReads)))
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
    }).pipe(Effect.scoped))
})

describe("backup: never a partial target", () => {
  it.effect("force cancel mid-copy: CANCELLED, no target, no temporary file", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10 * chunk))
      const job = yield* pausedAfterFirstChunk("b", { source: join(dir, "src"), target: join(dir, "dst") })
      assert.strictEqual(temps(dir).length, 1)
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.deepStrictEqual(entries(dir), ["src"])
      yield* recorder.until("b", "null")
      assert.deepStrictEqual(recorder.trace("b"), ["created", "running", "paused", "running", "aborting", "CANCELLED", "concluded", "null"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source truncated mid-copy fails the job with the path and offset; no target", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(10 * chunk + 7))
      const job = yield* pausedAfterFirstChunk("b", { source, target: join(dir, "dst") })
      fs.truncateSync(source, chunk + chunk / 2)
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), {
        _tag: "Failed",
        error: `Source file '${source}' was truncated during the copy: end of file at byte ${2 * chunk}, expected ${10 * chunk + 7} bytes`
      })
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source replaced by another file mid-copy fails the job; no target", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(10 * chunk))
      const job = yield* pausedAfterFirstChunk("b", { source, target: join(dir, "dst") })
      writeFile(join(dir, "other"), bytes(10 * chunk, 9))
      fs.renameSync(join(dir, "other"), source)
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), {
        _tag: "Failed",
        error: `Source file '${source}' was replaced or removed during the copy`
      })
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("closing Jobs mid-copy aborts the backup: no target, no temporary file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10 * chunk))
      yield* pausedAfterFirstChunk("b", { source: join(dir, "src"), target: join(dir, "dst") }).pipe(
        Effect.provide(nodeLayer())
      )
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped))
})

describe("backup: refused before the job exists (the driver's check), with the path in the message", () => {
  it.effect("a missing source", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const message = yield* refusal({ source: join(dir, "nope"), target: join(dir, "dst") })
      assert.strictEqual(message, `Source file '${join(dir, "nope")}' does not exist`)
      assert.deepStrictEqual(entries(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source that is a directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const message = yield* refusal({ source: dir, target: join(dir, "dst") })
      assert.strictEqual(message, `Source '${dir}' is not a regular file`)
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a missing target directory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10))
      const message = yield* refusal({ source: join(dir, "src"), target: join(dir, "missing", "dst") })
      assert.strictEqual(
        message,
        `Target directory '${join(dir, "missing")}' does not exist (target '${join(dir, "missing", "dst")}')`
      )
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("an existing target without overwrite (left as it was)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10))
      writeFile(join(dir, "dst"), Buffer.from("keep me"))
      const message = yield* refusal({ source: join(dir, "src"), target: join(dir, "dst") })
      assert.strictEqual(message, `Target '${join(dir, "dst")}' already exists (pass overwrite: true to replace it)`)
      assert.strictEqual(fs.readFileSync(join(dir, "dst"), "utf8"), "keep me")
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a target that is a directory, even with overwrite", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10))
      fs.mkdirSync(join(dir, "dst"))
      const message = yield* refusal({ source: join(dir, "src"), target: join(dir, "dst"), overwrite: true })
      assert.strictEqual(message, `Target '${join(dir, "dst")}' exists and is not a regular file`)
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("the same file: the same path, a hard link, a symbolic link (even with overwrite)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(10))
      fs.linkSync(source, join(dir, "hard"))
      fs.symlinkSync(source, join(dir, "soft"))
      for (const target of [source, join(dir, "hard"), join(dir, "soft")]) {
        const message = yield* refusal({ source, target, overwrite: true })
        assert.strictEqual(message, `Source '${source}' and target '${target}' are the same file`)
      }
      assert.strictEqual(hashOf(source), hashBytes(bytes(10)))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a target another job is writing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(4 * chunk))
      const first = yield* pausedAfterFirstChunk("first", { source: join(dir, "src"), target: join(dir, "dst") })
      const error = yield* Effect.flip(
        jobs.create({ type: "mirror", id: "second", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      )
      assert.strictEqual(error.message, `Target '${join(dir, "dst")}' is already being written by job 'first'`)
      yield* jobs.resume(first)
      yield* jobs.awaitOutcome(first)
      // Free again once the first job is done.
      const third = yield* jobs.run({
        type: "backup",
        id: "third",
        params: { source: join(dir, "src"), target: join(dir, "dst"), overwrite: true }
      })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(third), { _tag: "Succeeded" })
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source that cannot be read (refused by the file system: root reads every file)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10))
      const message = yield* refusal({ source: join(dir, "src"), target: join(dir, "dst") }).pipe(
        Effect.provide(layerOver(nodeFsWith((fs) => ({
          access: (path, options) =>
            options?.readable === true && path === join(dir, "src")
              ? Effect.fail(PlatformError.systemError({
                _tag: "PermissionDenied",
                module: "FileSystem",
                method: "access",
                pathOrDescriptor: path,
                cause: new Error(`EACCES: permission denied, access '${path}'`)
              }))
              : fs.access(path, options)
        }))))
      )
      assert.strictEqual(message, `Cannot read source file '${join(dir, "src")}': EACCES: permission denied, access '${join(dir, "src")}'`)
    }).pipe(Effect.scoped))

  it.effect("invalid parameters, in one line: an empty path; a speed, which is `create`'s and not a parameter", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const messages: Array<string> = []
      for (const params of [{ source: "", target: "b" }, { source: "a", target: "b", speed: 5 }]) {
        const error = yield* Effect.flip(jobs.create({ type: "backup", id: "b", params }))
        assert.strictEqual(error._tag, "InvalidParameters")
        messages.push(error.message)
      }
      assert.deepStrictEqual(messages, [
        `Invalid parameters for job type 'backup': Expected a value with a length of at least 1 at ["source"]`,
        `Invalid parameters for job type 'backup': the initial speed is not a parameter: give it to Jobs.create as its speed at ["speed"]`
      ])
    }).pipe(Effect.provide(nodeLayer())))
})

describe("backup: make checks again what may have changed since the check", () => {
  it.effect("a source removed between the check and make: the job is created and fails at once (created, null)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(10))
      // The check's last look at the source (its access check) is followed by the removal.
      const removedAfterCheck = nodeFsWith((fs) => ({
        access: (path, options) =>
          Effect.tap(fs.access(path, options), () =>
            Effect.sync(() => {
              if (path === source) removeFile(path)
            }))
      }))
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const recorder = yield* recordEvents
        const error = yield* Effect.flip(jobs.create({ type: "backup", id: "b", params: { source, target: join(dir, "dst") } }))
        assert.strictEqual(error._tag, "JobSetupFailed")
        assert.strictEqual(error.message, `Source file '${source}' does not exist`)
        yield* recorder.until("b", "null")
        assert.deepStrictEqual(recorder.trace("b"), ["created", "null"])
        assert.deepStrictEqual(yield* jobs.list, [])
      }).pipe(Effect.provide(layerOver(removedAfterCheck)))
      assert.deepStrictEqual(entries(dir), [])
    }).pipe(Effect.scoped))
})

describe("backup: stale temporary copies", () => {
  it.effect("the next backup to a target removes the copies of dead processes, and only those", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(chunk))
      const dead = `.dst.effect-jobs-${deadPid}-abc.tmp`
      const running = `.dst.effect-jobs-1-abc.tmp` // process 1 runs as long as the system does
      const mine = `.dst.effect-jobs-${process.pid}-zzz.tmp` // this process, but no job of it
      const otherTarget = `.other.effect-jobs-${deadPid}-abc.tmp`
      for (const name of [dead, running, mine, otherTarget]) writeFile(join(dir, name), Buffer.from("partial"))
      const job: Job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.deepStrictEqual(entries(dir), [running, otherTarget, "dst", "src"].sort())
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("backup: the copy written in pieces, over several handles", () => {
  const bigChunks = { chunkSize: 1024 * 1024 }
  const piece = writePiece

  for (const size of [3 * bigChunks.chunkSize + piece + 1, 2 * bigChunks.chunkSize - 1, piece - 1]) {
    it.effect(`a ${size}-byte file in 1 MiB chunks (${piece / 1024} KiB pieces) is copied byte for byte`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const dir = yield* tempDir
        const data = bytes(size, 3)
        writeFile(join(dir, "src"), data)
        const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
        assert.deepStrictEqual(job.progress, { current: size, total: size })
      }).pipe(Effect.scoped, Effect.provide(nodeLayer(bigChunks))))
  }

  it.effect("a copy that cannot be opened again for writing (its source read-only, the process not privileged) is written through its one handle", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = bytes(3 * bigChunks.chunkSize + 5, 4)
      writeFile(join(dir, "src"), data)
      const reopened: Array<string> = []
      const noReopen = nodeFsWith((fs) => ({
        open: (path, options) => {
          if (options?.flag !== "r+") return fs.open(path, options)
          reopened.push(path)
          return Effect.fail(PlatformError.systemError({ _tag: "PermissionDenied", module: "FileSystem", method: "open", pathOrDescriptor: path }))
        }
      }))
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      }).pipe(Effect.provide(layerOver(noReopen, bigChunks)))
      assert.strictEqual(reopened.length, 1) // tried once, then one handle
      assert.match(reopened[0]!, /\.dst\.effect-jobs-\d+-[0-9a-z]+\.tmp$/)
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped))

  it.effect("a temporary copy replaced before it is opened again fails the job; the target is never written", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(3 * bigChunks.chunkSize, 5))
      const swapped = nodeFsWith((fs) => ({
        open: (path, options) =>
          options?.flag !== "r+" ? fs.open(path, options) : Effect.andThen(
            Effect.sync(() => {
              writeFile(join(dir, "other"), Buffer.from("not the copy"))
              renameFile(join(dir, "other"), path)
            }),
            fs.open(path, options)
          )
      }))
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") } })
        const outcome = yield* jobs.awaitOutcome(job)
        assert.strictEqual(outcome._tag, "Failed")
        assert.match(
          outcome._tag === "Failed" ? outcome.error : "",
          /^Cannot open '.*\/\.dst\.effect-jobs-\d+-[0-9a-z]+\.tmp': the temporary copy was replaced$/
        )
      }).pipe(Effect.provide(layerOver(swapped, bigChunks)))
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped))

  it.effect("buffers kept from a longer copy leave nothing of it in a shorter one", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const long = bytes(3 * bigChunks.chunkSize, 6)
      const short = bytes(bigChunks.chunkSize / 2 + 3, 7)
      writeFile(join(dir, "long"), long)
      writeFile(join(dir, "short"), short)
      for (const [name, data] of [["long", long], ["short", short]] as const) {
        const job = yield* jobs.run({ type: "backup", id: name, params: { source: join(dir, name), target: join(dir, `${name}.copy`) } })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.strictEqual(hashOf(join(dir, `${name}.copy`)), hashBytes(data))
      }
    }).pipe(Effect.scoped, Effect.provide(nodeLayer(bigChunks))))
})
