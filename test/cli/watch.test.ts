/**
 * `effect-jobs watch` on a pipe (not a terminal): plain lines — one per event,
 * and the progress of running jobs — while a backup started with
 * `effect-jobs qmp` runs and is cancelled, for a watch started before the job
 * and one started while it runs; both end with exit code 0 when the server
 * shuts down.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { redrawFrom } from "../../src/cli/watch.ts"
import { bytes, entries, hasScript, run, serve, start, tempDir } from "./harness.ts"

const time = String.raw`\d\d:\d\d:\d\d`

describe("effect-jobs watch", () => {
  it.live("plain lines on a non-terminal: events as they come, progress of the running job, the end of the server", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      fs.writeFileSync(join(dir, "src"), bytes(4 * 1024 * 1024))
      const { server } = yield* serve(["--socket", socket], { cwd: dir })
      const watch = yield* start(["watch", "--socket", socket])
      yield* watch.waitFor(/^watching unix:.*s\.sock: 0 jobs$/)

      // 256 KiB/s: 16 seconds for the whole copy; it is cancelled long before.
      const started = yield* run([
        "qmp",
        "--socket",
        socket,
        "backup",
        JSON.stringify({ "job-id": "b0", source: "src", target: "dst", speed: 256 * 1024 })
      ])
      assert.strictEqual(started.code, 0, started.stderr)
      yield* watch.waitFor(new RegExp(`^${time} b0 backup running {2}[\\d.]+ (KiB|MiB) / 4\\.00 MiB {2}\\d+% .* limit 256 KiB/s$`))

      // A watch started later lists the job it finds, then follows it.
      const late = yield* start(["watch", "--socket", socket])
      yield* late.waitFor(/^watching unix:.*s\.sock: 1 job$/)
      yield* late.waitFor(new RegExp(`^${time} b0 running$`))

      const cancelled = yield* run(["qmp", "--socket", socket, "job-cancel", `{"id": "b0"}`])
      assert.strictEqual(cancelled.code, 0, cancelled.stderr)
      yield* watch.waitFor(new RegExp(`^${time} b0 null$`))

      const quit = yield* run(["qmp", "--socket", socket, "quit"])
      assert.strictEqual(quit.code, 0, quit.stderr)
      const exited = yield* watch.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.strictEqual((yield* server.exited).code, 0)
      const lateExited = yield* late.exited
      assert.strictEqual(lateExited.code, 0, lateExited.stderr)
      assert.match(lateExited.stdout, new RegExp(`\n${time} b0 aborting\n(.*\n)*${time} b0 null\n(.*\n)*the server shut down\n$`))

      const lines = exited.stdout.split("\n")
      const events = lines.filter((line) => new RegExp(`^${time} (b0 \\S+|server .*)$`).test(line)).map((line) => line.slice(9))
      assert.deepStrictEqual(events, [
        "b0 created",
        "b0 running",
        "b0 aborting",
        "b0 BLOCK_JOB_CANCELLED",
        "b0 concluded",
        "b0 null",
        "server shutting down (host-qmp-quit)"
      ])
      assert.strictEqual(lines.at(-2), "the server shut down")
      assert.notInclude(exited.stdout, "\x1b")
      assert.deepStrictEqual(entries(dir), ["effect-jobs.db", "src"])
    }).pipe(Effect.scoped))

  it.live.skipIf(!hasScript)("on a terminal: the table redrawn in place; after quit the last table shows the jobs' end", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      fs.writeFileSync(join(dir, "src"), bytes(4 * 1024 * 1024))
      const { server } = yield* serve(["--socket", socket], { cwd: dir })
      const started = yield* run([
        "qmp",
        "--socket",
        socket,
        "backup",
        JSON.stringify({ "job-id": "b0", source: "src", target: "dst", speed: 64 * 1024 })
      ])
      assert.strictEqual(started.code, 0, started.stderr)
      const watch = yield* start(["watch", "--socket", socket], { terminal: { columns: 100 } })
      yield* watch.waitFor(/^b0 +backup +running +\[/)
      const quit = yield* run(["qmp", "--socket", socket, "quit"])
      assert.strictEqual(quit.code, 0, quit.stderr)
      const exited = yield* watch.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.strictEqual((yield* server.exited).code, 0)

      const screen = exited.stdout.replaceAll("\r\n", "\n")
      assert.include(screen, "\x1b[J") // redrawn in place
      // The last table: what follows the last redraw.
      const last = screen.slice(screen.lastIndexOf("\x1b[J") + 3)
      assert.notInclude(last, "running", last)
      assert.match(last, /^effect-jobs watch {2}unix:.*s\.sock {2}\d\d:\d\d:\d\d {2}0 jobs /, last)
      assert.match(last, /\n\(no jobs\)\n\nlast event: \d\d:\d\d:\d\d b0 null\nthe server shut down\n$/, last)
      assert.deepStrictEqual(entries(dir), ["effect-jobs.db", "src"])
    }).pipe(Effect.scoped))
})

describe("redrawFrom", () => {
  it("below the last table; after a resize, from the top of a cleared screen (rewrapped lines leave nothing behind)", () => {
    assert.strictEqual(redrawFrom(undefined, 100), "\x1b[J")
    assert.strictEqual(redrawFrom({ lines: 6, columns: 100 }, 100), "\x1b[6A\r\x1b[J")
    assert.strictEqual(redrawFrom({ lines: 6, columns: 100 }, 60), "\x1b[H\x1b[2J")
    assert.strictEqual(redrawFrom({ lines: 6, columns: 60 }, 100), "\x1b[H\x1b[2J")
  })
})
