/**
 * Event sequences over QMP (spec §4): each job's status changes and BLOCK_JOB_*
 * events in QEMU's order with QEMU's payloads, for backups (auto and manual
 * finalize/dismiss, failure), mirrors (ready, standby, complete, soft and
 * force cancel in READY) and grouped transactions (all succeed, one fails, one
 * cancelled); events reach every negotiated client (Unix and TCP alike), and
 * only those; the events a command causes while it runs reach every client
 * before its reply, and before anything that follows.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../../src/Jobs.ts"
import type { EventMessage, QmpClient } from "../../src/Qmp.ts"
import { captureLogs, type Harness, layer, startServer, type WireClient, type WireMessage, wireClient } from "./harness.ts"
import * as StandIn from "./standIn.ts"

const jobOf = (e: EventMessage) => String(e.data?.id ?? e.data?.device)

/** One job's events as QEMU's traces write them: statuses, and BLOCK_JOB_* names. */
const trace = (c: QmpClient, id: string) =>
  c.events.filter((e) => e.event !== "SHUTDOWN" && jobOf(e) === id).map((e) =>
    e.event === "JOB_STATUS_CHANGE" ? String(e.data?.status) : e.event.replace("BLOCK_JOB_", "")
  )

const payload = (c: QmpClient, name: string, id: string) => c.events.find((e) => e.event === name && jobOf(e) === id)?.data

const status = (c: QmpClient, id: string, s: string, times = 1) =>
  Effect.suspend(() => {
    let seen = 0
    return c.awaitEvent((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === s && ++seen >= times)
  })

const copyAll = TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)

const job = (id: string, extra: Record<string, unknown> = {}) => ({ "job-id": id, source: `src-${id}`, target: `dst-${id}`, ...extra })

const progress = (type: string, id: string, offset: number, speed = 0) => ({
  type,
  device: id,
  len: StandIn.totalBytes,
  offset,
  speed
})

const run = <A, E>(name: string, body: (c: QmpClient, h: Harness) => Effect.Effect<A, E, Scope.Scope | Jobs>) =>
  it.effect(name, () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      return yield* body(yield* h.client(), h)
    }).pipe(Effect.scoped, Effect.provide(layer)))

