/**
 * The metrics as a Prometheus scrape reads them (`PrometheusMetrics.format`,
 * parsed as the text format): jobs created and concluded by type and outcome,
 * the duration histogram on the engine's clock, units done (without counting
 * a job twice as it concludes), the jobs in each status (exact after each
 * transition), verb requests by result, event overflows, QMP connections, and
 * several engines counting into one registry. Each test has a registry of its
 * own.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Metric, Stream } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"
import * as http from "node:http"
import * as net from "node:net"
import { Jobs } from "../../src/Jobs.ts"
import * as Metrics from "../../src/observability/metrics.ts"
import * as Testing from "../../src/testing.ts"
import { startServer } from "../qmp/harness.ts"
import * as StandIn from "../qmp/standIn.ts"
import { type Exposition, parse, valueOf } from "./prometheus.ts"

const scrape: Effect.Effect<Exposition> = Effect.map(PrometheusMetrics.format(), parse)

/** Runs `effect` (and builds its layers) with a metric registry of its own. */
const isolated = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => Effect.provideService(effect, Metric.MetricRegistry, new Map()))

const name = (key: keyof typeof Metrics.definitions) => Metrics.definitions[key].name

describe("job metrics", () => {
  it.effect("jobs created and concluded by type and outcome, their duration and units, the verbs by result", () =>
    isolated(
      Effect.gen(function*() {
        const jobs = yield* Jobs
        // Succeeds after three ticks of 1.5 s: 4.5 s, 3 units.
        const a = yield* jobs.run({ type: "test", id: "a", params: { iterations: 3, sleepMillis: 1500 } })
        // Fails after two units, at once.
        const b = yield* jobs.run({ type: "test", id: "b", params: { iterations: 2, result: "fail" } })
        // Cancelled before it started: concluded, but no duration.
        const c = yield* jobs.create({ type: "test", id: "c" })
        yield* jobs.cancel(c)
        assert.strictEqual((yield* Effect.exit(jobs.pause("nope")))._tag, "Failure")
        assert.strictEqual((yield* Effect.exit(jobs.resume(a)))._tag, "Failure")
        yield* TestClock.adjust("4500 millis")
        assert.deepStrictEqual(yield* jobs.awaitOutcome(a), { _tag: "Succeeded" })
        assert.strictEqual((yield* jobs.awaitOutcome(b))._tag, "Failed")
        assert.deepStrictEqual(yield* jobs.awaitOutcome(c), { _tag: "Cancelled" })

        const m = yield* scrape
        assert.strictEqual(m.types.get(name("created")), "counter")
        assert.strictEqual(m.types.get(name("duration")), "histogram")
        assert.strictEqual(m.types.get(name("inStatus")), "gauge")
        assert.strictEqual(valueOf(m, name("created"), { type: "test" }), 3)
        assert.strictEqual(valueOf(m, name("concluded"), { type: "test", outcome: "Succeeded" }), 1)
        assert.strictEqual(valueOf(m, name("concluded"), { type: "test", outcome: "Failed" }), 1)
        assert.strictEqual(valueOf(m, name("concluded"), { type: "test", outcome: "Cancelled" }), 1)
        // a and b started: a took 4.5 s, b no time at all.
        assert.strictEqual(valueOf(m, `${name("duration")}_count`, { type: "test" }), 2)
        assert.strictEqual(valueOf(m, `${name("duration")}_sum`, { type: "test" }), 4.5)
        assert.strictEqual(valueOf(m, `${name("duration")}_bucket`, { type: "test", le: "0.001" }), 1)
        assert.strictEqual(valueOf(m, `${name("duration")}_bucket`, { type: "test", le: "1" }), 1)
        assert.strictEqual(valueOf(m, `${name("duration")}_bucket`, { type: "test", le: "5" }), 2)
        assert.strictEqual(valueOf(m, `${name("duration")}_bucket`, { type: "test", le: "+Inf" }), 2)
        assert.strictEqual(valueOf(m, name("unitsDone"), { type: "test" }), 5)
        assert.strictEqual(valueOf(m, name("verbRequests"), { verb: "start", result: "ok" }), 2)
        assert.strictEqual(valueOf(m, name("verbRequests"), { verb: "cancel", result: "ok" }), 1)
        assert.strictEqual(valueOf(m, name("verbRequests"), { verb: "pause", result: "JobNotFound" }), 1)
        assert.strictEqual(valueOf(m, name("verbRequests"), { verb: "resume", result: "JobNotPaused" }), 1)
        // Every job was dismissed.
        for (const status of Metrics.reportedStatuses) assert.strictEqual(valueOf(m, name("inStatus"), { status }), 0)
      }).pipe(Effect.provide(Testing.layer))
    ))

  it.effect("jobs in each status stay exact through every transition; a job's units are counted once", () =>
    isolated(
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const inStatus = (m: Exposition) =>
          Object.fromEntries(
            Metrics.reportedStatuses.map((status) => [status, valueOf(m, name("inStatus"), { status })])
              .filter(([, n]) => n !== 0)
          )
        const units = (m: Exposition) => valueOf(m, name("unitsDone"), { type: "test" })

        yield* jobs.create({ type: "test", id: "idle" })
        const job = yield* jobs.run({
          type: "test",
          id: "j",
          params: { iterations: 2, converge: true, wait: "yield" },
          manualDismiss: true
        })
        yield* jobs.enter(job)
        yield* jobs.enter(job)
        yield* jobs.awaitStatus(job, "ready")
        let m = yield* scrape
        assert.deepStrictEqual(inStatus(m), { created: 1, ready: 1 })
        // Still running: its progress is read from the job.
        assert.strictEqual(units(m), 2)

        yield* jobs.pause(job)
        yield* jobs.enter(job)
        yield* jobs.awaitStatus(job, "standby")
        assert.deepStrictEqual(inStatus(yield* scrape), { created: 1, standby: 1 })

        yield* jobs.resume(job)
        yield* jobs.awaitStatus(job, "ready")
        yield* jobs.complete(job)
        yield* jobs.awaitOutcome(job)
        m = yield* scrape
        assert.deepStrictEqual(inStatus(m), { created: 1, concluded: 1 })
        // Concluded (not yet dismissed): counted once, not also as a job in progress.
        assert.strictEqual(units(m), 2)

        yield* jobs.dismiss(job)
        m = yield* scrape
        assert.deepStrictEqual(inStatus(m), { created: 1 })
        assert.strictEqual(units(m), 2)
        assert.strictEqual(valueOf(m, name("verbRequests"), { verb: "dismiss", result: "ok" }), 1)
      }).pipe(Effect.provide(Testing.layer))
    ))

  it.effect("a subscription cut off for falling behind is counted", () =>
    isolated(
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const slow = yield* jobs.subscribe({ capacity: 2 })
        assert.strictEqual(valueOf(yield* scrape, name("eventOverflows")), 0)
        // Created, running, waiting, pending, concluded, null, …: far more than 2 unread events.
        yield* jobs.run({ type: "test", id: "j" })
        yield* jobs.awaitOutcome("j").pipe(Effect.catchTag("JobNotFound", () => Effect.void))
        const read = yield* Effect.exit(Stream.runDrain(slow))
        assert.isTrue(Exit.isFailure(read))
        assert.strictEqual(valueOf(yield* scrape, name("eventOverflows")), 1)
      }).pipe(Effect.scoped, Effect.provide(Testing.layerWith({ retainedEvents: 0 })))
    ))

  it.effect("engines built in one registry add to the same series", () =>
    isolated(
      Effect.gen(function*() {
        const engine = Effect.gen(function*() {
          const jobs = yield* Jobs
          yield* jobs.create({ type: "test", id: "held" })
          const done = yield* jobs.run({ type: "test", id: "done", params: { iterations: 4 } })
          yield* jobs.awaitOutcome(done)
        })
        yield* engine.pipe(Effect.provide(Testing.layer))
        // The first engine is closed (its held job cancelled): its counts stay; its jobs are gone.
        let m = yield* scrape
        assert.strictEqual(valueOf(m, name("created"), { type: "test" }), 2)
        assert.strictEqual(valueOf(m, name("concluded"), { type: "test", outcome: "Cancelled" }), 1)
        assert.strictEqual(valueOf(m, name("inStatus"), { status: "created" }), 0)

        yield* Effect.gen(function*() {
          yield* engine
          m = yield* scrape
        }).pipe(Effect.provide(Testing.layer))
        assert.strictEqual(valueOf(m, name("created"), { type: "test" }), 4)
        assert.strictEqual(valueOf(m, name("concluded"), { type: "test", outcome: "Succeeded" }), 2)
        assert.strictEqual(valueOf(m, name("unitsDone"), { type: "test" }), 8)
        assert.strictEqual(valueOf(m, name("inStatus"), { status: "created" }), 1)
      })
    ))
})

