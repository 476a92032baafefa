/**
 * The QMP server under a flood of clients that cost it memory without doing
 * anything: `halfOpen` clients that connect and send nothing or the start of a
 * message, and `slowLine` clients that negotiate, then send an unfinished
 * message of about 1 MiB, 64 KiB at a time, and stop just before its end.
 * Meanwhile one healthy client, connected before the flood, sends `query-jobs`
 * (100 jobs) one after the other.
 *
 * Three processes, all on 127.0.0.1, so that the server's memory is its own:
 *
 *   node bench/connectionLimits.ts --server          the server, default limits
 *   node bench/connectionLimits.ts --load PORT H S    the flood (H half-open, S slow-line clients)
 *   `connectionLimits(…)`, in the bench's process      the healthy client; reads the server's VmRSS
 *                                                     from /proc/PID/status every 50 ms
 *
 * Both children run with their file-descriptor limit raised to the hard limit;
 * the server with the V8 options `effect-jobs serve` runs with.
 * Baselines: the server's RSS before the flood (idle, the healthy client
 * connected and warmed up), and the healthy client's latency then. Targets:
 * the RSS stays within +64 MB of idle during the whole flood, and the healthy
 * client's p99 stays under 5 ms.
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Effect, Layer, References } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import * as Jobs from "../src/Jobs.ts"
import * as Qmp from "../src/Qmp.ts"
import { serverNodeOptions } from "../src/cli/serverHeap.ts"
import { defaultMaxConnections, defaultPartialMessageBudget } from "../src/qmp/server.ts"
import { elapsedNs, now, progress, round, summarize } from "./measure.ts"
import { IdleDriver } from "./idleDriver.ts"

const self = fileURLToPath(import.meta.url)
const kib = 1024

// ---- the server process


const serverMain = Effect.gen(function*() {
  const jobs = yield* Jobs.Jobs
  yield* Effect.orDie(jobs.register(IdleDriver))
  for (let i = 0; i < 100; i++) yield* Effect.orDie(jobs.run({ type: "idle", id: `q${i}` }))
  const server = yield* Qmp.make({ socket: false, tcp: { port: 0 } })
  const address = server.addresses[0]!
  process.stdout.write(`listening ${address._tag === "Tcp" ? address.port : 0}\n`)
  // "gc" on stdin: a full collection, then what is still in use (the heap, and buffers outside it).
  process.stdin.setEncoding("utf8")
  process.stdin.on("data", (text: string) => {
    if (!text.includes("gc")) return
    const gc = (globalThis as { gc?: () => void }).gc
    gc?.()
    gc?.()
    const memory = process.memoryUsage()
    process.stdout.write(`memory ${JSON.stringify({ heapUsed: memory.heapUsed, external: memory.external })}\n`)
  })
  return yield* server.awaitShutdown
}).pipe(
  Effect.scoped,
  // Every client closed for a limit is logged: not what this measures, and not worth a pipe.
  Effect.provide(Layer.mergeAll(Jobs.layer, NodeServices.layer, Layer.succeed(References.MinimumLogLevel, "Error")))
)

// ---- the flood process

/** What a flood client saw first after connecting. */
type Outcome = "greeted" | "turnedAway" | "closedWithError" | "closedSilently" | "connectFailed"

interface FloodCounts {
  readonly halfOpen: Record<Outcome, number>
  readonly slowLine: Record<Outcome, number>
  /** Slow-line clients that the server closed, by the error they got. */
  readonly slowLineErrors: Record<string, number>
  readonly slowLineBytesSent: number
}

const emptyCounts = (): Record<Outcome, number> => ({
  greeted: 0,
  turnedAway: 0,
  closedWithError: 0,
  closedSilently: 0,
  connectFailed: 0
})

