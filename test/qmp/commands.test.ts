/**
 * Every command end to end, over a real Unix socket and a real TCP socket:
 * what it does when it succeeds, and each error it can give (the engine's texts
 * for the job verbs; DeviceNotActive for block-job lookups; the creation
 * checks of backup, mirror and transaction). Jobs are the backup/mirror
 * stand-ins and the test driver, stepped with the TestClock.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { TestClock } from "effect/testing"
import * as net from "node:net"
import { Jobs } from "../../src/Jobs.ts"
import type { QmpClient, Reply } from "../../src/Qmp.ts"

import { type Harness, layer, startServer, type Transport } from "./harness.ts"
import * as StandIn from "./standIn.ts"

const generic = (desc: string): Reply => ({ error: { class: "GenericError", desc } })
const notActive = (id: string): Reply => ({ error: { class: "DeviceNotActive", desc: `Block job '${id}' not found` } })

const call = (c: QmpClient, execute: string, args?: Record<string, unknown>) =>
  c.request(args === undefined ? { execute } : { execute, arguments: args })

const status = (c: QmpClient, id: string, s: string, times = 1) =>
  Effect.suspend(() => {
    let seen = 0
    return c.awaitEvent((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === s && ++seen >= times)
  })

const event = (c: QmpClient, name: string, device: string) =>
  c.awaitEvent((e) => e.event === name && (e.data?.device === device || e.data?.id === device))

const copyAll = TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)

const job = (id: string, extra: Record<string, unknown> = {}) => ({ "job-id": id, source: `src-${id}`, target: `dst-${id}`, ...extra })

const transports: ReadonlyArray<Transport> = ["unix", "tcp"]

for (const transport of transports) {
  describe(`QMP commands over ${transport}`, () => {
    const run = <A, E>(name: string, body: (c: QmpClient, h: Harness) => Effect.Effect<A, E, Scope.Scope | Jobs>) =>
      it.effect(name, () =>
        Effect.gen(function*() {
          const h = yield* startServer()
          const c: QmpClient = yield* h.client(transport)
          return yield* body(c, h)
        }).pipe(Effect.scoped, Effect.provide(layer)))

    run("query-jobs: JobInfo of every job with an id, error included once there is one", (c) =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        yield* jobs.run({ type: "test", id: "t", params: { iterations: 2, wait: "yield" } })
        yield* jobs.run({ type: "test", internal: true, params: { iterations: 2, wait: "yield" } })
        assert.deepStrictEqual(yield* c.execute("backup", job("b")), {})
        yield* c.execute("backup", job("f", { target: "fail-f", "auto-dismiss": false }))
        yield* TestClock.adjust(StandIn.chunkMillis)
        yield* status(c, "f", "concluded")
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [
          { id: "t", type: "test", status: "running", "current-progress": 0, "total-progress": 2 },
          { id: "b", type: "backup", status: "running", "current-progress": StandIn.chunkBytes, "total-progress": StandIn.totalBytes },
          {
            id: "f",
            type: "backup",
            status: "concluded",
            "current-progress": StandIn.chunkBytes,
            "total-progress": StandIn.totalBytes,
            error: "Could not write 'fail-f': No space left on device"
          }
        ])
      }))

    run("query-block-jobs: BlockJobInfo of the block jobs only", (c) =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* jobs.run({ type: "test", id: "t", params: { iterations: 2, wait: "yield" } })
        yield* c.execute("backup", job("b", { speed: 5_000_000, "auto-finalize": false }))
        yield* c.execute("mirror", job("m"))
        yield* c.execute("job-pause", { id: "m" })
        yield* status(c, "m", "paused")
        assert.deepStrictEqual(yield* c.execute("query-block-jobs"), [
          {
            type: "backup",
            device: "b",
            len: StandIn.totalBytes,
            offset: 0,
            busy: false,
            paused: false,
            speed: 5_000_000,
            "io-status": "ok",
            ready: false,
            status: "running",
            "auto-finalize": false,
            "auto-dismiss": true
          },
          {
            type: "mirror",
            device: "m",
            len: StandIn.totalBytes,
            offset: 0,
            busy: false,
            paused: true,
            speed: 0,
            "io-status": "ok",
            ready: false,
            status: "paused",
            "auto-finalize": true,
            "auto-dismiss": true
          }
        ])
        yield* c.execute("job-resume", { id: "m" })
        yield* copyAll
        yield* status(c, "m", "ready")
        const [, mirror] = (yield* c.execute("query-block-jobs")) as Array<Record<string, unknown>>
        assert.strictEqual(mirror!.ready, true)
        assert.strictEqual(mirror!.offset, StandIn.totalBytes)
      }))

    run("query-version and query-commands", (c) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* c.execute("query-version"), c.greeting.QMP && (c.greeting.QMP as { version: unknown }).version)
        assert.isAbove(((yield* c.execute("query-commands")) as Array<unknown>).length, 20)
      }))

    run("job-pause / job-resume: pause at the next pause point, resume; QEMU's refusals", (c) =>
      Effect.gen(function*() {
        yield* c.execute("backup", job("j"))
        assert.deepStrictEqual(yield* call(c, "job-pause", { id: "nope" }), generic("Job not found"))
        assert.deepStrictEqual(yield* call(c, "job-resume", { id: "j" }), generic("Can't resume a job that was not paused"))
        assert.deepStrictEqual(yield* c.execute("job-pause", { id: "j" }), {})
        yield* status(c, "j", "paused")
        assert.deepStrictEqual(yield* call(c, "job-pause", { id: "j" }), generic("Job is already paused"))
        assert.deepStrictEqual(yield* c.execute("job-resume", { id: "j" }), {})
        yield* status(c, "j", "running", 2)
        assert.deepStrictEqual(yield* call(c, "job-resume", { id: "j" }), generic("Can't resume a job that was not paused"))
      }))

    run("job-cancel: always a hard cancel (even of a READY mirror); the verb table", (c) =>
      Effect.gen(function*() {
        yield* c.execute("mirror", job("m", { "auto-dismiss": false }))
        yield* copyAll
        yield* status(c, "m", "ready")
        assert.deepStrictEqual(yield* call(c, "job-cancel", { id: "nope" }), generic("Job not found"))
        assert.deepStrictEqual(yield* c.execute("job-cancel", { id: "m" }), {})
        yield* event(c, "BLOCK_JOB_CANCELLED", "m")
        yield* status(c, "m", "concluded")
        assert.deepStrictEqual(
          yield* call(c, "job-cancel", { id: "m" }),
          generic("Job 'm' in state 'concluded' cannot accept command verb 'cancel'")
        )
        assert.deepStrictEqual(yield* c.execute("job-dismiss", { id: "m" }), {})
        assert.deepStrictEqual(yield* call(c, "job-dismiss", { id: "m" }), generic("Job not found"))
      }))

    run("job-complete: READY jobs only; a driver that cannot complete", (c) =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* c.execute("mirror", job("m"))
        assert.deepStrictEqual(
          yield* call(c, "job-complete", { id: "m" }),
          generic("Job 'm' in state 'running' cannot accept command verb 'complete'")
        )
        yield* copyAll
        yield* status(c, "m", "ready")
        assert.deepStrictEqual(yield* c.execute("job-complete", { id: "m" }), {})
        yield* status(c, "m", "null")
        yield* jobs.run({ type: "test", id: "t", params: { iterations: 0, wait: "yield", converge: true, completable: false } })
        yield* status(c, "t", "ready")
        assert.deepStrictEqual(yield* call(c, "job-complete", { id: "t" }), generic("The active block job 't' cannot be completed"))
        assert.deepStrictEqual(yield* call(c, "job-complete", { id: "nope" }), generic("Job not found"))
      }))

    run("job-finalize / job-dismiss: the whole transaction; the verb table", (c) =>
      Effect.gen(function*() {
        yield* c.execute("transaction", {
          actions: [
            { type: "backup", data: job("a", { "auto-finalize": false, "auto-dismiss": false }) },
            { type: "backup", data: job("b", { "auto-dismiss": false }) }
          ],
          properties: { "completion-mode": "grouped" }
        })
        assert.deepStrictEqual(
          yield* call(c, "job-finalize", { id: "b" }),
          generic("Job 'b' in state 'running' cannot accept command verb 'finalize'")
        )
        yield* copyAll
        yield* status(c, "a", "pending")
        yield* status(c, "b", "pending")
        assert.deepStrictEqual(yield* call(c, "job-finalize", { id: "nope" }), generic("Job not found"))
        // One finalize, on any member, finalizes the transaction.
        assert.deepStrictEqual(yield* c.execute("job-finalize", { id: "b" }), {})
        yield* status(c, "a", "concluded")
        yield* status(c, "b", "concluded")
        assert.deepStrictEqual(yield* c.execute("job-dismiss", { id: "a" }), {})
        assert.deepStrictEqual(yield* c.execute("job-dismiss", { id: "b" }), {})
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
      }))

    run("block-job-*: DeviceNotActive for unknown ids and for jobs that are not block jobs", (c) =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* jobs.run({ type: "test", id: "t", params: { iterations: 2, wait: "yield" } })
        for (const id of ["nope", "t"]) {
          assert.deepStrictEqual(yield* call(c, "block-job-pause", { device: id }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-resume", { device: id }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-cancel", { device: id }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-complete", { device: id }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-set-speed", { device: id, speed: -1 }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-finalize", { id }), notActive(id))
          assert.deepStrictEqual(yield* call(c, "block-job-dismiss", { id }), notActive(id))
        }
        // job-* commands do see it.
        assert.deepStrictEqual(yield* c.execute("job-pause", { id: "t" }), {})
      }))

    run("block-job-pause / -resume / -complete / -finalize / -dismiss", (c) =>
      Effect.gen(function*() {
        yield* c.execute("mirror", job("m", { "auto-finalize": false, "auto-dismiss": false }))
        yield* copyAll
        yield* status(c, "m", "ready")
        assert.deepStrictEqual(yield* c.execute("block-job-pause", { device: "m" }), {})
        yield* status(c, "m", "standby")
        assert.deepStrictEqual(yield* call(c, "block-job-pause", { device: "m" }), generic("Job is already paused"))
        assert.deepStrictEqual(yield* c.execute("block-job-resume", { device: "m" }), {})
        yield* status(c, "m", "ready", 2)
        assert.deepStrictEqual(yield* call(c, "block-job-resume", { device: "m" }), generic("Can't resume a job that was not paused"))
        assert.deepStrictEqual(
          yield* call(c, "block-job-finalize", { id: "m" }),
          generic("Job 'm' in state 'ready' cannot accept command verb 'finalize'")
        )
        assert.deepStrictEqual(yield* c.execute("block-job-complete", { device: "m" }), {})
        yield* event(c, "BLOCK_JOB_PENDING", "m")
        assert.deepStrictEqual(
          yield* call(c, "block-job-dismiss", { id: "m" }),
          generic("Job 'm' in state 'pending' cannot accept command verb 'dismiss'")
        )
        assert.deepStrictEqual(yield* c.execute("block-job-finalize", { id: "m" }), {})
        yield* status(c, "m", "concluded")
        assert.deepStrictEqual(yield* c.execute("block-job-dismiss", { id: "m" }), {})
        yield* status(c, "m", "null")
        assert.deepStrictEqual(yield* call(c, "block-job-dismiss", { id: "m" }), notActive("m"))
      }))

    run("block-job-cancel: soft by default; refused while user-paused unless forced", (c) =>
      Effect.gen(function*() {
        yield* c.execute("mirror", job("m"))
        yield* copyAll
        yield* status(c, "m", "ready")
        yield* c.execute("block-job-pause", { device: "m" })
        yield* status(c, "m", "standby")
        assert.deepStrictEqual(
          yield* call(c, "block-job-cancel", { device: "m" }),
          generic("The block job for device 'm' is currently paused")
        )
        assert.deepStrictEqual(
          yield* call(c, "block-job-cancel", { device: "m", force: false }),
          generic("The block job for device 'm' is currently paused")
        )
        yield* c.execute("block-job-resume", { device: "m" })
        // Soft: the READY mirror completes (no error).
        assert.deepStrictEqual(yield* c.execute("block-job-cancel", { device: "m" }), {})
        const done = yield* event(c, "BLOCK_JOB_COMPLETED", "m")
        assert.notProperty(done.data, "error")
        // Forced, even while paused: hard.
        yield* c.execute("backup", job("b"))
        yield* c.execute("block-job-pause", { device: "b" })
        yield* status(c, "b", "paused")
        assert.deepStrictEqual(yield* c.execute("block-job-cancel", { device: "b", force: true }), {})
        yield* event(c, "BLOCK_JOB_CANCELLED", "b")
        yield* status(c, "b", "null")
      }))

    run("block-job-set-speed: recorded and reported; negative speed refused after the lookup and verb checks", (c) =>
      Effect.gen(function*() {
        yield* c.execute("backup", job("b", { "auto-dismiss": false }))
        assert.deepStrictEqual(
          yield* call(c, "block-job-set-speed", { device: "b", speed: -1 }),
          generic("Parameter 'speed' expects a non-negative value")
        )
        assert.deepStrictEqual(yield* c.execute("block-job-set-speed", { device: "b", speed: 1 }), {})
        const [info] = (yield* c.execute("query-block-jobs")) as Array<Record<string, unknown>>
        assert.strictEqual(info!.speed, 1)
        // At 1 B/s nothing moves; unlimited again, the copy finishes.
        yield* copyAll
        assert.deepStrictEqual(yield* c.execute("block-job-set-speed", { device: "b", speed: 0 }), {})
        yield* copyAll
        const completed = yield* event(c, "BLOCK_JOB_COMPLETED", "b")
        assert.strictEqual(completed.data?.speed, 0)
        yield* status(c, "b", "concluded")
        assert.deepStrictEqual(
          yield* call(c, "block-job-set-speed", { device: "b", speed: -1 }),
          generic("Job 'b' in state 'concluded' cannot accept command verb 'set-speed'")
        )
      }))

    run("backup / mirror: QEMU's id checks, the speed check, a failing set-up", (c) =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* call(c, "backup", job("1st")), generic("Invalid job ID '1st'"))
        assert.deepStrictEqual(yield* call(c, "mirror", job("a b")), generic("Invalid job ID 'a b'"))
        assert.deepStrictEqual(yield* call(c, "backup", job("neg", { speed: -1 })), generic("Parameter 'speed' expects a non-negative value"))
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        yield* c.execute("backup", job("j"))
        assert.deepStrictEqual(yield* call(c, "mirror", job("j")), generic("Job ID 'j' already in use"))
        // The driver refuses to set the job up: created, then at once gone (QEMU's early fail).
        assert.deepStrictEqual(
          yield* call(c, "backup", job("x", { source: "missing-file" })),
          generic("Could not open 'missing-file': No such file or directory")
        )
        yield* status(c, "x", "null")
        assert.deepStrictEqual(
          c.events.filter((e) => e.data?.id === "x").map((e) => e.data?.status),
          ["created", "null"]
        )
        assert.deepStrictEqual(((yield* c.execute("query-jobs")) as Array<{ id: string }>).map((r) => r.id), ["j"])
      }))

    run("transaction: all or nothing", (c) =>
      Effect.gen(function*() {
        const tx = (actions: ReadonlyArray<unknown>, grouped = true) =>
          call(c, "transaction", { actions, ...(grouped ? { properties: { "completion-mode": "grouped" } } : {}) })
        assert.deepStrictEqual(yield* tx([]), { return: {} })
        // Refused before anything is created.
        assert.deepStrictEqual(
          yield* tx([{ type: "backup", data: job("a") }, { type: "mirror", data: job("a") }]),
          generic("Job ID 'a' already in use")
        )
        assert.deepStrictEqual(
          yield* tx([{ type: "backup", data: job("a") }, { type: "mirror", data: job("-b") }]),
          generic("Invalid job ID '-b'")
        )
        assert.deepStrictEqual(
          yield* tx([{ type: "backup", data: job("a") }, { type: "mirror", data: job("b", { speed: -5 }) }]),
          generic("Parameter 'speed' expects a non-negative value")
        )
        assert.deepStrictEqual(c.events, [])
        // A set-up failure after the first job was created: that job is removed before it runs.
        assert.deepStrictEqual(
          yield* tx([{ type: "backup", data: job("a", { "auto-dismiss": false }) }, { type: "backup", data: job("b", { source: "missing" }) }]),
          generic("Could not open 'missing': No such file or directory")
        )
        yield* status(c, "a", "null")
        yield* status(c, "b", "null")
        const statuses = (id: string) => c.events.filter((e) => e.data?.id === id).map((e) => e.data?.status)
        assert.deepStrictEqual(statuses("a"), ["created", "aborting", "concluded", "null"])
        assert.deepStrictEqual(statuses("b"), ["created", "null"])
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        // The same in a grouped transaction of three, the first two held for dismiss.
        assert.deepStrictEqual(
          yield* tx([
            { type: "backup", data: job("g1", { "auto-dismiss": false }) },
            { type: "mirror", data: job("g2", { "auto-dismiss": false, "auto-finalize": false }) },
            { type: "backup", data: job("g3", { source: "missing-3" }) }
          ]),
          generic("Could not open 'missing-3': No such file or directory")
        )
        for (const id of ["g1", "g2", "g3"]) yield* status(c, id, "null")
        assert.deepStrictEqual(statuses("g1"), ["created", "aborting", "concluded", "null"])
        assert.deepStrictEqual(statuses("g2"), ["created", "aborting", "concluded", "null"])
        assert.deepStrictEqual(statuses("g3"), ["created", "null"])
        assert.isFalse(c.events.some((e) => e.event.startsWith("BLOCK_JOB_")), "jobs that never ran send no BLOCK_JOB_* event")
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        // Individual jobs are torn down one by one, newest first (QEMU aborts a transaction's actions in reverse).
        const before = c.events.length
        assert.deepStrictEqual(
          yield* tx([
            { type: "backup", data: job("n1") },
            { type: "mirror", data: job("n2", { "auto-dismiss": false }) },
            { type: "backup", data: job("n3", { source: "missing-n3" }) }
          ], false),
          generic("Could not open 'missing-n3': No such file or directory")
        )
        yield* status(c, "n1", "null")
        assert.deepStrictEqual(c.events.slice(before).map((e) => `${String(e.data?.id)} ${String(e.data?.status)}`), [
          "n1 created",
          "n2 created",
          "n3 created",
          "n3 null",
          "n2 aborting",
          "n2 concluded",
          "n2 null",
          "n1 aborting",
          "n1 concluded",
          "n1 null"
        ])
        // Individual: independent jobs.
        assert.deepStrictEqual(yield* tx([{ type: "backup", data: job("i1") }, { type: "backup", data: job("i2") }], false), { return: {} })
        yield* c.execute("job-cancel", { id: "i1" })
        yield* status(c, "i1", "null")
        yield* copyAll
        const done = yield* event(c, "BLOCK_JOB_COMPLETED", "i2")
        assert.notProperty(done.data, "error")
      }))

    run("an id is echoed exactly as sent, an integer beyond 2^53 included", (_c, h) =>
      Effect.gen(function*() {
        const lines = yield* exchange(h, transport, [
          `{"execute": "qmp_capabilities"}`,
          `{"execute": "query-jobs", "id": 9223372036854775807}`,
          `{"execute": "query-jobs", "id": {"n": [18446744073709551617, -9007199254740993, 1.5]}}`
        ])
        assert.deepStrictEqual(lines.slice(1), [
          `{"return":{}}`,
          `{"return":[],"id":9223372036854775807}`,
          `{"return":[],"id":{"n":[18446744073709551617,-9007199254740993,1.5]}}`
        ])
      }))

    run("quit: the reply, SHUTDOWN, then the connection closes and the socket file goes", (c, h) =>
      Effect.gen(function*() {
        const other = yield* h.client(transport === "unix" ? "tcp" : "unix")
        assert.deepStrictEqual(yield* c.request({ execute: "quit", id: "bye" }), { return: {}, id: "bye" })
        yield* c.closed
        yield* other.closed
        for (const client of [c, other]) {
          const last = client.events[client.events.length - 1]
          assert.deepStrictEqual(last?.event, "SHUTDOWN")
          assert.deepStrictEqual(last?.data, { guest: false, reason: "host-qmp-quit" })
        }
        assert.strictEqual(yield* h.server.awaitShutdown, "quit")
        assert.isFalse(yield* exists((h.unix as { path: string }).path))
      }))
  })
}

/**
 * Sends `requests` as lines on a plain socket and returns the lines the server
 * wrote (greeting included) until one reply per request has come: the exact
 * text, which a JSON client would round through doubles.
 */
const exchange = (h: Harness, transport: Transport, requests: ReadonlyArray<string>) =>
  Effect.promise(() =>
    new Promise<Array<string>>((resolve, reject) => {
      const target = transport === "unix" ? h.unix : h.tcp
      const socket = "path" in target ? net.createConnection(target.path) : net.createConnection(target.port, target.host)
      let buffered = ""
      const lines: Array<string> = []
      socket.setEncoding("utf8")
      socket.on("error", reject)
      socket.on("connect", () => socket.write(requests.map((r) => `${r}\n`).join("")))
      socket.on("data", (chunk: string) => {
        buffered += chunk
        let end: number
        while ((end = buffered.indexOf("\n")) >= 0) {
          lines.push(buffered.slice(0, end))
          buffered = buffered.slice(end + 1)
        }
        if (lines.length >= requests.length + 1) {
          socket.destroy()
          resolve(lines)
        }
      })
    })
  )

const exists = (path: string) =>
  Effect.promise(() => import("node:fs/promises").then((fs) => fs.stat(path).then(() => true, () => false)))


