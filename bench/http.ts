/**
 * The HTTP API: `GET /api/jobs` round trips per second, and the time from a
 * job's status change to its Server-Sent Event arriving at the clients,
 * client and server in one process, over TCP on 127.0.0.1.
 *
 * - `GET /api/jobs` with 100 jobs, 1 and 8 clients (each sends its next
 *   request when the previous response has arrived, over a kept-alive
 *   connection), against QMP's `query-jobs` of the same 100 jobs measured
 *   the same way over TCP: ratio = HTTP / QMP.
 * - Status change → event: t0 just before `jobs.start(job)` (CREATED →
 *   RUNNING), t1 when a client has the message with that event's `id`; with
 *   1 client and with 100 (every client's arrival counts as a sample, and
 *   the last arrival of each change is reported apart). Baseline: a bare
 *   `node:http` server that writes the same message to the same number of
 *   event-stream clients when told to, measured the same way: ratio =
 *   effect-jobs / baseline (p50).
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as http from "node:http"
import * as Http from "../src/Http.ts"
import * as Jobs from "../src/Jobs.ts"
import * as Qmp from "../src/Qmp.ts"
import { elapsedNs, type LatencySummary, now, progress, round, summarize } from "./measure.ts"
import { IdleDriver } from "./idleDriver.ts"


/** One GET over `agent`; resolves with the body's length. */
const get = (agent: http.Agent, port: number, path: string): Promise<number> =>
  new Promise((resolve, reject) => {
    http.get({ host: "127.0.0.1", port, path, agent }, (res) => {
      let length = 0
      res.on("data", (chunk: Buffer) => {
        length += chunk.length
      })
      res.on("end", () => (res.statusCode === 200 ? resolve(length) : reject(new Error(`HTTP ${res.statusCode}`))))
    }).on("error", reject)
  })

/** `count` GETs one after the other from each of `clients` clients; responses per second overall. */
const httpRoundTrips = (port: number, clients: number, count: number) =>
  Effect.promise(async () => {
    const agents = Array.from({ length: clients }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }))
    const start = now()
    await Promise.all(agents.map(async (agent) => {
      for (let i = 0; i < count; i++) await get(agent, port, "/api/jobs")
    }))
    const perSecond = (clients * count) / (elapsedNs(start) / 1e9)
    for (const agent of agents) agent.destroy()
    return round(perSecond, 0)
  })

/** The same with QMP's `query-jobs`. */
const qmpRoundTrips = (target: Qmp.Target, clients: number, count: number) =>
  Effect.scoped(Effect.gen(function*() {
    const connected = yield* Effect.forEach(Array.from({ length: clients }), () => Qmp.connect(target))
    const start = now()
    yield* Effect.forEach(connected, (client) =>
      Effect.gen(function*() {
        for (let i = 0; i < count; i++) yield* client.execute("query-jobs")
      }), { concurrency: "unbounded", discard: true })
    return round((clients * count) / (elapsedNs(start) / 1e9), 0)
  }))

/** An event-stream client that calls `onId` with each message's id and the time it arrived. */
const streamClient = (port: number, path: string, onId: (id: number, at: bigint) => void) =>
  new Promise<http.ClientRequest>((resolve, reject) => {
    const boundary = Buffer.from("\n\n")
    const req = http.get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let tail: Buffer = Buffer.alloc(0)
      let opened = false
      res.on("data", (chunk: Buffer) => {
        const at = now()
        const buffer: Buffer = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk
        let from = 0
        let end: number
        while ((end = buffer.indexOf(boundary, from)) !== -1) {
          if (buffer.toString("latin1", from, from + 4) === "id: ") {
            onId(Number(buffer.toString("latin1", from + 4, buffer.indexOf(10, from))), at)
          }
          from = end + 2
        }
        tail = buffer.subarray(from)
        if (!opened) {
          opened = true
          resolve(req)
        }
      })
    })
    req.on("error", reject)
  })