const loadMain = async (port: number, halfOpen: number, slowLine: number) => {
  const sockets: Array<Net.Socket> = []
  const counts: FloodCounts = { halfOpen: emptyCounts(), slowLine: emptyCounts(), slowLineErrors: {}, slowLineBytesSent: 0 }
  let bytesSent = 0
  /** Connects; resolves with the first outcome; `onGreeting` runs when the greeting comes. */
  const client = (kind: "halfOpen" | "slowLine", onGreeting: (socket: Net.Socket) => void) =>
    new Promise<void>((resolve) => {
      const socket = Net.connect({ host: "127.0.0.1", port })
      sockets.push(socket)
      let outcome: Outcome | undefined
      let pending = ""
      /** The last line received: what the server said as it closed the connection, if anything. */
      let last = ""
      const settle = (o: Outcome) => {
        if (outcome === undefined) {
          outcome = o
          counts[kind][o]++
          resolve()
        }
      }
      socket.on("data", (chunk: Buffer) => {
        pending += chunk.toString("utf8")
        let newline: number
        while ((newline = pending.indexOf("\n")) >= 0) {
          last = pending.slice(0, newline)
          pending = pending.slice(newline + 1)
          if (outcome !== undefined) continue
          if (last.startsWith('{"QMP"')) {
            settle("greeted")
            onGreeting(socket)
          } else settle(last.includes("Too many connections") ? "turnedAway" : "closedWithError")
        }
      })
      socket.on("error", () => settle("connectFailed"))
      socket.on("close", () => {
        settle("closedSilently")
        if (kind === "slowLine" && last.startsWith('{"error"')) {
          const desc = (JSON.parse(last) as { error: { desc: string } }).error.desc
          counts.slowLineErrors[desc] = (counts.slowLineErrors[desc] ?? 0) + 1
        }
      })
    })

  // Slow-line clients first: they take the places. Each sends 64 KiB every 50 ms and stops
  // 16 bytes short of 1 MiB, its message unfinished.
  const head = `{"execute": "query-jobs", "id": "`
  const piece = "x".repeat(64 * kib)
  const slow = (socket: Net.Socket) => {
    socket.write(`{"execute": "qmp_capabilities"}\n${head}`)
    let sent = head.length
    const timer = setInterval(() => {
      if (socket.destroyed || sent + piece.length > 1024 * kib - 16) return clearInterval(timer)
      socket.write(piece)
      sent += piece.length
      bytesSent += piece.length
    }, 50)
    socket.on("close", () => clearInterval(timer))
  }
  await Promise.all(Array.from({ length: slowLine }, () => client("slowLine", slow)))
  process.stdout.write(`${JSON.stringify({ phase: "slow-line connected" })}\n`)

  // Then the half-open flood, at most 200 connecting at a time (the listen backlog is 511).
  let next = 0
  const half = (socket: Net.Socket, i: number) => {
    if (i % 2 === 1) socket.write(`{"execute": "qmp_capab`)
  }
  await Promise.all(Array.from({ length: 200 }, async () => {
    while (next < halfOpen) {
      const i = next++
      await client("halfOpen", (socket) => half(socket, i))
    }
  }))
  process.stdout.write(`${JSON.stringify({ phase: "flood connected" })}\n`)

  // The counts, when asked (stdin closes).
  process.stdin.resume()
  process.stdin.on("end", () => {
    process.stdout.write(`${JSON.stringify({ phase: "counts", counts: { ...counts, slowLineBytesSent: bytesSent } })}\n`)
    for (const socket of sockets) socket.destroy()
    process.exit(0)
  })
}

// ---- the bench's process

/** Node with its file-descriptor limit raised as far as allowed, running this file with `args`. */
const spawnChild = (args: ReadonlyArray<string>, flags: ReadonlyArray<string> = []): ChildProcess =>
  spawn("sh", ["-c", `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"`, process.execPath, ...flags, self, ...args], {
    stdio: ["pipe", "pipe", "inherit"]
  })

