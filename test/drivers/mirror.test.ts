/**
 * The `mirror` driver: READY after the first copy, sync rounds while READY,
 * STANDBY without syncing, `complete` → final sync → commit, and QEMU's
 * mirror cancel rule (hard before READY; in READY soft = commit the last
 * finished round, force = target untouched).
 *
 * The first group runs on Node's file system (verbs and statuses need no
 * clock); the second on the synchronous file system under `TestClock`, where
 * one poll interval of virtual time runs exactly one round.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import { join } from "node:path"
import { Jobs } from "../../src/Jobs.ts"
import { recordEvents } from "../helpers/eventRecorder.ts"
import { bytes, chunk, entries, hashBytes, hashOf, layerOver, nodeLayer, syncFs, tempDir, temps, writeFile } from "./helpers.ts"

const mirrorParams = (dir: string, extra: Record<string, unknown> = {}) => ({
  source: join(dir, "src"),
  target: join(dir, "dst"),
  ...extra
})

/** Modifies one byte range of a file in place. */
const patch = (path: string, offset: number, data: Uint8Array) => {
  const fd = fs.openSync(path, "r+")
  fs.writeSync(fd, data, 0, data.length, offset)
  fs.closeSync(fd)
}

/** The temporary copy's content, read straight from the file. */
const copyIn = (dir: string) => fs.readFileSync(join(dir, temps(dir)[0]!))

