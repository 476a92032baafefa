/**
 * The QMP server: round trips per second and event latency, over the Unix
 * socket and over TCP on 127.0.0.1, client and server in one process.
 *
 * - `query-jobs` with 100 jobs, and `job-pause`/`job-resume` pairs, with 1 and
 *   with 8 clients (each client sends its next command when the previous reply
 *   has arrived);
 * - the time from a job's status change (`jobs.start`: CREATED → RUNNING) to
 *   the JOB_STATUS_CHANGE event arriving at a client.
 *
 * Baseline for the round trips: a bare `node:net` server that reads lines,
 * parses them and answers each with the same reply bytes (no engine, no
 * protocol checks), measured with the same client. `query-jobs` over TCP and
 * the baseline are measured in alternating rounds, and each keeps its best
 * round, so that both are measured under the same load of the machine.
 * Target: at least 0.9 of the baseline's round trips with 1 and with 8
 * clients, and a p99 round trip of at most 1 ms with 8 clients.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, FileSystem, Layer } from "effect"
import * as Net from "node:net"
import * as Jobs from "../src/Jobs.ts"
import * as Qmp from "../src/Qmp.ts"
import { type LatencySummary, elapsedNs, now, progress, round, summarize } from "./measure.ts"
import { IdleDriver } from "./idleDriver.ts"


type Transport = "unix" | "tcp"

/** The command client `k` sends the `i`-th time. */
type Command = (k: number, i: number) => { execute: string; arguments?: Record<string, unknown> }

/**
 * Sends `count` commands one after the other from each of `clients` clients;
 * replies per second overall. With `latencies`, each round trip's time (ns) is
 * added to it.
 */
