/**
 * `effect-jobs backup` and `effect-jobs mirror` as real processes, on real
 * files: plain progress lines on a pipe, Ctrl-C (SIGINT) mid-copy cancels and
 * leaves no target and no temporary file (exit 130), failures exit 1 with the
 * driver's message, an empty file ends at 100%, and a line on stdin — or its
 * end — completes a mirror once READY; a mirror standing still in READY
 * prints nothing more.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { bytes, entries, run, start, tempDir } from "./harness.ts"

const MiB = 1024 * 1024
const same = (a: string, b: string) => fs.readFileSync(a).equals(fs.readFileSync(b))

describe("effect-jobs backup", () => {
  it.live("SIGINT mid-copy: the job is cancelled, no target and no temporary copy are left, exit code 130", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(join(dir, "src"), bytes(4 * MiB))
      // 512 KiB/s: 8 seconds for the whole copy.
      const backup = yield* start(["backup", "--speed", String(512 * 1024), join(dir, "src"), join(dir, "dst")])
      // A progress line with bytes copied: the temporary copy exists and is being written.
      const line = yield* backup.waitFor(/^backup: running {2}[\d.]+ (KiB|MiB) \/ 4\.00 MiB {2}\d+%/)
      assert.isAtLeast(entries(dir).length, 2, `a temporary copy beside src while ${line[0]}`)
      yield* backup.signal("SIGINT")
      const exited = yield* backup.exited
      assert.strictEqual(exited.code, 130, exited.stderr)
      assert.include(exited.stdout, "backup: cancelling…")
      assert.include(exited.stderr, `backup: cancelled; ${join(dir, "dst")} was left as it was`)
      assert.notInclude(exited.stdout, "\x1b") // not a terminal: plain lines
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped))

  it.live("success, a missing source, an existing target, --overwrite", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = (name: string) => join(dir, name)
      fs.writeFileSync(path("src"), bytes(3 * MiB + 17))
      fs.writeFileSync(path("old"), "old contents")
      fs.writeFileSync(path("old2"), "old contents")
      fs.writeFileSync(path("empty"), "")
      const [copied, missing, exists, overwritten, empty] = yield* Effect.all([
        run(["backup", path("src"), path("copy")]),
        run(["backup", path("nothing"), path("x")]),
        run(["backup", path("src"), path("old")]),
        run(["backup", "--overwrite", path("src"), path("old2")]),
        run(["backup", path("empty"), path("empty-copy")])
      ], { concurrency: "unbounded" })

      assert.strictEqual(copied.code, 0, copied.stderr)
      // Lines once the size is known; the last one at 100%, with no time left.
      assert.notInclude(copied.stdout, " 0 B / 0 B ")
      assert.match(copied.stdout, /^backup: [a-z]+ {2}[\d.]+ (B|KiB|MiB) \/ 3\.00 MiB {2}\d+%/)
      assert.match(copied.stdout, /(^|\n)backup: concluded {2}3\.00 MiB \/ 3\.00 MiB {2}100% {2}(-|[\d.]+ \S+\/s)\n/)
      assert.match(copied.stdout, new RegExp(`backup: done, ${path("copy")} written \\(3\\.00 MiB copied in [\\d.]+ s, .+/s\\)\\n$`))
      assert.isTrue(same(path("src"), path("copy")))

      // An empty file: nothing to do, done at once, at 100%.
      assert.strictEqual(empty.code, 0, empty.stderr)
      assert.match(empty.stdout, /^backup: concluded {2}0 B \/ 0 B {2}100% {2}(-|[\d.]+ \S+\/s)\nbackup: done, /)

      assert.strictEqual(missing.code, 1)
      assert.strictEqual(missing.stderr, `effect-jobs: Source file '${path("nothing")}' does not exist\n`)
      assert.strictEqual(exists.code, 1)
      assert.strictEqual(exists.stderr, `effect-jobs: Target '${path("old")}' already exists (pass --overwrite to replace it)\n`)
      assert.strictEqual(fs.readFileSync(path("old"), "utf8"), "old contents")

      assert.strictEqual(overwritten.code, 0, overwritten.stderr)
      assert.isTrue(same(path("src"), path("old2")))
      assert.deepStrictEqual(entries(dir), ["copy", "empty", "empty-copy", "old", "old2", "src"])
    }).pipe(Effect.scoped))
})

describe("effect-jobs mirror", () => {
  it.live("a line on stdin completes it once READY: the target equals the source; SIGINT in READY leaves no target", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = (name: string) => join(dir, name)
      fs.writeFileSync(path("src"), bytes(2 * MiB + 5))

      const completed = yield* start(["mirror", path("src"), path("copy")], { stdin: "pipe" })
      completed.child.stdin!.write("\n") // a line; stdin stays open
      // stdin open, and nothing on it: nothing completes this one.
      const cancelled = yield* start(["mirror", path("src"), path("never")], { stdin: "pipe" })
      yield* cancelled.waitFor(/^mirror: READY, the target follows the source; send a line on stdin \(or close it\) to complete/)
      yield* cancelled.signal("SIGINT")

      const done = yield* completed.exited
      completed.child.stdin!.end()
      const interrupted = yield* cancelled.exited
      assert.strictEqual(done.code, 0, done.stderr)
      assert.include(done.stdout, "mirror: completing")
      assert.match(done.stdout, /mirror: done, .*copy written/)
      assert.isTrue(same(path("src"), path("copy")))
      assert.strictEqual(interrupted.code, 130, interrupted.stderr)
      assert.include(interrupted.stderr, `mirror: cancelled; ${path("never")} was left as it was`)
      assert.deepStrictEqual(entries(dir), ["copy", "src"])
    }).pipe(Effect.scoped))

  it.live("the end of stdin (</dev/null) completes it once READY: it finishes, exit 0, the target equals the source", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = (name: string) => join(dir, name)
      fs.writeFileSync(path("src"), bytes(2 * MiB + 5))
      const mirror = yield* start(["mirror", path("src"), path("copy")], { stdin: "ignore" }) // /dev/null
      const exited = yield* mirror.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.include(exited.stdout, "mirror: completing")
      assert.match(exited.stdout, /\nmirror: concluded {2}2\.00 MiB \/ 2\.00 MiB {2}100% .*\nmirror: done, .*copy written/)
      assert.isTrue(same(path("src"), path("copy")))
      assert.deepStrictEqual(entries(dir), ["copy", "src"])
    }).pipe(Effect.scoped))

  it.live("READY on a pipe: one line when it gets there, then nothing while it stands still", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = (name: string) => join(dir, name)
      fs.writeFileSync(path("src"), bytes(MiB))
      const mirror = yield* start(["mirror", path("src"), path("copy")], { stdin: "pipe" })
      yield* mirror.waitFor(/^mirror: ready {2}1\.00 MiB \/ 1\.00 MiB {2}100%/)
      // Saying nothing takes time to show: a few seconds of READY, sampled four times a second.
      yield* Effect.sleep("3 seconds")
      mirror.child.stdin!.end("\n")
      const exited = yield* mirror.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      const progressLines = exited.stdout.split("\n").filter((line) => /^mirror: [a-z]+ {2}/.test(line))
      assert.deepStrictEqual(
        progressLines.map((line) => line.split("  ")[0]).filter((status) => status === "mirror: ready"),
        ["mirror: ready"],
        exited.stdout
      )
      assert.isAtMost(progressLines.length, 3, exited.stdout) // running (if seen), ready, concluded
    }).pipe(Effect.scoped))
})
