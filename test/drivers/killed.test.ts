/**
 * A process killed with SIGKILL never leaves a partial target: not in the
 * middle of a copy, and not between the renames of a committing transaction.
 * The child (fixtures/backupChild.ts) prints a line when it reaches the point
 * to be killed at; what it leaves behind is cleaned up, or finished, by the
 * next backup to the same target.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Jobs } from "../../src/Jobs.ts"
import { bytes, entries, hashBytes, hashOf, journals, MiB, nodeLayer, tempDir, temps, writeFile } from "./helpers.ts"

const node = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
const child = fileURLToPath(new URL("fixtures/backupChild.ts", import.meta.url))

/** Starts the child and waits for its first line (failing with its stderr if it exits first). */
const spawnUntilLine = (args: ReadonlyArray<string>) =>
  Effect.callback<{ readonly process: ChildProcess; readonly line: string }, Error>((resume) => {
    const proc = spawn(node, [child, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    proc.stderr!.on("data", (d) => (stderr += String(d)))
    const lines = createInterface({ input: proc.stdout! })
    lines.once("line", (line) => resume(Effect.succeed({ process: proc, line })))
    proc.once("exit", (code, signal) => resume(Effect.fail(new Error(`child exited (${code ?? signal}) before its line: ${stderr}`))))
    return Effect.sync(() => proc.kill("SIGKILL"))
  })

/** SIGKILL, and wait until the process is gone. */
const kill = (proc: ChildProcess) =>
  Effect.callback<string | null>((resume) => {
    proc.once("exit", (_code, signal) => resume(Effect.succeed(signal)))
    proc.kill("SIGKILL")
  })

/**
 * A transaction of two backups (src1 → dst1, src2 → dst2) in a child process,
 * killed with SIGKILL when it prints `<printed> <dst2>` at step `step` of the commit.
 */
const killTwoBackupsAt = (step: "commit" | "link", printed: string) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const data = [bytes(300_000, 1), bytes(200_000, 2)]
    writeFile(join(dir, "src1"), data[0]!)
    writeFile(join(dir, "src2"), data[1]!)
    const { line, process } = yield* spawnUntilLine([step, join(dir, "src1"), join(dir, "dst1"), join(dir, "src2"), join(dir, "dst2")])
    assert.strictEqual(line, `${printed} ${join(dir, "dst2")}`)
    assert.strictEqual(yield* kill(process), "SIGKILL")
    return { dir, data }
  })

/**
 * A new backup to dst1 first recovers the crashed commit, which puts dst1 in place,
 * so it is refused as a target that exists; both targets then hold their sources.
 */
const nextBackupFinishesTheCommit = (dir: string, data: ReadonlyArray<Uint8Array>) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const error = yield* Effect.flip(
      jobs.create({ type: "backup", id: "again", params: { source: join(dir, "src1"), target: join(dir, "dst1") } })
    )
    assert.strictEqual(error.message, `Target '${join(dir, "dst1")}' already exists (pass overwrite: true to replace it)`)
    assert.deepStrictEqual(entries(dir), ["dst1", "dst2", "src1", "src2"])
    assert.strictEqual(hashOf(join(dir, "dst1")), hashBytes(data[0]!))
    assert.strictEqual(hashOf(join(dir, "dst2")), hashBytes(data[1]!))
  })

describe("a backup process killed with SIGKILL", () => {
  it.live("mid-copy: no target, only a partial temporary file, which the next backup removes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = bytes(4 * MiB)
      writeFile(join(dir, "src"), data)
      const { line, process } = yield* spawnUntilLine(["copy", join(dir, "src"), join(dir, "dst")])
      assert.match(line, /^copying .*\.dst\.effect-jobs-\d+-[0-9a-z]+\.tmp$/)
      assert.strictEqual(yield* kill(process), "SIGKILL")

      assert.isFalse(fs.existsSync(join(dir, "dst")))
      const left = temps(dir)
      assert.strictEqual(left.length, 1)
      const partial = fs.statSync(join(dir, left[0]!)).size
      assert.isTrue(partial > 0 && partial < data.length, `partial copy of ${partial} bytes`)

      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "backup", id: "again", params: { source: join(dir, "src"), target: join(dir, "dst") } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.deepStrictEqual(entries(dir), ["dst", "src"])
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.live("between the two renames of a transaction: the next backup to the other target finishes the commit", () =>
    Effect.gen(function*() {
      // Members commit newest first, as QEMU applies a transaction's steps.
      const { dir, data } = yield* killTwoBackupsAt("commit", "renamed")

      // What the crash left: one target in place, the other's complete copy and the journal beside it.
      assert.isTrue(fs.existsSync(join(dir, "dst2")))
      assert.isFalse(fs.existsSync(join(dir, "dst1")))
      assert.strictEqual(temps(dir).length, 1)
      assert.strictEqual(journals(dir).length, 1)

      yield* nextBackupFinishesTheCommit(dir, data)
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))

  it.live("between the link of a target and the removal of its copy's name: recovery removes that name and finishes the commit", () =>
    Effect.gen(function*() {
      const { dir, data } = yield* killTwoBackupsAt("link", "linked")

      // dst2 and its copy are one file with two names; dst1's copy waits; the journal is there.
      const left = temps(dir)
      assert.strictEqual(left.length, 2)
      const dst2Copy = left.find((name) => name.startsWith(".dst2."))!
      assert.strictEqual(fs.statSync(join(dir, "dst2")).ino, fs.statSync(join(dir, dst2Copy)).ino)
      assert.isFalse(fs.existsSync(join(dir, "dst1")))
      assert.strictEqual(journals(dir).length, 1)

      // The existing dst2 is the commit's own, not a conflict: recovery only removes the copy's name.
      yield* nextBackupFinishesTheCommit(dir, data)
      assert.strictEqual(fs.statSync(join(dir, "dst2")).nlink, 1)
    }).pipe(Effect.scoped, Effect.provide(nodeLayer())))
})