/** Resolves with the first stdout line that `accept` turns into a value. */
const lineFrom = <A>(child: ChildProcess, accept: (line: string) => A | undefined): Promise<A> =>
  new Promise((resolve, reject) => {
    let text = ""
    const onData = (chunk: Buffer) => {
      text += chunk.toString("utf8")
      let newline: number
      while ((newline = text.indexOf("\n")) >= 0) {
        const value = accept(text.slice(0, newline))
        text = text.slice(newline + 1)
        if (value !== undefined) {
          child.stdout!.off("data", onData)
          return resolve(value)
        }
      }
    }
    child.stdout!.on("data", onData)
    child.once("exit", (code) => reject(new Error(`bench child exited (${code})`)))
  })

/** What the server still uses after a full collection: its heap, and the buffers outside it, in MB. */
const retainedMB = async (server: ChildProcess): Promise<number> => {
  const line = lineFrom(server, (l) => (l.startsWith("memory ") ? l.slice(7) : undefined))
  server.stdin!.write("gc\n")
  const memory = JSON.parse(await line) as { heapUsed: number; external: number }
  return round((memory.heapUsed + memory.external) / (1 << 20), 1)
}

const rssMB = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? Number.NaN)
  return round(kb / 1024, 1)
}

/** A minimal client for the healthy one: round trips of `query-jobs`, timed from write to reply. */
const healthyClient = (port: number) =>
  new Promise<{ readonly roundTrip: () => Promise<number>; readonly close: () => void }>((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port, noDelay: true })
    let text = ""
    let waiting: ((line: string) => void) | undefined
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("utf8")
      let newline: number
      while ((newline = text.indexOf("\n")) >= 0) {
        const line = text.slice(0, newline)
        text = text.slice(newline + 1)
        const wake = waiting
        waiting = undefined
        wake?.(line)
      }
    })
    socket.once("error", reject)
    const next = () => new Promise<string>((r) => (waiting = r))
    let id = 0
    const roundTrip = async () => {
      const tag = `h${id++}`
      const start = now()
      socket.write(`{"execute": "query-jobs", "id": "${tag}"}\n`)
      for (let line = await next(); !line.includes(`"id":"${tag}"`); line = await next()) { /* an event */ }
      return elapsedNs(start)
    }
    void next().then(async (greeting) => {
      if (!greeting.startsWith('{"QMP"')) return reject(new Error(`not greeted: ${greeting}`))
      socket.write(`{"execute": "qmp_capabilities"}\n`)
      await next()
      resolve({ roundTrip, close: () => socket.destroy() })
    })
  })

export interface ConnectionLimitsOptions {
  readonly halfOpen: number
  readonly slowLine: number
  /** How long the flood is measured once every flood client has connected. */
  readonly holdSeconds: number
}

const rssTargetMB = 64
const p99TargetUs = 5000