const roundTrips = (
  target: Qmp.Target,
  clients: number,
  count: number,
  command: Command,
  latencies?: Array<number>
) =>
  Effect.scoped(Effect.gen(function*() {
    const connected = yield* Effect.forEach(Array.from({ length: clients }), () => Qmp.connect(target))
    const start = now()
    yield* Effect.forEach(
      connected,
      (c, k) =>
        Effect.gen(function*() {
          for (let i = 0; i < count; i++) {
            const sent = latencies === undefined ? 0n : now()
            const reply = yield* c.request(command(k, i))
            if (latencies !== undefined) latencies.push(Number(now() - sent))
            if (!("return" in reply)) return yield* Effect.die(new Error(`unexpected reply ${JSON.stringify(reply)}`))
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    return round((clients * count) / (elapsedNs(start) / 1e9), 0)
  }))

/** A bare line server: greets like QMP, then answers every line with `reply`. */
const baselineServer = (reply: (line: string) => string) =>
  Effect.acquireRelease(
    Effect.callback<Net.Server>((resume) => {
      const server = Net.createServer({ noDelay: true }, (socket) => {
        socket.write(`${JSON.stringify({ QMP: { version: Qmp.version, capabilities: [] } })}\n`)
        let pending = ""
        socket.on("data", (chunk: Buffer) => {
          pending += chunk.toString("utf8")
          let newline: number
          let out = ""
          while ((newline = pending.indexOf("\n")) !== -1) {
            const line = pending.slice(0, newline)
            pending = pending.slice(newline + 1)
            JSON.parse(line)
            out += `${reply(line)}\n`
          }
          if (out !== "") socket.write(out)
        })
        socket.on("error", () => undefined)
      })
      server.listen({ host: "127.0.0.1", port: 0 }, () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

/** Status change → event at the client, `samples` times. */
const eventLatency = (jobs: Jobs.JobsService, target: Qmp.Target, samples: number, warmup: number, tag: string) =>
  Effect.scoped(Effect.gen(function*() {
    const c = yield* Qmp.connect(target)
    const latencies: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      const id = `lat-${tag}-${i}`
      const job = yield* Effect.orDie(jobs.create({ type: "idle", id }))
      let arrived = 0n
      const seen = c.awaitEvent((e) => {
        if (e.event !== "JOB_STATUS_CHANGE" || e.data?.id !== id || e.data?.status !== "running") return false
        arrived = now()
        return true
      })
      const start = now()
      yield* Effect.orDie(jobs.start(job))
      yield* seen
      if (i >= warmup) latencies.push(Number(arrived - start))
      yield* Effect.orDie(jobs.cancel(job, { force: true }))
      yield* Effect.orDie(jobs.awaitOutcome(job))
    }
    return summarize(latencies)
  }))

export interface QmpBenchOptions {
  /** Round trips per client (1 client) … */
  readonly roundTrips: number
  /** … and per client with 8 clients. */
  readonly roundTripsEach8: number
  readonly latencySamples: number
  readonly latencyWarmup: number
}

interface PerClients {
  readonly clients1: number
  readonly clients8: number
}

/** Rounds of `query-jobs` over TCP, alternating with the baseline's. */
const queryRounds = 4

const ratioTarget = 0.9
const p99TargetUs = 1000

export const qmp = (options: QmpBenchOptions) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* Effect.orDie(jobs.register(IdleDriver))
    const fs = yield* FileSystem.FileSystem
    const dir = yield* Effect.orDie(fs.makeTempDirectoryScoped({ prefix: "effect-jobs-bench-" }))
    const server = yield* Effect.orDie(Qmp.make({ socket: `${dir}/qmp.sock`, tcp: { port: 0 } }))
    const targets: Record<Transport, Qmp.Target> = { unix: { path: `${dir}/qmp.sock` }, tcp: { host: "127.0.0.1", port: 0 } }
    for (const address of server.addresses) {
      if (address._tag === "Tcp") targets.tcp = { host: address.host, port: address.port }
    }

    for (let i = 0; i < 100; i++) yield* Effect.orDie(jobs.run({ type: "idle", id: `q${i}` }))
    for (let k = 0; k < 8; k++) yield* Effect.orDie(jobs.run({ type: "idle", id: `p${k}` }))
    const queryReply = JSON.stringify({ return: (yield* Effect.orDie(Effect.scoped(Effect.flatMap(Qmp.connect(targets.unix), (c) => c.execute("query-jobs"))))) })
    const queryJobs: Command = () => ({ execute: "query-jobs" })
    const pauseResume: Command = (k, i) => ({ execute: i % 2 === 0 ? "job-pause" : "job-resume", arguments: { id: `p${k}` } })

    const measure = (target: Qmp.Target, command: Command, perPair: number) =>
      Effect.gen(function*() {
        yield* roundTrips(target, 1, Math.min(500, options.roundTrips), command) // warm-up
        const clients1 = yield* roundTrips(target, 1, options.roundTrips, command)
        const clients8 = yield* roundTrips(target, 8, options.roundTripsEach8, command)
        return { clients1: round(clients1 / perPair, 0), clients8: round(clients8 / perPair, 0) } satisfies PerClients
      })

    const figures = {} as Record<string, unknown>
    const query: Record<string, PerClients> = {}
    const pairs: Record<string, PerClients> = {}
    const latency: Record<string, LatencySummary> = {}
    for (const transport of ["unix", "tcp"] as const) {
      if (transport === "unix") {
        progress(`qmp: query-jobs (100 jobs) over ${transport}`)
        query[transport] = yield* measure(targets[transport], queryJobs, 1)
      }
      progress(`qmp: job-pause/job-resume pairs over ${transport}`)
      pairs[transport] = yield* measure(targets[transport], pauseResume, 2)
      progress(`qmp: status change → event over ${transport}`)
      latency[transport] = yield* eventLatency(jobs, targets[transport], options.latencySamples, options.latencyWarmup, transport)
    }

    // query-jobs over TCP and the baseline, in alternating rounds: the best round of each.
    const bare = yield* baselineServer(() => queryReply)
    const bareAddress = bare.address() as Net.AddressInfo
    const bareTarget: Qmp.Target = { host: "127.0.0.1", port: bareAddress.port }
    const perRound1 = Math.max(1, Math.round(options.roundTrips / queryRounds))
    const perRound8 = Math.max(1, Math.round(options.roundTripsEach8 / queryRounds))
    const best = { effectJobs: { clients1: 0, clients8: 0 }, baseline: { clients1: 0, clients8: 0 } }
    const latencies8 = { effectJobs: [] as Array<number>, baseline: [] as Array<number> }
    const sides = [["effectJobs", targets.tcp], ["baseline", bareTarget]] as const
    for (const [, target] of sides) yield* roundTrips(target, 1, Math.min(500, options.roundTrips), queryJobs) // warm-up
    for (let r = 0; r < queryRounds; r++) {
      progress(`qmp: query-jobs (100 jobs) over tcp and the baseline line server, round ${r + 1}/${queryRounds}`)
      for (const [side, target] of sides) {
        best[side].clients1 = Math.max(best[side].clients1, yield* roundTrips(target, 1, perRound1, queryJobs))
        best[side].clients8 = Math.max(
          best[side].clients8,
          yield* roundTrips(target, 8, perRound8, queryJobs, latencies8[side])
        )
      }
    }
    query.tcp = best.effectJobs
    const baseline = best.baseline
    const ratio = {
      clients1: round(best.effectJobs.clients1 / baseline.clients1, 2),
      clients8: round(best.effectJobs.clients8 / baseline.clients8, 2)
    }
    const latency8 = { effectJobs: summarize(latencies8.effectJobs), baseline: summarize(latencies8.baseline) }

    figures.method = "Client and server in one process (one Node event loop), effect-jobs's own QMP client. " +
      `Round trips: each client sends a command when the previous reply has arrived; 1 client × ${options.roundTrips} ` +
      `commands, then 8 clients × ${options.roundTripsEach8}, after a warm-up; figures are replies (or pause+resume ` +
      "pairs) per second, all clients together. query-jobs lists 100 idle jobs; each client pauses and resumes its own " +
      "idle job. Event latency: t0 just before jobs.start(job) in the server's process, t1 when the client's reader " +
      `parses the JOB_STATUS_CHANGE 'running' of that job; ${options.latencySamples} samples after ` +
      `${options.latencyWarmup} warm-up. Baseline: a bare node:net line server on 127.0.0.1 that parses each line and ` +
      "answers with the same query-jobs reply bytes. query-jobs over TCP and the baseline are measured in " +
      `${queryRounds} alternating rounds (1 client × ${perRound1}, then 8 clients × ${perRound8}, for each), after a ` +
      "warm-up of each; each figure is the best of its rounds; ratio = effect-jobs / baseline. Round-trip latency " +
      "with 8 clients: from each request's sending to its reply, every round pooled."
    figures.queryJobs100 = query
    figures.pauseResumePairs = pairs
    figures.eventLatency = latency
    figures.queryJobsTcp = {
      rounds: queryRounds,
      effectJobs: { ...best.effectJobs, latency8: latency8.effectJobs },
      baseline: { ...baseline, latency8: latency8.baseline },
      ratio,
      target: `ratio >= ${ratioTarget} with 1 and with 8 clients, and effect-jobs p99 <= ${p99TargetUs} µs with 8 clients`,
      meetsTarget: ratio.clients1 >= ratioTarget && ratio.clients8 >= ratioTarget && latency8.effectJobs.p99Us <= p99TargetUs
    }
    return figures
  }).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(Jobs.layer, NodeServices.layer)),
    Effect.annotateLogs({ bench: "qmp" })
  )
