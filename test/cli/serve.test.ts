/**
 * `effect-jobs serve` and `effect-jobs qmp` as real processes: round trips
 * over a Unix socket and over TCP on 127.0.0.1, error replies (exit code 1),
 * each way of stopping the server (quit, SIGTERM, SIGINT, SIGHUP → exit code 0,
 * socket file removed; a connected client gets SHUTDOWN and the cancellation
 * of every job before its connection closes), and the recovery of a commit a
 * crash left half done.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { startSlowBackup, stoppedWhileB1Copies, wireClient, wireLabel } from "../qmp/harness.ts"
import { bytes, entries, node, run, serve, tempDir } from "./harness.ts"

const reply = (stdout: string): Record<string, unknown> => JSON.parse(stdout) as Record<string, unknown>

describe("effect-jobs serve + qmp", () => {
  it.live("over a Unix socket: replies as JSON, error replies exit 1, quit stops the server (exit 0, socket removed)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      const { server, unix } = yield* serve(["--socket", socket], { cwd: dir })
      assert.strictEqual(unix, socket)
      assert.include(server.stdout(), `\n  npx effect-jobs qmp --socket ${socket} query-jobs\n`)
      assert.include(server.stdout(), `socat - UNIX-CONNECT:${socket}`)
      assert.strictEqual((fs.statSync(socket).mode & 0o777).toString(8), "600")

      const [version, notFound, unknown, missing, jobs, second, float] = yield* Effect.all([
        run(["qmp", "--socket", socket, "query-version"]),
        run(["qmp", "--socket", socket, "job-pause", `{"id": "nope"}`]),
        run(["qmp", "--socket", socket, "no-such-command"]),
        run(["qmp", "--socket", socket, "job-pause", "{}"]),
        run(["qmp", "query-jobs"], { cwd: dir }), // the default socket is ./effect-jobs.sock: there is none
        run(["serve", "--socket", socket], { cwd: dir }),
        run(["qmp", "--socket", socket, "backup", `{"job-id": "f", "source": "s", "target": "t", "speed": 1.0}`])
      ], { concurrency: "unbounded" })

      assert.strictEqual(version.code, 0, version.stderr)
      assert.deepStrictEqual(reply(version.stdout), {
        return: { qemu: { major: 0, minor: 1, micro: 0 }, package: "effect-jobs" }
      })
      assert.strictEqual(notFound.code, 1)
      assert.deepStrictEqual(reply(notFound.stdout), { error: { class: "GenericError", desc: "Job not found" } })
      assert.strictEqual(notFound.stderr, "effect-jobs: GenericError: Job not found\n")
      assert.strictEqual(unknown.code, 1)
      assert.deepStrictEqual(reply(unknown.stdout), {
        error: { class: "CommandNotFound", desc: "The command no-such-command has not been found" }
      })
      assert.strictEqual(missing.code, 1)
      assert.deepStrictEqual(reply(missing.stdout), { error: { class: "GenericError", desc: "Parameter 'id' is missing" } })
      assert.strictEqual(jobs.code, 1)
      assert.strictEqual(jobs.stdout, "")
      assert.match(jobs.stderr, /^effect-jobs: cannot connect to unix:\.\/effect-jobs\.sock: no such socket file \(ENOENT\)/)
      assert.strictEqual(second.code, 1)
      // The second server finds the first one's job store (beside the socket) taken, and names the holder.
      assert.match(second.stderr, /The job store sqlite:\S*effect-jobs\.db is in use by \S+ \(pid \d+ on /)
      assert.strictEqual(second.stdout, "") // a server that never listened has no jobs to speak of

      // JSON-ARGS numbers go out as written: `1.0` is no integer to QMP, even if JavaScript reads it as 1.
      assert.strictEqual(float.code, 1)
      assert.deepStrictEqual(reply(float.stdout), {
        error: { class: "GenericError", desc: "Invalid parameter type for 'speed', expected: integer" }
      })

      const quit = yield* run(["qmp", "--socket", socket, "quit"])
      assert.strictEqual(quit.code, 0, quit.stderr)
      assert.deepStrictEqual(reply(quit.stdout), { return: {} })
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.match(exited.stdout, /shutting down \(quit\)\nno jobs to cancel\nstopped\n$/)
      assert.deepStrictEqual(entries(dir), ["effect-jobs.db"])
    }).pipe(Effect.scoped))

  it.live("over TCP on 127.0.0.1 (port 0: the server prints the one it got); SIGTERM cancels the running backup, exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { server, unix, tcp } = yield* serve(["--tcp", "127.0.0.1:0"], { cwd: dir })
      assert.isUndefined(unix) // --tcp alone: no socket
      assert.match(tcp!, /^127\.0\.0\.1:\d+$/)
      assert.notStrictEqual(tcp, "127.0.0.1:0")
      assert.include(server.stdout(), `socat - TCP:${tcp}`)

      const [jobs, refused] = yield* Effect.all([
        run(["qmp", "--tcp", tcp!, "query-jobs"]),
        run(["qmp", "--tcp", tcp!, "backup", `{"job-id": "b0", "source": "missing", "target": "out"}`])
      ], { concurrency: "unbounded" })
      assert.strictEqual(jobs.code, 0, jobs.stderr)
      assert.deepStrictEqual(reply(jobs.stdout), { return: [] })
      assert.strictEqual(refused.code, 1)
      assert.deepStrictEqual(reply(refused.stdout), {
        error: { class: "GenericError", desc: `Source file '${join(dir, "missing")}' does not exist` }
      })

      // A backup still copying (64 KiB/s) when SIGTERM arrives, and a client watching.
      fs.writeFileSync(join(dir, "src"), bytes(3_000_000))
      const [host, port] = [tcp!.slice(0, tcp!.lastIndexOf(":")), Number(tcp!.slice(tcp!.lastIndexOf(":") + 1))]
      const client = yield* wireClient({ host, port })
      const from = yield* startSlowBackup(client, "src", "dst")

      yield* server.signal("SIGTERM")
      yield* client.closed
      assert.deepStrictEqual(client.messages.slice(from).map(wireLabel), stoppedWhileB1Copies)
      assert.deepStrictEqual(client.messages[from]!.data, { guest: false, reason: "host-signal" })
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.match(exited.stdout, /shutting down \(signal\)\ncancelling 1 job: b1\nstopped\n$/)
      assert.deepStrictEqual(entries(dir), ["effect-jobs.db", "src"])
    }).pipe(Effect.scoped))

  it.live("at start it finishes a commit a crash left half done; SIGINT stops it with exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = [bytes(300_000, 1), bytes(200_000, 2)]
      fs.writeFileSync(join(dir, "src1"), data[0]!)
      fs.writeFileSync(join(dir, "src2"), data[1]!)
      // A transaction of two backups, killed between its two renames.
      const child = fileURLToPath(new URL("../drivers/fixtures/backupChild.ts", import.meta.url))
      yield* Effect.callback<void, Error>((resume) => {
        const proc = spawn(node, [child, "commit", ...["src1", "dst1", "src2", "dst2"].map((f) => join(dir, f))], {
          stdio: ["ignore", "pipe", "inherit"]
        })
        createInterface({ input: proc.stdout! }).once("line", () => proc.kill("SIGKILL"))
        proc.once("exit", (_code, signal) =>
          resume(signal === "SIGKILL" ? Effect.void : Effect.fail(new Error(`the crashing child exited by itself`))))
      })
      // Members commit newest first: dst2 is in place, dst1 is not yet.
      assert.isTrue(fs.existsSync(join(dir, "dst2")))
      assert.isFalse(fs.existsSync(join(dir, "dst1")))

      // The default journal directory is the current one.
      const { server } = yield* serve(["--socket", join(dir, "s.sock")], { cwd: dir })
      assert.match(server.stdout(), /^recovered the interrupted commit of .*\n {2}.*dst1: renamed into place\n/m)
      assert.deepStrictEqual(entries(dir), ["dst1", "dst2", "effect-jobs.db", "effect-jobs.db-shm", "effect-jobs.db-wal", "s.sock", "src1", "src2"])
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(dir, "dst1"))), data[0])

      yield* server.signal("SIGINT")
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.deepStrictEqual(entries(dir), ["dst1", "dst2", "effect-jobs.db", "src1", "src2"])
    }).pipe(Effect.scoped))

  it.live("SIGHUP stops it as SIGTERM does: the running backup cancelled, the socket removed, exit 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      fs.writeFileSync(join(dir, "src"), bytes(3_000_000))
      const { server } = yield* serve(["--socket", socket], { cwd: dir })
      const client = yield* wireClient({ path: socket })
      const from = yield* startSlowBackup(client, "src", "dst")

      yield* server.signal("SIGHUP")
      yield* client.closed
      assert.deepStrictEqual(client.messages.slice(from).map(wireLabel), stoppedWhileB1Copies)
      const exited = yield* server.exited
      assert.deepStrictEqual([exited.code, exited.signal], [0, null], exited.stderr)
      assert.match(exited.stdout, /shutting down \(signal\)\ncancelling 1 job: b1\nstopped\n$/)
      assert.deepStrictEqual(entries(dir), ["effect-jobs.db", "src"])
    }).pipe(Effect.scoped))

  it.live("a journal it cannot use in a --journal-dir is reported and set aside: the server starts, SIGINT exits 0", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const journals = join(dir, "journals")
      fs.mkdirSync(journals)
      // A journal of a dead process (the pid is above Linux's largest) that is not JSON.
      const garbage = join(journals, ".effect-jobs-4194399-j1.commit-journal")
      fs.writeFileSync(garbage, "{ not a journal", { mode: 0o600 })
      const { server } = yield* serve(["--socket", join(dir, "s.sock"), "--journal-dir", journals], { cwd: dir })
      assert.deepStrictEqual(entries(journals), [".effect-jobs-4194399-j1.commit-journal.rejected"])

      yield* server.signal("SIGINT")
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      assert.include(exited.stdout + exited.stderr, `Commit journal '${garbage}': it is not a valid commit journal`)
      assert.match(exited.stdout, /stopped\n$/)
    }).pipe(Effect.scoped))
})