const run = async (options: ConnectionLimitsOptions) => {
  // With the V8 options `effect-jobs serve` runs with; --expose-gc only for the "gc" request below.
  const server = spawnChild(["--server"], [...serverNodeOptions, "--expose-gc"])
  const load: { child?: ChildProcess } = {}
  try {
    const port = await lineFrom(server, (line) => (line.startsWith("listening ") ? Number(line.slice(10)) : undefined))
    const pid = server.pid!
    const healthy = await healthyClient(port)
    progress(`connection limits: server pid ${pid} on port ${port}; warming up`)
    for (let i = 0; i < 2000; i++) await healthy.roundTrip()
    const idleLatencies: Array<number> = []
    for (let i = 0; i < 1000; i++) idleLatencies.push(await healthy.roundTrip())
    const idleSamples = [] as Array<number>
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 100))
      idleSamples.push(rssMB(pid))
    }
    const idleMB = Math.max(...idleSamples)
    const retainedIdleMB = await retainedMB(server)

    progress(`connection limits: ${options.slowLine} slow-line and ${options.halfOpen} half-open clients`)
    const rss: Array<number> = []
    const sampler = setInterval(() => rss.push(rssMB(pid)), 50)
    const start = now()
    const child = (load.child = spawnChild(["--load", String(port), String(options.halfOpen), String(options.slowLine)]))
    const connected = lineFrom(child, (line) => (line.includes("flood connected") ? true : undefined))
    let floodConnected = false
    void connected.then(() => (floodConnected = true), () => undefined)
    const latencies: Array<number> = []
    let connectedAt = 0
    // Round trips from the flood's start until `holdSeconds` after its last client connected.
    while (!floodConnected || elapsedNs(start) / 1e9 < connectedAt + options.holdSeconds) {
      latencies.push(await healthy.roundTrip())
      if (floodConnected && connectedAt === 0) connectedAt = elapsedNs(start) / 1e9
    }
    clearInterval(sampler)
    const endMB = rssMB(pid)
    // With the flood still connected.
    const retainedFloodMB = await retainedMB(server)
    const countsLine = lineFrom(child, (line) => (line.includes('"counts"') ? line : undefined))
    child.stdin!.end()
    const counts = (JSON.parse(await countsLine) as { counts: FloodCounts }).counts
    healthy.close()

    const peakMB = Math.max(...rss)
    const loaded = summarize(latencies)
    const idle = summarize(idleLatencies)
    return {
      method: "Server, flood and healthy client in three processes on 127.0.0.1; the server with the V8 options " +
        `of effect-jobs serve (${serverNodeOptions.join(" ")}) and its default limits ` +
        `(${defaultMaxConnections} connections, 10 s negotiation timeout, 30 s partial-message timeout, ` +
        `${defaultPartialMessageBudget / (1 << 20)} MiB partial-message budget) and 100 idle jobs. Flood: ${options.slowLine} slow-line clients (negotiate, then an ` +
        "unfinished ~1 MiB query-jobs message, 64 KiB every 50 ms, stopping 16 bytes short of its end), then " +
        `${options.halfOpen} half-open clients (connect; every other one sends '{"execute": "qmp_capab' and nothing ` +
        "more), at most 200 connecting at a time. The healthy client, connected before, sends query-jobs one after " +
        `the other from the flood's start until ${options.holdSeconds} s after its last client connected. RSS: VmRSS ` +
        "of the server process every 50 ms; idle = the highest of 5 samples after the healthy client's warm-up.",
      clients: { halfOpen: options.halfOpen, slowLine: options.slowLine },
      floodSeconds: round(connectedAt, 1),
      measuredSeconds: round(elapsedNs(start) / 1e9, 1),
      flood: counts,
      rss: {
        baselineIdleMB: idleMB,
        peakMB,
        endMB,
        growthPeakMB: round(peakMB - idleMB, 1),
        targetGrowthMB: rssTargetMB,
        met: peakMB - idleMB <= rssTargetMB,
        note: "Peak RSS counts garbage not collected yet, and what the allocator keeps of freed memory; " +
          "'retained' is what the clients still hold after a full collection.",
        /** Heap used + buffers after a full collection: what the clients actually cost, garbage excluded. */
        retained: {
          baselineIdleMB: retainedIdleMB,
          duringFloodMB: retainedFloodMB,
          growthMB: round(retainedFloodMB - retainedIdleMB, 1),
          met: retainedFloodMB - retainedIdleMB <= rssTargetMB
        }
      },
      healthyQueryJobs: {
        baselineIdle: idle,
        duringFlood: loaded,
        targetP99Us: p99TargetUs,
        met: loaded.p99Us < p99TargetUs
      }
    }
  } finally {
    load.child?.kill("SIGKILL")
    server.kill("SIGKILL")
  }
}

export const connectionLimits = (options: ConnectionLimitsOptions) => Effect.promise(() => run(options))

// ---- entry points of the children

if (process.argv[1] === self) {
  if (process.argv[2] === "--server") {
    NodeRuntime.runMain(serverMain)
  } else if (process.argv[2] === "--load") {
    const [port, halfOpen, slowLine] = process.argv.slice(3).map(Number)
    void loadMain(port!, halfOpen!, slowLine!)
  }
}