describe("QMP events", () => {
  run("backup, auto-finalize and auto-dismiss", (c) =>
    Effect.gen(function*() {
      yield* c.execute("backup", job("j", { speed: 10_000_000 }))
      yield* copyAll
      yield* status(c, "j", "null")
      assert.deepStrictEqual(trace(c, "j"), ["created", "running", "waiting", "pending", "COMPLETED", "concluded", "null"])
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_COMPLETED", "j"), progress("backup", "j", StandIn.totalBytes, 10_000_000))
      for (const e of c.events) {
        assert.hasAllKeys(e, ["event", "data", "timestamp"])
        assert.hasAllKeys(e.timestamp, ["seconds", "microseconds"])
      }
    }))

  run("backup, manual finalize and dismiss: PENDING, then COMPLETED on finalize, NULL on dismiss", (c) =>
    Effect.gen(function*() {
      yield* c.execute("backup", job("j", { "auto-finalize": false, "auto-dismiss": false }))
      yield* copyAll
      yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_PENDING")
      assert.deepStrictEqual(trace(c, "j"), ["created", "running", "waiting", "pending", "PENDING"])
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_PENDING", "j"), { type: "backup", id: "j" })
      yield* c.execute("job-finalize", { id: "j" })
      yield* status(c, "j", "concluded")
      assert.deepStrictEqual(trace(c, "j").slice(5), ["COMPLETED", "concluded"])
      yield* c.execute("job-dismiss", { id: "j" })
      yield* status(c, "j", "null")
      assert.deepStrictEqual(trace(c, "j").slice(7), ["null"])
    }))

  run("backup that fails: ABORTING, then COMPLETED with the error", (c) =>
    Effect.gen(function*() {
      yield* c.execute("backup", job("j", { target: "fail-here" }))
      yield* copyAll
      yield* status(c, "j", "null")
      assert.deepStrictEqual(trace(c, "j"), ["created", "running", "aborting", "COMPLETED", "concluded", "null"])
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_COMPLETED", "j"), {
        ...progress("backup", "j", StandIn.chunkBytes),
        error: "Could not write 'fail-here': No space left on device"
      })
    }))

  run("mirror: ready, standby and back, complete", (c) =>
    Effect.gen(function*() {
      yield* c.execute("mirror", job("m"))
      yield* copyAll
      yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_READY")
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_READY", "m"), progress("mirror", "m", StandIn.totalBytes))
      yield* c.execute("job-pause", { id: "m" })
      yield* status(c, "m", "standby")
      yield* c.execute("job-resume", { id: "m" })
      yield* status(c, "m", "ready", 2)
      yield* c.execute("job-complete", { id: "m" })
      yield* status(c, "m", "null")
      assert.deepStrictEqual(trace(c, "m"), [
        "created",
        "running",
        "ready",
        "READY",
        "standby",
        "ready",
        "waiting",
        "pending",
        "COMPLETED",
        "concluded",
        "null"
      ])
      assert.notProperty(payload(c, "BLOCK_JOB_COMPLETED", "m"), "error")
    }))

  run("mirror: soft cancel in READY ends COMPLETED, without error", (c) =>
    Effect.gen(function*() {
      yield* c.execute("mirror", job("m"))
      yield* copyAll
      yield* status(c, "m", "ready")
      yield* c.execute("block-job-cancel", { device: "m" })
      yield* status(c, "m", "null")
      assert.deepStrictEqual(trace(c, "m"), ["created", "running", "ready", "READY", "waiting", "pending", "COMPLETED", "concluded", "null"])
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_COMPLETED", "m"), progress("mirror", "m", StandIn.totalBytes))
    }))

  run("mirror: force cancel in READY ends CANCELLED", (c) =>
    Effect.gen(function*() {
      yield* c.execute("mirror", job("m"))
      yield* copyAll
      yield* status(c, "m", "ready")
      yield* c.execute("block-job-cancel", { device: "m", force: true })
      yield* status(c, "m", "null")
      assert.deepStrictEqual(trace(c, "m"), ["created", "running", "ready", "READY", "aborting", "CANCELLED", "concluded", "null"])
      assert.deepStrictEqual(payload(c, "BLOCK_JOB_CANCELLED", "m"), progress("mirror", "m", StandIn.totalBytes))
    }))

  run("mirror: cancel before READY is always hard", (c) =>
    Effect.gen(function*() {
      yield* c.execute("mirror", job("m"))
      yield* TestClock.adjust(StandIn.chunkMillis)
      yield* c.execute("block-job-cancel", { device: "m" })
      yield* status(c, "m", "null")
      assert.deepStrictEqual(trace(c, "m"), ["created", "running", "aborting", "CANCELLED", "concluded", "null"])
    }))

  const grouped = (ids: ReadonlyArray<string>, extra: (id: string) => Record<string, unknown> = () => ({})) => ({
    actions: ids.map((id) => ({ type: "backup", data: job(id, extra(id)) })),
    properties: { "completion-mode": "grouped" }
  })

  run("grouped transaction: all succeed, all complete together", (c) =>
    Effect.gen(function*() {
      yield* c.execute("transaction", grouped(["a", "b", "c"]))
      yield* copyAll
      for (const id of ["a", "b", "c"]) yield* status(c, id, "null")
      for (const id of ["a", "b", "c"]) {
        assert.deepStrictEqual(trace(c, id), ["created", "running", "waiting", "pending", "COMPLETED", "concluded", "null"])
      }
      // Nobody went PENDING before everybody was WAITING.
      const order = c.events.map((e) => `${jobOf(e)}:${e.data?.status ?? e.event}`)
      const lastWaiting = Math.max(...["a", "b", "c"].map((id) => order.indexOf(`${id}:waiting`)))
      const firstPending = Math.min(...["a", "b", "c"].map((id) => order.indexOf(`${id}:pending`)))
      assert.isBelow(lastWaiting, firstPending)
    }))

  run("grouped transaction: one fails, the others are cancelled", (c) =>
    Effect.gen(function*() {
      // b fails on its first chunk; a and c are slower and still running then.
      yield* c.execute("transaction", grouped(["a", "b", "c"], (id) => (id === "b" ? { target: "fail-b" } : { speed: 1 })))
      yield* TestClock.adjust(StandIn.chunkMillis)
      for (const id of ["a", "b", "c"]) yield* status(c, id, "null")
      assert.deepStrictEqual(trace(c, "b"), ["created", "running", "aborting", "COMPLETED", "concluded", "null"])
      assert.strictEqual(payload(c, "BLOCK_JOB_COMPLETED", "b")?.error, "Could not write 'fail-b': No space left on device")
      for (const id of ["a", "c"]) {
        assert.deepStrictEqual(trace(c, id), ["created", "running", "aborting", "CANCELLED", "concluded", "null"])
        assert.deepStrictEqual(payload(c, "BLOCK_JOB_CANCELLED", id), progress("backup", id, 0, 1))
      }
    }))

  run("grouped transaction: one cancelled, all cancelled, the finished one too", (c) =>
    Effect.gen(function*() {
      yield* c.execute("transaction", grouped(["a", "b"], (id) => (id === "a" ? {} : { speed: 1 })))
      yield* copyAll
      yield* status(c, "a", "waiting")
      yield* c.execute("job-cancel", { id: "b" })
      for (const id of ["a", "b"]) yield* status(c, id, "null")
      assert.deepStrictEqual(trace(c, "a"), ["created", "running", "waiting", "aborting", "CANCELLED", "concluded", "null"])
      assert.deepStrictEqual(trace(c, "b"), ["created", "running", "aborting", "CANCELLED", "concluded", "null"])
    }))

  run("jobs that are not block jobs send status changes only", (c) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.run({ type: "test", id: "t", params: { iterations: 0, converge: true, wait: "yield" } })
      yield* status(c, "t", "ready")
      yield* jobs.complete("t")
      yield* status(c, "t", "null")
      assert.deepStrictEqual(trace(c, "t"), ["created", "running", "ready", "waiting", "pending", "concluded", "null"])
    }))

  run("two clients, Unix and TCP, see every event, identically; a client that has not negotiated sees none", (unixClient, h) =>
    Effect.gen(function*() {
      const tcpClient = yield* h.client("tcp")
      const silent = yield* h.fresh("unix")
      yield* unixClient.execute("transaction", grouped(["a", "b"], () => ({ "auto-finalize": false })))
      yield* tcpClient.execute("mirror", job("m"))
      yield* copyAll
      yield* status(tcpClient, "a", "pending")
      yield* unixClient.execute("job-finalize", { id: "b" })
      yield* tcpClient.execute("job-complete", { id: "m" })
      for (const c of [unixClient, tcpClient]) {
        yield* status(c, "a", "null")
        yield* status(c, "m", "null")
      }
      assert.deepStrictEqual(unixClient.events, tcpClient.events)
      assert.lengthOf(unixClient.events, 8 + 8 + 9)
      // Whatever was sent to the silent client would have arrived before this reply.
      yield* silent.execute("qmp_capabilities")
      assert.deepStrictEqual(silent.events, [])
    }))
})