/** Arrival times of one id at each client, and a way to wait for all of them. */
class Arrivals {
  private readonly times = new Map<number, Array<bigint>>()
  private waiter: { readonly id: number; readonly done: () => void } | undefined
  readonly clients: number
  constructor(clients: number) {
    this.clients = clients
  }
  record(id: number, at: bigint): void {
    let list = this.times.get(id)
    if (list === undefined) {
      list = []
      this.times.set(id, list)
    }
    list.push(at)
    if (this.waiter !== undefined && this.waiter.id === id && list.length === this.clients) {
      const done = this.waiter.done
      this.waiter = undefined
      done()
    }
  }
  /** Waits until every client has `id`; their arrival times. */
  all(id: number): Effect.Effect<ReadonlyArray<bigint>> {
    return Effect.map(
      Effect.callback<void>((resume) => {
        if ((this.times.get(id)?.length ?? 0) === this.clients) return resume(Effect.void)
        this.waiter = { id, done: () => resume(Effect.void) }
      }),
      () => {
        const list = this.times.get(id)!
        this.times.delete(id)
        return list
      }
    )
  }
}

interface EventLatency {
  /** Every client's arrival, every sample. */
  readonly each: LatencySummary
  /** The last client's arrival, per sample. */
  readonly last: LatencySummary
}

/** Status change → event at `clients` clients of the API, `samples` times. */
const apiEventLatency = (jobs: Jobs.JobsService, port: number, clients: number, samples: number, warmup: number) =>
  Effect.gen(function*() {
    const arrivals = new Arrivals(clients)
    const requests = yield* Effect.promise(() =>
      Promise.all(Array.from({ length: clients }, () => streamClient(port, "/api/events", (id, at) => arrivals.record(id, at))))
    )
    const each: Array<number> = []
    const last: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      const job = yield* Effect.orDie(jobs.create({ type: "idle", id: `lat${clients}-${i}` }))
      yield* arrivals.all((yield* jobs.snapshot).seq) // its `created`
      const running = (yield* jobs.snapshot).seq + 1
      const start = now()
      yield* Effect.orDie(jobs.start(job))
      const times = yield* arrivals.all(running)
      if (i >= warmup) {
        for (const at of times) each.push(Number(at - start))
        last.push(Math.max(...times.map((at) => Number(at - start))))
      }
      yield* Effect.orDie(jobs.cancel(job, { force: true }))
      yield* Effect.orDie(jobs.awaitOutcome(job))
      yield* arrivals.all((yield* jobs.snapshot).seq) // its `null`: nothing of it is left on the way
    }
    for (const req of requests) req.destroy()
    return { each: summarize(each), last: summarize(last) } satisfies EventLatency
  })

/** The baseline: a bare node:http server that writes one SSE message to every client when told to. */
const baselineEventLatency = (clients: number, samples: number, warmup: number) =>
  Effect.promise(async () => {
    const streams = new Set<http.ServerResponse>()
    const server = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
      res.write(": bare\n\n")
      streams.add(res)
      res.on("close", () => streams.delete(res))
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const port = (server.address() as { port: number }).port
    const arrivals = new Arrivals(clients)
    const requests = await Promise.all(
      Array.from({ length: clients }, () => streamClient(port, "/", (id, at) => arrivals.record(id, at)))
    )
    const each: Array<number> = []
    const last: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      const data = JSON.stringify({ _tag: "StatusChange", id: `lat${clients}-${i}`, status: "running", seq: i + 1, timestamp: Date.now() })
      const message = `id: ${i + 1}\nevent: StatusChange\ndata: ${data}\n\n`
      const start = now()
      for (const res of streams) res.write(message)
      const times = await Effect.runPromise(arrivals.all(i + 1))
      if (i >= warmup) {
        for (const at of times) each.push(Number(at - start))
        last.push(Math.max(...times.map((at) => Number(at - start))))
      }
    }
    for (const req of requests) req.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
    return { each: summarize(each), last: summarize(last) } satisfies EventLatency
  })

