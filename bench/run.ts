/**
 * The effect-jobs benchmark suite. Prints one JSON object to stdout (progress
 * goes to stderr): every figure with its baseline measured in the same process,
 * and their ratio.
 *
 *   node bench/run.ts           full run (about four and a half minutes on two cores; the
 *                               file drivers need 2 GiB free under os.tmpdir(), and the durable
 *                               figure PostgreSQL's initdb and postgres, see test/store/postgresCluster.ts)
 *   node bench/run.ts --quick   a tenth of the work, to check that it runs
 */
import { Effect } from "effect"
import { createRequire } from "node:module"
import { arch, cpus, loadavg, platform } from "node:os"
import { connectionLimits } from "./connectionLimits.ts"
import { durable } from "./durable.ts"
import { lifecycle } from "./lifecycle.ts"
import { latency } from "./latency.ts"
import { fileDrivers } from "./fileDrivers.ts"
import { httpApi } from "./http.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"
import { memory } from "./memory.ts"
import { pausePoint } from "./pausePoint.ts"
import { qmp } from "./qmp.ts"
import { transactions } from "./transactions.ts"

const quick = process.argv.includes("--quick")
const scale = (n: number) => (quick ? Math.max(1, Math.round(n / 10)) : n)

const effectVersion = (createRequire(import.meta.url)("effect/package.json") as { version: string }).version