/** An event as `<job>:<status>` (status changes) or `<job>:<EVENT>`; `undefined` for a reply or SHUTDOWN. */
const label = (m: WireMessage): string | undefined => {
  if (m.event === undefined || m.event === "SHUTDOWN") return undefined
  const id = String(m.data?.id ?? m.data?.device)
  return m.event === "JOB_STATUS_CHANGE" ? `${id}:${m.data?.status}` : `${id}:${m.event.replace("BLOCK_JOB_", "")}`
}

/** The labels of the events of `ids` among `messages[from, to)`. */
const labelsOf = (c: WireClient, ids: ReadonlyArray<string>, from: number, to: number) =>
  c.messages.slice(from, to).map(label).filter((l): l is string => l !== undefined && ids.includes(l.split(":")[0]!))

describe("QMP events before replies", () => {
  it.effect("the events a command causes while it runs reach every client before its reply and before the next command's", () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      const jobs = yield* Jobs
      const sender = yield* wireClient(h.unix)
      const watcher = yield* wireClient(h.tcp)

      // Jobs in the states the commands below act on: p and f PENDING (f dismisses by hand), c CREATED.
      yield* sender.execute("backup", job("p", { "auto-finalize": false }))
      yield* sender.execute("backup", job("f", { "auto-finalize": false, "auto-dismiss": false }))
      yield* jobs.create({ type: "backup", id: "c", params: { source: "src-c", target: "dst-c" } })
      yield* copyAll
      for (const c of [sender, watcher]) {
        for (const id of ["p", "f"]) yield* c.awaitMessage((m) => label(m) === `${id}:PENDING`)
        yield* c.awaitMessage((m) => label(m) === "c:created")
      }

      const steps: ReadonlyArray<{
        readonly command: string
        readonly args: Record<string, unknown>
        readonly jobs: ReadonlyArray<string>
        readonly caused: ReadonlyArray<string>
      }> = [
        {
          // t2's driver fails to set it up: t1, created already, is taken down before it ever ran.
          command: "transaction",
          args: { actions: [{ type: "backup", data: job("t1") }, { type: "backup", data: job("t2", { source: "missing-t2" }) }] },
          jobs: ["t1", "t2"],
          caused: ["t1:created", "t2:created", "t2:null", "t1:aborting", "t1:concluded", "t1:null"]
        },
        { command: "job-cancel", args: { id: "c" }, jobs: ["c"], caused: ["c:aborting", "c:concluded", "c:null"] },
        { command: "job-cancel", args: { id: "p" }, jobs: ["p"], caused: ["p:aborting", "p:CANCELLED", "p:concluded", "p:null"] },
        { command: "job-finalize", args: { id: "f" }, jobs: ["f"], caused: ["f:COMPLETED", "f:concluded"] },
        { command: "job-dismiss", args: { id: "f" }, jobs: ["f"], caused: ["f:null"] },
        // The last one shows where the one before ends, on the watcher.
        { command: "backup", args: job("z"), jobs: ["z"], caused: ["z:created", "z:running"] }
      ]

      // The sender: each command's events, all of them, between the previous reply and its own.
      // The watcher, asking something right after: all of them before its reply too.
      let previousReply = sender.messages.length - 1
      let watcherFrom = watcher.messages.length
      const replies: Array<WireMessage> = []
      for (const step of steps) {
        const what = `${step.command} ${JSON.stringify(step.args)}`
        const reply = yield* sender.execute(step.command, step.args)
        assert.deepStrictEqual(labelsOf(sender, step.jobs, previousReply + 1, reply), step.caused, what)
        replies.push(sender.messages[reply]!)
        previousReply = reply
        const watcherReply = yield* watcher.execute("query-jobs")
        assert.deepStrictEqual(labelsOf(watcher, step.jobs, watcherFrom, watcherReply), step.caused, `${what}, on the watcher`)
        watcherFrom = watcherReply + 1
      }
      assert.deepStrictEqual(replies.map((r) => Object.keys(r).filter((k) => k !== "id")), [["error"], ...steps.slice(1).map(() => ["return"])])

      // The watcher: each command's events, all of them, before the first event of the next command.
      let start = yield* watcher.awaitMessage((m) => label(m) === steps[0]!.caused[0])
      for (let i = 0; i < steps.length - 1; i++) {
        const step = steps[i]!
        const next = yield* watcher.awaitMessage((m) => label(m) === steps[i + 1]!.caused[0], start)
        assert.deepStrictEqual(labelsOf(watcher, step.jobs, start, next), step.caused, `${step.command} ${JSON.stringify(step.args)}, on the watcher`)
        start = next
      }
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("a subscription that falls behind: listening clients disconnected (logged), renewed for the clients after them", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const h = yield* startServer({ eventBuffer: 4 })
      const jobs = yield* Jobs
      const listening = yield* h.client()
      // Six events published in one go, with room for four.
      for (let i = 0; i < 6; i++) yield* jobs.create({ type: "test", id: `j${i}` })
      yield* listening.closed
      yield* logs.waitFor(/QMP event forwarding fell behind: .* 4 events/, "Error")
      const next = yield* h.client()
      yield* jobs.create({ type: "test", id: "later" })
      yield* next.awaitEvent((e) => e.data?.id === "later")
      assert.deepStrictEqual(next.events.map((e) => `${e.data?.id}:${e.data?.status}`), ["later:created"])
    }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
  })
})