export interface HttpBenchOptions {
  /** GETs per client with 1 client … */
  readonly roundTrips: number
  /** … and per client with 8 clients. */
  readonly roundTripsEach8: number
  readonly latencySamples: number
  readonly latencyWarmup: number
}

export const httpApi = (options: HttpBenchOptions) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* Effect.orDie(jobs.register(IdleDriver))
    for (let i = 0; i < 100; i++) yield* Effect.orDie(jobs.run({ type: "idle", id: `q${i}` }))
    const api = yield* Effect.orDie(Http.make({ port: 0 }))
    const port = (api.address as { readonly port: number }).port
    const qmp = yield* Effect.orDie(Qmp.make({ socket: false, tcp: { port: 0 } }))
    const address = qmp.addresses.find((a) => a._tag === "Tcp")!
    const qmpTarget: Qmp.Target = address._tag === "Tcp" ? { host: address.host, port: address.port } : { path: "" }

    progress("http: GET /api/jobs (100 jobs) against QMP query-jobs, over tcp")
    yield* httpRoundTrips(port, 1, Math.min(500, options.roundTrips)) // warm-up
    yield* qmpRoundTrips(qmpTarget, 1, Math.min(500, options.roundTrips))
    const getJobs = {
      clients1: yield* httpRoundTrips(port, 1, options.roundTrips),
      clients8: yield* httpRoundTrips(port, 8, options.roundTripsEach8)
    }
    const queryJobs = {
      clients1: yield* qmpRoundTrips(qmpTarget, 1, options.roundTrips),
      clients8: yield* qmpRoundTrips(qmpTarget, 8, options.roundTripsEach8)
    }

    progress("http: status change → SSE event, 1 and 100 clients")
    const { latencySamples: samples, latencyWarmup: warmup } = options
    const events = {
      clients1: yield* apiEventLatency(jobs, port, 1, samples, warmup),
      clients100: yield* apiEventLatency(jobs, port, 100, Math.max(1, Math.round(samples / 4)), Math.max(1, Math.round(warmup / 4)))
    }
    progress("http: baseline bare node:http SSE server")
    const baseline = {
      clients1: yield* baselineEventLatency(1, samples, warmup),
      clients100: yield* baselineEventLatency(100, Math.max(1, Math.round(samples / 4)), Math.max(1, Math.round(warmup / 4)))
    }
    return {
      method: "Client and server in one process (one Node event loop), over TCP on 127.0.0.1. GET /api/jobs lists 100 " +
        "idle jobs; each client (node:http, one kept-alive connection) sends its next request when the previous " +
        `response has arrived: 1 client × ${options.roundTrips}, then 8 × ${options.roundTripsEach8}, after a warm-up; ` +
        "against QMP query-jobs of the same jobs with effect-jobs's own QMP client, measured the same way; ratio = " +
        "HTTP / QMP. Event latency: t0 just before jobs.start(job) (CREATED → RUNNING), t1 when a client's reader has " +
        `the SSE message with that event's id; ${samples} samples after ${warmup} warm-up with 1 client, a quarter ` +
        "of that with 100 clients (each client's arrival a sample; 'last' is the last client's, per change). " +
        "Baseline: a bare node:http server writing the same message to as many event-stream clients, measured the " +
        "same way; ratio = effect-jobs / baseline, p50.",
      getJobs100: getJobs,
      baselineQueryJobsQmpTcp: queryJobs,
      ratioGetJobsToQueryJobs: {
        clients1: round(getJobs.clients1 / queryJobs.clients1, 2),
        clients8: round(getJobs.clients8 / queryJobs.clients8, 2)
      },
      eventLatency: events,
      baselineEventLatency: baseline,
      ratioEventLatencyP50: {
        clients1: round(events.clients1.each.p50Us / baseline.clients1.each.p50Us, 2),
        clients100: round(events.clients100.each.p50Us / baseline.clients100.each.p50Us, 2)
      }
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(Jobs.layer, NodeServices.layer)),
    Effect.annotateLogs({ bench: "http" })
  )