describe("connection metrics", () => {
  it.live("QMP connections: open while connected, all counted as accepted", () =>
    isolated(
      Effect.gen(function*() {
        const h = yield* startServer()
        const open = (m: Exposition) => valueOf(m, name("connectionsOpen"), { protocol: "qmp" })
        const total = (m: Exposition) => valueOf(m, name("connections"), { protocol: "qmp" })
        yield* h.client("unix")
        yield* h.client("tcp")
        let m = yield* scrape
        assert.strictEqual(open(m), 2)
        assert.strictEqual(total(m), 2)
        yield* h.server.shutdown()
        yield* h.server.awaitShutdown
        m = yield* scrape
        assert.strictEqual(open(m), 0)
        assert.strictEqual(total(m), 2)
      }).pipe(
        Effect.scoped,
        Effect.provide(StandIn.layer.pipe(Layer.provideMerge(Testing.layer), Layer.provideMerge(NodeServices.layer)))
      )
    ))

  it.live("a Node HTTP server's connections are counted until their sockets close", () =>
    isolated(
      Effect.gen(function*() {
        const context = yield* Effect.context<never>()
        const server = http.createServer((_request, response) => response.end("ok"))
        Metrics.countServerConnections(server, context, "http")
        // Registered after the metrics' listener: it hears of each close after the count has dropped.
        const closed = yield* Deferred.make<void>()
        server.on("connection", (socket: net.Socket) => socket.once("close", () => Deferred.doneUnsafe(closed, Exit.void)))
        yield* Effect.acquireRelease(
          Effect.callback<void>((resume) => {
            server.listen(0, "127.0.0.1", () => resume(Effect.void))
          }),
          () =>
            Effect.callback<void>((resume) => {
              server.close(() => resume(Effect.void))
            })
        )
        const port = (server.address() as net.AddressInfo).port
        const client = net.connect(port, "127.0.0.1")
        yield* Effect.callback<void>((resume) => {
          server.once("connection", () => resume(Effect.void))
        })
        const open = (m: Exposition) => valueOf(m, name("connectionsOpen"), { protocol: "http" })
        assert.strictEqual(open(yield* scrape), 1)
        client.destroy()
        yield* Deferred.await(closed)
        const m = yield* scrape
        assert.strictEqual(open(m), 0)
        assert.strictEqual(valueOf(m, name("connections"), { protocol: "http" }), 1)
      }).pipe(Effect.scoped)
    ))

  it.effect("a connection tracked for a scope is open until the scope closes", () =>
    isolated(
      Effect.gen(function*() {
        const open = (m: Exposition) => valueOf(m, name("connectionsOpen"), { protocol: "http" })
        yield* Effect.scoped(Effect.gen(function*() {
          yield* Metrics.trackConnection("http")
          yield* Metrics.trackConnection("http")
          assert.strictEqual(open(yield* scrape), 2)
        }))
        const m = yield* scrape
        assert.strictEqual(open(m), 0)
        assert.strictEqual(valueOf(m, name("connections"), { protocol: "http" }), 2)
      })
    ))
})