describe("mirror on Node's file system", () => {
  it.effect("READY after the first copy; source modified and appended; complete → the target equals the final source", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(5 * chunk + 3))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      assert.deepStrictEqual(job.progress, { current: 5 * chunk + 3, total: 5 * chunk + 3 })
      assert.isFalse(fs.existsSync(join(dir, "dst")))
      patch(source, 2 * chunk + 10, bytes(100, 5))
      fs.appendFileSync(source, bytes(chunk, 6))
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashOf(source))
      // The final sync re-copied the patched chunk, the old 3-byte tail (now a full chunk) and the new tail.
      assert.deepStrictEqual(job.progress, { current: 7 * chunk + 6, total: 7 * chunk + 6 })
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
      yield* recorder.until("m", "null")
      assert.deepStrictEqual(recorder.trace("m"), [
        "created",
        "running",
        "ready",
        "READY",
        "waiting",
        "pending",
        "COMPLETED",
        "concluded",
        "null"
      ])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source that shrank is cut to size by the final sync", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(4 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      fs.truncateSync(source, chunk + 1)
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashOf(source))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source replaced by another file (a rename onto its path) fails the mirror; the target is untouched", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(3 * chunk, 1))
      writeFile(join(dir, "dst"), Buffer.from("old target"))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir, { overwrite: true }) })
      yield* jobs.awaitStatus(job, "ready")
      writeFile(join(dir, "new"), bytes(2 * chunk, 2))
      fs.renameSync(join(dir, "new"), source)
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), {
        _tag: "Failed",
        error: `Source file '${source}' was replaced or removed during the copy`
      })
      assert.strictEqual(fs.readFileSync(join(dir, "dst"), "utf8"), "old target")
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("soft cancel in READY: COMPLETED, and the target is the copy as of the last finished round", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const dir = yield* tempDir
      const source = join(dir, "src")
      const original = bytes(3 * chunk)
      writeFile(source, original)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      patch(source, 0, bytes(10, 3))
      yield* jobs.cancel(job) // soft
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      // No final sync: the target is the first full copy, not the patched source.
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(original))
      yield* recorder.until("m", "null")
      assert.deepStrictEqual(recorder.trace("m").slice(-5), ["waiting", "pending", "COMPLETED", "concluded", "null"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("force cancel in READY: CANCELLED, the existing target is untouched, no temporary file", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(3 * chunk))
      writeFile(join(dir, "dst"), Buffer.from("old target"))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir, { overwrite: true }) })
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.strictEqual(fs.readFileSync(join(dir, "dst"), "utf8"), "old target")
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
      yield* recorder.until("m", "null")
      assert.deepStrictEqual(recorder.trace("m").slice(-4), ["aborting", "CANCELLED", "concluded", "null"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("before READY even a soft cancel is hard: CANCELLED, no target", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      writeFile(join(dir, "src"), bytes(10 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      yield* jobs.cancel(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("pause in READY → STANDBY; complete while in STANDBY waits for the resume", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(2 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "standby")
      fs.appendFileSync(source, bytes(7, 4))
      yield* jobs.complete(job)
      assert.strictEqual(job.status, "standby")
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashOf(source))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.effect("a source that disappears fails the mirror; the target is untouched", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(2 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      fs.rmSync(source)
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: `Source file '${source}' does not exist` })
      assert.deepStrictEqual(entries(dir), [])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("mirror: refused before the job exists (the driver's check)", () => {
  /** `create` refused with `JobRefused`; no job, and no event before those of a job created next. */
  const refused = (params: Record<string, unknown>) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const recorder = yield* recordEvents
      const error = yield* Effect.flip(jobs.create({ type: "mirror", id: "m", params }))
      assert.strictEqual(error._tag, "JobRefused")
      assert.deepStrictEqual(yield* jobs.list, [])
      const elsewhere = yield* tempDir
      writeFile(join(elsewhere, "src"), bytes(10))
      yield* jobs.run({ type: "backup", id: "next", params: { source: join(elsewhere, "src"), target: join(elsewhere, "dst") } })
      yield* recorder.until("next", "null")
      assert.deepStrictEqual(recorder.events.filter((e) => e.id !== "next"), [])
      return error.message
    })

  it.effect("a missing source; an existing target without overwrite; the target as the source", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      assert.strictEqual(yield* refused(mirrorParams(dir)), `Source file '${join(dir, "src")}' does not exist`)
      writeFile(join(dir, "src"), bytes(10))
      writeFile(join(dir, "dst"), Buffer.from("keep me"))
      assert.strictEqual(
        yield* refused(mirrorParams(dir)),
        `Target '${join(dir, "dst")}' already exists (pass overwrite: true to replace it)`
      )
      assert.strictEqual(
        yield* refused({ source: join(dir, "src"), target: join(dir, "src"), overwrite: true }),
        `Source '${join(dir, "src")}' and target '${join(dir, "src")}' are the same file`
      )
      assert.strictEqual(fs.readFileSync(join(dir, "dst"), "utf8"), "keep me")
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})

describe("mirror rounds under TestClock (synchronous file system)", () => {
  const poll = 1000
  const sync = () => {
    const files = syncFs()
    return { layer: layerOver(files.layer, { chunkSize: chunk, pollInterval: poll }) }
  }

  it.effect("while READY, each poll syncs the changed chunks; the progress total grows by what was re-copied", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(4 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      assert.deepStrictEqual(job.progress, { current: 4 * chunk, total: 4 * chunk })

      patch(source, chunk + 5, bytes(3, 7)) // one chunk differs
      yield* TestClock.adjust(poll)
      assert.strictEqual(hashBytes(copyIn(dir)), hashOf(source))
      assert.deepStrictEqual(job.progress, { current: 5 * chunk, total: 5 * chunk })

      fs.appendFileSync(source, bytes(10, 8)) // a new partial chunk
      yield* TestClock.adjust(poll)
      assert.strictEqual(hashBytes(copyIn(dir)), hashOf(source))
      assert.deepStrictEqual(job.progress, { current: 5 * chunk + 10, total: 5 * chunk + 10 })

      yield* TestClock.adjust(10 * poll) // nothing changed: nothing copied
      assert.deepStrictEqual(job.progress, { current: 5 * chunk + 10, total: 5 * chunk + 10 })
      assert.isFalse(fs.existsSync(join(dir, "dst")))
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashOf(source))
    }).pipe(Effect.scoped, Effect.provide(sync().layer)))

  it.effect("in STANDBY nothing is synced, whatever the time; after the resume the copy catches up", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      const original = bytes(3 * chunk)
      writeFile(source, original)
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "standby")
      patch(source, 0, bytes(chunk, 9))
      yield* TestClock.adjust(60 * poll)
      assert.strictEqual(hashBytes(copyIn(dir)), hashBytes(original))
      assert.deepStrictEqual(job.progress, { current: 3 * chunk, total: 3 * chunk })
      yield* jobs.resume(job)
      yield* TestClock.adjust(poll)
      assert.strictEqual(job.status, "ready")
      assert.strictEqual(hashBytes(copyIn(dir)), hashOf(source))
    }).pipe(Effect.scoped, Effect.provide(sync().layer)))

  it.effect("a soft cancel commits the copy as of the last finished round, not the source's latest state", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const source = join(dir, "src")
      writeFile(source, bytes(3 * chunk))
      const job = yield* jobs.run({ type: "mirror", id: "m", params: mirrorParams(dir) })
      yield* jobs.awaitStatus(job, "ready")
      patch(source, 0, bytes(16, 10)) // state B
      yield* TestClock.adjust(poll) // a round: the copy is B
      const stateB = fs.readFileSync(source)
      patch(source, chunk, bytes(16, 11)) // state C, never synced
      yield* jobs.cancel(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(stateB))
      assert.notStrictEqual(hashOf(join(dir, "dst")), hashOf(source))
    }).pipe(Effect.scoped, Effect.provide(sync().layer)))
})
