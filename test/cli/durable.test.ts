/**
 * The durable server against crashes, as real processes: a server is killed
 * with SIGKILL (none of its own clean-up runs) and another one is started on
 * the same store at once. A backup paused when the server died comes back
 * paused and, resumed, writes its whole target; one PENDING comes back
 * PENDING and is put in place by `job-finalize`; one whose source is gone by
 * the restart fails as interrupted, its temporary copy removed and its target
 * as it was; a job that had concluded comes back as it was, and once
 * dismissed stays gone; event sequence numbers go on, and the HTTP event
 * stream replays what came before the crash. Also: a store another server
 * holds, a file that is not a database, a full disk under the store (on a
 * small tmpfs, where this machine lets the tests mount one), and `--store
 * memory`, which keeps nothing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Schedule } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import { join } from "node:path"
import { type WireClient, type WireMessage, wireClient } from "../qmp/harness.ts"
import { bytes, crash, entries, fetchJson, run, serve, start, tempDir } from "./harness.ts"

/** One QMP command in an `effect-jobs qmp` process of its own; its reply, parsed. */
const qmp = (socket: string, command: string, args?: object) =>
  Effect.map(run(["qmp", "--socket", socket, command, ...(args === undefined ? [] : [JSON.stringify(args)])]), (exited) => {
    if (exited.stdout === "") throw new Error(`qmp ${command} got no reply (exit ${exited.code}): ${exited.stderr}`)
    return JSON.parse(exited.stdout) as Record<string, unknown>
  })

/** A command sent by `client`, and its reply. */
const execute = (client: WireClient, command: string, args?: Readonly<Record<string, unknown>>) =>
  Effect.map(client.execute(command, args), (index) => client.messages[index]!)

const statusIs = (id: string, status: string) => (m: WireMessage): boolean =>
  m.event === "JOB_STATUS_CHANGE" && m.data?.id === id && m.data?.status === status

/** Waits for the event telling that job `id` has reached `status`. */
const awaitStatus = (client: WireClient, id: string, status: string) => client.awaitMessage(statusIs(id, status))

/** The temporary copies the file drivers left in `dir`. */
const temporaryCopies = (dir: string) => entries(dir).filter((name) => name.endsWith(".tmp"))

const interrupted = (status: string) => `interrupted: the server stopped while the job was ${status}`

/** Stops a server cleanly (SIGTERM) and checks that it exited with 0. */
const stop = (started: Effect.Success<ReturnType<typeof serve>>) =>
  Effect.gen(function*() {
    yield* started.server.signal("SIGTERM")
    const exited = yield* started.server.exited
    assert.strictEqual(exited.code, 0, exited.stderr)
  })

const httpUrl = (stdout: string): string => {
  const url = stdout.match(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/m)?.[1]
  if (url === undefined) throw new Error(`no HTTP API in:\n${stdout}`)
  return url
}

interface SseEvent {
  readonly id: number
  readonly event: string
  readonly data: Record<string, any>
}

/**
 * `GET url` as an event stream, with `headers`: its events (comments left
 * out), read until `enough` says so; then the connection is dropped.
 */
const readEvents = (
  url: string,
  headers: Record<string, string>,
  enough: (events: ReadonlyArray<SseEvent>) => boolean
) =>
  Effect.callback<ReadonlyArray<SseEvent>, Error>((resume) => {
    const events: Array<SseEvent> = []
    let pending = ""
    let done = false
    const finish = (result: Effect.Effect<ReadonlyArray<SseEvent>, Error>) => {
      if (done) return
      done = true
      req.destroy()
      resume(result)
    }
    const req = http.get(url, { headers, agent: false }, (res) => {
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        pending += chunk
        let end: number
        while ((end = pending.indexOf("\n\n")) !== -1) {
          const fields = new Map<string, string>()
          for (const line of pending.slice(0, end).split("\n")) {
            const colon = line.indexOf(":")
            if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trimStart())
          }
          pending = pending.slice(end + 2)
          if (fields.has("id")) {
            events.push({ id: Number(fields.get("id")), event: fields.get("event")!, data: JSON.parse(fields.get("data")!) })
          }
        }
        if (enough(events)) finish(Effect.succeed(events))
      })
      res.on("close", () => finish(Effect.fail(new Error(`the event stream ended; events: ${JSON.stringify(events)}`))))
    })
    req.on("error", (error) => finish(Effect.fail(error)))
    return Effect.sync(() => req.destroy())
  })

