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
import { bytes, entries, run, serve, start, tempDir } from "./harness.ts"

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
      assert.deepStrictEqual(entries(dir), ["src"])
    }).pipe(Effect.scoped))
})