const suite = Effect.gen(function*() {
  const startedAt = new Date()
  const loadBefore = loadavg()[0]!
  const start = now()
  progress(`effect-jobs benchmarks${quick ? " (--quick)" : ""}, node ${process.version}`)
  const lifecycleFigures = yield* lifecycle({
    jobs: scale(100_000),
    batch: 1_000,
    // Five rounds: on a shared virtual machine a slow spell can cover three in a row.
    rounds: 5,
    warmupJobs: scale(10_000)
  })
  const pausePointFigures = yield* pausePoint({
    iterations: scale(10_000_000),
    repetitions: 5,
    warmupIterations: scale(1_000_000)
  })
  const latencyFigures = yield* latency({ samples: scale(1_000), warmup: scale(100) })
  const memoryFigures = yield* memory({ jobs: scale(100_000) })
  const transactionFigures = yield* transactions({
    sizes: [scale(1_000), scale(10_000), scale(100_000)],
    abortSize: scale(10_000)
  })
  const durableFigures = yield* durable({
    jobs: scale(20_000),
    postgresJobs: scale(10_000),
    batch: 1_000,
    rounds: 3
  })
  const fileDriverFigures = yield* fileDrivers({
    fileBytes: quick ? 128 * 1024 * 1024 : 1024 * 1024 * 1024,
    chunkSizes: [256 * 1024, 1024 * 1024, 4 * 1024 * 1024, 8 * 1024 * 1024],
    rounds: quick ? 1 : 5,
    checkpointPairs: quick ? 0 : 6,
    rateBytesPerSecond: 50 * 1024 * 1024,
    rateSeconds: quick ? 1 : 5
  })
  const qmpFigures = yield* qmp({
    roundTrips: scale(20_000),
    roundTripsEach8: scale(5_000),
    latencySamples: scale(2_000),
    latencyWarmup: scale(200)
  })
  const httpFigures = yield* httpApi({
    roundTrips: scale(5_000),
    roundTripsEach8: scale(1_500),
    latencySamples: scale(1_000),
    latencyWarmup: scale(100)
  })
  const connectionLimitFigures = yield* connectionLimits({
    halfOpen: scale(5_000),
    slowLine: scale(300),
    holdSeconds: quick ? 3 : 12
  })
  const cpu = cpus()
  const fileCopy = fileDriverFigures.backupVsCp as { backupMiBps: number; cpSyncMiBps: number; ratio: number; meetsTarget?: boolean }
  const queryJobs = qmpFigures.queryJobsTcp as {
    ratio: { clients1: number; clients8: number }
    target: string
    meetsTarget: boolean
  }
  /** Every target of the benchmark, with what it is measured against, in one place. */
  const targets = [
    {
      figure: "no-op job lifecycle vs forkChild + join",
      value: `${lifecycleFigures.engine.nsPerJob} ns`,
      baseline: `${lifecycleFigures.baseline.nsPerJob} ns`,
      ratio: lifecycleFigures.ratio,
      target: "ratio <= 4",
      met: lifecycleFigures.meetsTarget
    },
    {
      figure: "heap per paused job (bare-Effect loop as baseline)",
      value: `${memoryFigures.engine.bytesPerPausedJob} B`,
      baseline: `${memoryFigures.baseline.bytesPerPausedJob} B`,
      ratio: memoryFigures.ratio,
      target: "<= 3072 B",
      met: memoryFigures.meetsTarget
    },
    {
      figure: "backup vs cp + sync",
      value: `${fileCopy.backupMiBps} MiB/s`,
      baseline: `${fileCopy.cpSyncMiBps} MiB/s`,
      ratio: fileCopy.ratio,
      target: "ratio >= 0.9",
      met: fileCopy.meetsTarget ?? fileCopy.ratio >= 0.9
    },
    {
      figure: "backup checkpoints (every 64 MiB, durable engine): cost in copy time",
      value: `${fileDriverFigures.checkpoints.costPercent} %`,
      baseline: `${fileDriverFigures.checkpoints.withoutMiBps} MiB/s without, ${fileDriverFigures.checkpoints.withCheckpointsMiBps} MiB/s with`,
      ratio: null,
      target: "<= 2 %",
      met: fileDriverFigures.checkpoints.meetsTarget
    },
    {
      figure: "QMP query-jobs (100 jobs) vs a bare line server, 1 and 8 clients",
      value: `${JSON.stringify(queryJobs.ratio)}`,
      baseline: "bare node:net server, same reply bytes",
      ratio: Math.min(queryJobs.ratio.clients1, queryJobs.ratio.clients8),
      target: queryJobs.target,
      met: queryJobs.meetsTarget
    },
    {
      figure: "one handle.update (progress), added to a loop step",
      value: `${pausePointFigures.update.addedNs} ns`,
      baseline: `plain loop ${pausePointFigures.nsPerIteration.plain} ns/iteration`,
      ratio: null,
      target: pausePointFigures.update.target,
      met: pausePointFigures.update.meetsTarget
    },
    {
      figure: "pausePoint vs Ref.get, added to a loop step",
      value: `${pausePointFigures.addedNsPerIteration.pausePoint} ns`,
      baseline: `${pausePointFigures.addedNsPerIteration.refGet} ns`,
      ratio: pausePointFigures.ratio,
      target: pausePointFigures.target,
      met: pausePointFigures.meetsTarget
    },
    {
      figure: "pause / force-cancel latency, p50",
      value: JSON.stringify(latencyFigures.ratioP50),
      baseline: "bare-Effect loops",
      ratio: null,
      target: latencyFigures.target,
      met: latencyFigures.meetsTarget
    },
    {
      figure: `transactions ${transactionFigures.scaling.of}`,
      value: `${transactionFigures.scaling.ratio}`,
      baseline: `linear: ${transactionFigures.scaling.linearWouldBe}`,
      ratio: transactionFigures.scaling.ratio,
      target: transactionFigures.scaling.target,
      met: transactionFigures.scaling.meetsTarget
    },
    {
      figure: "no-op job lifecycles with every event durable, SQLite store",
      value: `${durableFigures.targets.sqlite.lifecyclesPerSecond}/s`,
      baseline: `memory store ${durableFigures.memoryStore.lifecyclesPerSecond}/s`,
      ratio: durableFigures.ratioToMemoryStore.sqlite,
      target: durableFigures.targets.sqlite.target,
      met: durableFigures.targets.sqlite.meetsTarget
    },
    {
      figure: "no-op job lifecycles with every event durable, Postgres store (loopback)",
      value: durableFigures.targets.postgres.lifecyclesPerSecond === null
        ? "not measured: see durable.postgres.unavailable"
        : `${durableFigures.targets.postgres.lifecyclesPerSecond}/s`,
      baseline: `memory store ${durableFigures.memoryStore.lifecyclesPerSecond}/s`,
      ratio: durableFigures.ratioToMemoryStore.postgres,
      target: durableFigures.targets.postgres.target,
      met: durableFigures.targets.postgres.meetsTarget
    },
    {
      figure: "QMP server RSS under a flood of half-open and slow-line clients",
      value: `+${connectionLimitFigures.rss.growthPeakMB} MB peak`,
      baseline: `${connectionLimitFigures.rss.baselineIdleMB} MB idle`,
      ratio: null,
      target: `<= +${connectionLimitFigures.rss.targetGrowthMB} MB`,
      met: connectionLimitFigures.rss.met
    },
    {
      figure: "healthy client's query-jobs p99 during that flood",
      value: `${connectionLimitFigures.healthyQueryJobs.duringFlood.p99Us} µs`,
      baseline: `${connectionLimitFigures.healthyQueryJobs.baselineIdle.p99Us} µs idle`,
      ratio: null,
      target: `< ${connectionLimitFigures.healthyQueryJobs.targetP99Us} µs`,
      met: connectionLimitFigures.healthyQueryJobs.met
    }
  ]
  return {
    suite: "effect-jobs",
    timestamp: startedAt.toISOString(),
    quick,
    node: process.version,
    v8: process.versions.v8,
    effect: effectVersion,
    platform: `${platform()} ${arch()}`,
    cpu: { model: cpu[0]?.model ?? "unknown", cores: cpu.length },
    runtimeSeconds: round(elapsedNs(start) / 1e9, 1),
    /** The machine's 1-minute load average before and after the run: other work skews the figures. */
    loadAverage1m: { before: round(loadBefore, 2), after: round(loadavg()[0]!, 2) },
    targets,
    lifecycle: lifecycleFigures,
    pausePoint: pausePointFigures,
    latency: latencyFigures,
    memory: memoryFigures,
    transactions: transactionFigures,
    durable: durableFigures,
    fileDrivers: fileDriverFigures,
    qmp: qmpFigures,
    http: httpFigures,
    connectionLimits: connectionLimitFigures
  }
})

const report = await Effect.runPromise(suite)
process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