/** Mounting a tmpfs needs root, and a machine (or container) that allows it. */
const canMountTmpfs: boolean = (() => {
  if (process.getuid?.() !== 0) return false
  const probe = fs.mkdtempSync(join(os.tmpdir(), "ej-mount-"))
  try {
    if (spawnSync("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], { stdio: "ignore" }).status !== 0) return false
    spawnSync("umount", [probe], { stdio: "ignore" })
    return true
  } finally {
    fs.rmSync(probe, { recursive: true, force: true })
  }
})()

/** A tmpfs of `size` on a new directory in `dir`; unmounted with the scope (lazily: a killed server may still hold it). */
const smallDisk = (dir: string, size: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const mountPoint = join(dir, "disk")
      fs.mkdirSync(mountPoint)
      const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mountPoint], { encoding: "utf8" })
      if (mounted.status !== 0) throw new Error(`mount failed: ${mounted.stderr}`)
      return mountPoint
    }),
    (mountPoint) =>
      Effect.sync(() => {
        spawnSync("umount", ["-l", mountPoint], { stdio: "ignore" })
      })
  )

/** Writes zeros to `path` until the file system is full. */
const fillUp = (path: string): void => {
  const fd = fs.openSync(path, "w")
  const block = Buffer.alloc(4096)
  try {
    while (true) fs.writeSync(fd, block)
  } catch (error) {
    if ((error as { readonly code?: unknown }).code !== "ENOSPC") throw error
  } finally {
    fs.closeSync(fd)
  }
}

/** Tries `check` every 50 ms until it succeeds, for about `seconds`. */
const eventually = <A, E>(check: Effect.Effect<A, E>, seconds = 15) =>
  Effect.retry(check, { schedule: Schedule.spaced("50 millis"), times: seconds * 20 })

/** `query-jobs` over `client`. */
const queryJobs = (client: WireClient) =>
  Effect.map(execute(client, "query-jobs"), (reply) => reply.return as Array<Record<string, unknown>>)

/** Polls `query-jobs` until job `id` has `status` (for at most 15 s); returns its row. */
const awaitRow = (client: WireClient, id: string, status: string) =>
  eventually(Effect.flatMap(queryJobs(client), (rows) => {
    const row = rows.find((r) => r.id === id)
    return row?.status === status ? Effect.succeed(row) : Effect.fail(new Error(`${id}: ${JSON.stringify(row)}`))
  }))

describe("effect-jobs serve with a store, killed and started again", () => {
  it.live("a mirror READY when the server was killed comes back, is READY again, and completes in sync with its changed source", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(join(dir, "src"), bytes(6_000_000, 5))
      const first = yield* serve(["--socket", join(dir, "a.sock")], { cwd: dir })
      const client = yield* wireClient({ path: first.unix! })
      const created = yield* execute(client, "mirror", { "job-id": "m1", source: "src", target: "dst", "auto-dismiss": false })
      assert.deepStrictEqual(created.return, {})
      yield* awaitStatus(client, "m1", "ready")
      yield* crash(first.server)

      // Changed while the server was down: the same file, new content.
      fs.appendFileSync(join(dir, "src"), Buffer.from("more data"))
      const second = yield* serve(["--socket", join(dir, "b.sock")], { cwd: dir })
      assert.match(second.server.stdout(), /^resumed m1 \(ready\)$/m)
      const again = yield* wireClient({ path: second.unix! })
      yield* awaitRow(again, "m1", "ready")
      assert.deepStrictEqual((yield* execute(again, "job-complete", { id: "m1" })).return, {})
      const done = yield* awaitRow(again, "m1", "concluded")
      assert.isUndefined(done.error)
      assert.isTrue(fs.readFileSync(join(dir, "dst")).equals(fs.readFileSync(join(dir, "src"))))
      assert.deepStrictEqual(temporaryCopies(dir), [])
      yield* stop(second)
    }).pipe(Effect.scoped), 40_000)

  it.live("--store that names no store is a usage error (exit 2), saying what it takes", () =>
    Effect.gen(function*() {
      for (const spec of ["bogus", "sqlite:", "mysql://db/jobs"]) {
        const refused = yield* run(["serve", "--store", spec])
        assert.strictEqual(refused.code, 2, refused.stderr)
        assert.include(refused.stderr, `Expected: sqlite:PATH, postgres://… or memory, not '${spec}'`)
      }
    }))

  it.live("a backup killed mid-copy goes on from its checkpoint after the restart; the target is byte-identical", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const MiB = 1024 * 1024
      // Over the first checkpoint (64 MiB, once its fsync is done), slowed down so the kill comes mid-copy.
      const size = 160 * MiB
      fs.writeFileSync(join(dir, "src"), bytes(size, 3))
      const first = yield* serve(["--socket", join(dir, "a.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
      const url = httpUrl(first.server.stdout())
      const client = yield* wireClient({ path: first.unix! })
      const created = yield* execute(client, "backup", {
        "job-id": "b1",
        source: "src",
        target: "dst",
        speed: 64 * MiB,
        "auto-dismiss": false
      })
      assert.deepStrictEqual(created.return, {})
      yield* eventually(Effect.flatMap(fetchJson(`${url}/api/jobs/b1`), (row) =>
        row.json.currentProgress >= 100 * MiB ? Effect.void : Effect.fail("not far enough yet" as const)))
      yield* crash(first.server)
      assert.isFalse(fs.existsSync(join(dir, "dst")))

      const second = yield* serve(["--socket", join(dir, "b.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
      assert.match(second.server.stdout(), /^resumed b1 \(running\)$/m)
      // It reports at once what its checkpoint covers: it did not start again from the beginning.
      const resumedAt = (yield* fetchJson(`${httpUrl(second.server.stdout())}/api/jobs/b1`)).json.currentProgress as number
      assert.isAtLeast(resumedAt, 64 * MiB)
      const again = yield* wireClient({ path: second.unix! })
      assert.deepStrictEqual((yield* execute(again, "block-job-set-speed", { device: "b1", speed: 0 })).return, {})
      const done = yield* awaitRow(again, "b1", "concluded")
      assert.isUndefined(done.error)
      assert.isTrue(fs.readFileSync(join(dir, "dst")).equals(fs.readFileSync(join(dir, "src"))))
      assert.deepStrictEqual(temporaryCopies(dir), [])
      yield* stop(second)
    }).pipe(Effect.scoped), 40_000)

  it.live("a backup paused when the server was killed comes back paused; resumed, it writes its whole target", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      // Not a directory the server sweeps at start: the resumed job's own driver deals with what is there.
      const out = join(dir, "out")
      fs.mkdirSync(out)
      const data = bytes(4_000_000, 1)
      fs.writeFileSync(join(dir, "src"), data)
      fs.writeFileSync(join(out, "dst"), bytes(10_000, 2))

      const first = yield* serve(["--socket", join(dir, "a.sock")], { cwd: dir })
      const client = yield* wireClient({ path: first.unix! })
      const created = yield* execute(client, "backup", {
        "job-id": "b1",
        source: "src",
        target: "out/dst",
        overwrite: true,
        speed: 262_144,
        "auto-dismiss": false
      })
      assert.deepStrictEqual(created.return, {})
      yield* awaitStatus(client, "b1", "running")
      assert.deepStrictEqual((yield* execute(client, "job-pause", { id: "b1" })).return, {})
      yield* awaitStatus(client, "b1", "paused")
      const deadCopy = `.effect-jobs-${first.server.child.pid}-`
      assert.lengthOf(temporaryCopies(out).filter((name) => name.includes(deadCopy)), 1)

      yield* crash(first.server)
      assert.lengthOf(temporaryCopies(out).filter((name) => name.includes(deadCopy)), 1) // nothing cleaned up

      const second = yield* serve(["--socket", join(dir, "b.sock")], { cwd: dir })
      assert.match(second.server.stdout(), /^resumed b1 \(paused\)$/m)
      const again = yield* wireClient({ path: second.unix! })
      // It runs again from RUNNING and parks at its first pause point: the user's pause is kept.
      yield* awaitRow(again, "b1", "paused")
      assert.deepStrictEqual(temporaryCopies(out).filter((name) => name.includes(deadCopy)), [])

      assert.deepStrictEqual((yield* execute(again, "block-job-set-speed", { device: "b1", speed: 0 })).return, {})
      assert.deepStrictEqual((yield* execute(again, "job-resume", { id: "b1" })).return, {})
      const done = yield* awaitRow(again, "b1", "concluded")
      assert.deepStrictEqual(done, {
        id: "b1",
        type: "backup",
        status: "concluded",
        "current-progress": 4_000_000,
        "total-progress": 4_000_000
      })
      assert.deepStrictEqual(entries(out), ["dst"])
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(out, "dst"))), data)
      yield* stop(second)
    }).pipe(Effect.scoped))

  it.live("a backup PENDING (auto-finalize false) when the server was killed comes back PENDING; job-finalize puts it in place", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = bytes(300_000, 3)
      fs.writeFileSync(join(dir, "src"), data)
      const first = yield* serve(["--socket", join(dir, "a.sock")], { cwd: dir })
      const client = yield* wireClient({ path: first.unix! })
      const created = yield* execute(client, "backup", {
        "job-id": "b2",
        source: "src",
        target: "dst",
        "auto-finalize": false,
        "auto-dismiss": false
      })
      assert.deepStrictEqual(created.return, {})
      yield* awaitStatus(client, "b2", "pending")
      assert.lengthOf(temporaryCopies(dir), 1) // the whole copy, waiting for its finalization

      yield* crash(first.server)

      const second = yield* serve(["--socket", join(dir, "b.sock")], { cwd: dir })
      assert.match(second.server.stdout(), /^resumed b2 \(pending\)$/m)
      assert.deepStrictEqual(yield* qmp(second.unix!, "query-jobs"), {
        return: [{ id: "b2", type: "backup", status: "pending", "current-progress": 300_000, "total-progress": 300_000 }]
      })
      assert.isFalse(fs.existsSync(join(dir, "dst")))

      const again = yield* wireClient({ path: second.unix! })
      assert.deepStrictEqual((yield* execute(again, "job-finalize", { id: "b2" })).return, {})
      assert.deepStrictEqual(yield* awaitRow(again, "b2", "concluded"), {
        id: "b2",
        type: "backup",
        status: "concluded",
        "current-progress": 300_000,
        "total-progress": 300_000
      })
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(dir, "dst"))), data)
      assert.deepStrictEqual(temporaryCopies(dir), [])
      assert.deepStrictEqual((yield* execute(again, "job-dismiss", { id: "b2" })).return, {})
      assert.deepStrictEqual(yield* queryJobs(again), [])
      yield* stop(second)
    }).pipe(Effect.scoped))

  it.live("jobs CONCLUDED before the kill come back as they were; one dismissed after a restart stays gone after the next", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = bytes(200_000, 4)
      fs.writeFileSync(join(dir, "src"), data)
      const first = yield* serve(["--socket", join(dir, "a.sock")], { cwd: dir })
      const client = yield* wireClient({ path: first.unix! })
      // One that succeeded, and one cancelled while it copied (an error of its own).
      yield* execute(client, "backup", { "job-id": "ok", source: "src", target: "dst-ok", "auto-dismiss": false })
      yield* awaitStatus(client, "ok", "concluded")
      yield* execute(client, "backup", {
        "job-id": "cancelled",
        source: "src",
        target: "dst-cancelled",
        speed: 65_536,
        "auto-dismiss": false
      })
      yield* awaitStatus(client, "cancelled", "running")
      assert.deepStrictEqual((yield* execute(client, "job-cancel", { id: "cancelled" })).return, {})
      yield* awaitStatus(client, "cancelled", "concluded")
      const before = yield* queryJobs(client)
      assert.deepStrictEqual(before.map((job) => [job.id, job.status, job.error]), [
        ["ok", "concluded", undefined],
        ["cancelled", "concluded", "Operation canceled"]
      ])

      yield* crash(first.server)

      const second = yield* serve(["--socket", join(dir, "b.sock")], { cwd: dir })
      assert.match(second.server.stdout(), /^kept 2 concluded job\(s\): ok, cancelled$/m)
      assert.notMatch(second.server.stdout(), /^(failed|resumed) /m)
      assert.deepStrictEqual(yield* qmp(second.unix!, "query-jobs"), { return: before })
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(dir, "dst-ok"))), data)
      assert.isFalse(fs.existsSync(join(dir, "dst-cancelled")))
      // The reply comes once the dismissal is stored: a kill right after it cannot bring the job back.
      const again = yield* wireClient({ path: second.unix! })
      assert.deepStrictEqual((yield* execute(again, "job-dismiss", { id: "ok" })).return, {})

      yield* crash(second.server)

      const third = yield* serve(["--socket", join(dir, "c.sock")], { cwd: dir })
      assert.match(third.server.stdout(), /^kept 1 concluded job\(s\): cancelled$/m)
      assert.deepStrictEqual(yield* queryJobs(yield* wireClient({ path: third.unix! })), before.slice(1))
      yield* stop(third)
    }).pipe(Effect.scoped))

  it.live(
    "a paused backup whose source is gone by the restart fails as interrupted, its copy removed, its target untouched; the event stream goes on from Last-Event-ID",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        fs.writeFileSync(join(dir, "src"), bytes(4_000_000, 5))
        const old = bytes(10_000, 6)
        fs.writeFileSync(join(dir, "dst"), old)
        const first = yield* serve(["--socket", join(dir, "a.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
        const firstUrl = httpUrl(first.server.stdout())
        const client = yield* wireClient({ path: first.unix! })
        yield* execute(client, "backup", {
          "job-id": "b4",
          source: "src",
          target: "dst",
          overwrite: true,
          speed: 262_144,
          "auto-dismiss": false
        })
        yield* awaitStatus(client, "b4", "running")
        yield* execute(client, "job-pause", { id: "b4" })
        yield* awaitStatus(client, "b4", "paused")
        assert.lengthOf(temporaryCopies(dir), 1)
        const [paused] = yield* queryJobs(client)
        const last: number = (yield* fetchJson(`${firstUrl}/api/jobs`)).json.seq
        const beforeKill = yield* readEvents(`${firstUrl}/api/events?since=0`, {}, (events) => events.at(-1)?.id === last)
        assert.deepStrictEqual(beforeKill.map((e) => e.id), [1, 2, 3])
        assert.deepStrictEqual(beforeKill.map((e) => e.data.status), ["created", "running", "paused"])

        yield* crash(first.server)
        fs.rmSync(join(dir, "src"))

        const second = yield* serve(["--socket", join(dir, "b.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
        assert.match(second.server.stdout(), /^failed b4: interrupted while paused$/m)
        assert.deepStrictEqual(yield* qmp(second.unix!, "query-jobs"), {
          return: [{
            id: "b4",
            type: "backup",
            status: "concluded",
            "current-progress": paused!["current-progress"],
            "total-progress": 4_000_000,
            error: interrupted("paused")
          }]
        })
        assert.deepStrictEqual(temporaryCopies(dir), [])
        assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(dir, "dst"))), old)

        const secondUrl = httpUrl(second.server.stdout())
        const concluded = (events: ReadonlyArray<SseEvent>) => events.at(-1)?.data.status === "concluded"
        const resumed = yield* readEvents(`${secondUrl}/api/events`, { "last-event-id": String(last) }, concluded)
        // The recovery's events, right after the last one before the kill: none repeated, none skipped.
        assert.deepStrictEqual(resumed.map((e) => e.id), [last + 1, last + 2, last + 3, last + 4])
        assert.deepStrictEqual(resumed.map((e) => [e.event, e.data.id, e.data.status ?? e.data.error]), [
          ["StatusChange", "b4", "running"],
          ["StatusChange", "b4", "aborting"],
          ["Completed", "b4", interrupted("paused")],
          ["StatusChange", "b4", "concluded"]
        ])
        assert.strictEqual((yield* fetchJson(`${secondUrl}/api/jobs`)).json.seq, last + 4)
        // The killed server's events are still there to replay, as they were.
        const replayed = yield* readEvents(`${secondUrl}/api/events?since=0`, {}, (events) => events.at(-1)?.id === last + 4)
        assert.deepStrictEqual(replayed, [...beforeKill, ...resumed])
        yield* stop(second)
      }).pipe(Effect.scoped)
  )

  it.live("a second server on a store in use exits with 1 and names the first one's pid", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const store = `sqlite:${join(dir, "jobs.db")}`
      const first = yield* serve(["--socket", join(dir, "a.sock"), "--store", store], { cwd: dir })
      const second = yield* run(["serve", "--socket", join(dir, "b.sock"), "--store", store], { cwd: dir })
      assert.strictEqual(second.code, 1, second.stderr)
      assert.match(
        second.stderr,
        new RegExp(`^effect-jobs: The job store ${store} is in use by \\S+ \\(pid ${first.server.child.pid} on ${os.hostname()}\\) since `)
      )
      assert.strictEqual(second.stdout, "")
      assert.isFalse(fs.existsSync(join(dir, "b.sock")))
      assert.deepStrictEqual(yield* qmp(first.unix!, "query-jobs"), { return: [] }) // the first one goes on
      yield* stop(first)
    }).pipe(Effect.scoped))

  it.live("a store file that is not a database: exit 1, naming the file, which is left as it was", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const garbage = bytes(16_384, 6)
      fs.writeFileSync(join(dir, "x.db"), garbage)
      const exited = yield* run(["serve", "--socket", join(dir, "s.sock"), "--store", "sqlite:x.db"], { cwd: dir })
      assert.strictEqual(exited.code, 1, exited.stderr)
      assert.include(exited.stderr, `sqlite:${join(dir, "x.db")}`)
      assert.match(exited.stderr, /not a database/)
      assert.strictEqual(exited.stdout, "")
      assert.deepStrictEqual(new Uint8Array(fs.readFileSync(join(dir, "x.db"))), garbage)
      assert.deepStrictEqual(entries(dir), ["x.db"])
    }).pipe(Effect.scoped))

  it.live.skipIf(!canMountTmpfs)(
    "a full disk under the store: new jobs refused with a clear error, the running one goes on; accepted again once there is room",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const disk = yield* smallDisk(dir, "2m")
        fs.writeFileSync(join(dir, "src"), bytes(8_000_000, 7))
        const started = yield* serve(
          ["--socket", join(dir, "s.sock"), "--store", `sqlite:${join(disk, "jobs.db")}`, "--http", "127.0.0.1:0"],
          { cwd: dir }
        )
        const url = httpUrl(started.server.stdout())
        const client = yield* wireClient({ path: started.unix! })
        // Watchers, over QMP and over HTTP: they say so too.
        const watchers = [
          yield* start(["watch", "--socket", started.unix!]),
          yield* start(["watch", "--http", url])
        ]
        for (const watcher of watchers) yield* watcher.waitFor(/^watching /)
        yield* execute(client, "backup", { "job-id": "b1", source: "src", target: "dst", speed: 131_072 })
        yield* awaitStatus(client, "b1", "running")

        fillUp(join(disk, "filler"))
        // A change to store: the commit fails. (On a connection of its own: its reply waits for the store,
        // and a connection's commands are taken one after the other.)
        const other = yield* wireClient({ path: started.unix! })
        yield* Effect.forkScoped(execute(other, "block-job-set-speed", { device: "b1", speed: 262_144 }), {
          startImmediately: true
        })
        yield* started.server.waitFor(/effect-jobs: the job store cannot be written, new jobs are refused: .*disk is full/)
        // Clients are told too, with the store's reason.
        const unwritable = client.messages[yield* client.awaitMessage((m) => m.event === "STORE_UNWRITABLE")]!
        assert.match(String(unwritable.data?.error), /disk is full/)
        // A client that connects during the outage hears of it right after its negotiation.
        const late = yield* wireClient({ path: started.unix! })
        const lateNotice = late.messages[yield* late.awaitMessage((m) => m.event !== undefined)]!
        assert.strictEqual(lateNotice.event, "STORE_UNWRITABLE")

        // The running backup goes on copying.
        const progress = (yield* fetchJson(`${url}/api/jobs/b1`)).json.currentProgress as number
        yield* eventually(Effect.suspend(() =>
          Effect.flatMap(fetchJson(`${url}/api/jobs/b1`), (now) =>
            now.json.currentProgress > progress ? Effect.void : Effect.fail("no progress yet" as const))
        ))
        // New jobs, over QMP and over HTTP, while the disk is still full: the replies are refusals.
        const overQmp = yield* Effect.forkScoped(
          execute(client, "backup", { "job-id": "b2", source: "src", target: "dst2" }),
          { startImmediately: true }
        )
        const overHttp = yield* Effect.forkScoped(
          fetchJson(`${url}/api/jobs`, { method: "POST", body: { type: "backup", id: "b3", params: { source: "src", target: "dst3" } } }),
          { startImmediately: true }
        )
        const [qmpWhileFull, httpWhileFull] = yield* Effect.all([
          Effect.timeoutOption(Fiber.await(overQmp), "5 seconds"),
          Effect.timeoutOption(Fiber.await(overHttp), "5 seconds")
        ], { concurrency: "unbounded" })

        fs.rmSync(join(disk, "filler"))
        const refusedOverQmp = yield* Fiber.join(overQmp)
        assert.include(JSON.stringify(refusedOverQmp.error), "cannot be written")
        const refusedOverHttp = yield* Fiber.join(overHttp)
        assert.strictEqual(refusedOverHttp.status, 503)
        assert.include(refusedOverHttp.json.error.desc, "cannot be written")
        // Once a commit has gone through again (the writer retries with a growing delay), new jobs are accepted.
        yield* eventually(Effect.suspend(() =>
          Effect.flatMap(execute(client, "backup", { "job-id": "b4", source: "src", target: "dst4" }), (reply) =>
            "return" in reply ? Effect.void : Effect.fail(reply.error))
        ))
        for (const watcher of watchers) {
          yield* watcher.waitFor(/ the job store cannot be written: .*disk is full.*; new jobs are refused until it can$/)
          yield* watcher.waitFor(/ the job store can be written again \(after \d+(\.\d)? s\)$/)
        }
        const writable = client.messages[yield* client.awaitMessage((m) => m.event === "STORE_WRITABLE")]!
        assert.isAbove(Number(writable.data?.["unwritable-ms"]), 0)
        assert.strictEqual(client.messages.filter((m) => m.event === "STORE_UNWRITABLE").length, 1)
        const ids = (yield* queryJobs(client)).map((job) => job.id)
        assert.deepStrictEqual(ids.filter((id) => id !== "b4"), ["b1"]) // b4 may be done already
        assert.deepStrictEqual(
          { qmp: Option.isSome(qmpWhileFull), http: Option.isSome(httpWhileFull) },
          { qmp: true, http: true },
          "the refusals of new jobs came only once the disk had room again"
        )
        yield* stop(started)
      }).pipe(Effect.scoped),
    40_000
  )

  it.live("--store memory keeps nothing: after a kill and a restart there are no jobs", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(join(dir, "src"), bytes(100_000, 8))
      const first = yield* serve(["--socket", join(dir, "a.sock"), "--store", "memory"], { cwd: dir })
      assert.match(first.server.stdout(), /^jobs kept in memory \(nothing survives a restart\)$/m)
      const client = yield* wireClient({ path: first.unix! })
      yield* execute(client, "backup", { "job-id": "b8", source: "src", target: "dst", "auto-dismiss": false })
      yield* awaitStatus(client, "b8", "concluded")
      assert.deepStrictEqual((yield* queryJobs(client)).map((job) => job.id), ["b8"])

      yield* crash(first.server)

      const second = yield* serve(["--socket", join(dir, "b.sock"), "--store", "memory"], { cwd: dir })
      assert.deepStrictEqual(yield* qmp(second.unix!, "query-jobs"), { return: [] })
      assert.deepStrictEqual(entries(dir).filter((name) => name.includes(".db")), [])
      yield* stop(second)
    }).pipe(Effect.scoped))
})
