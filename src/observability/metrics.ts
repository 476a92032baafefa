/**
 * The package's metrics, as effect `Metric`s: every name, type and label is
 * defined here, and they reach Prometheus (`PrometheusMetrics`) and OTLP
 * (`OtlpMetrics`) like any other metric of the program.
 *
 * Nothing on the engine's hot paths calls into effect's metric machinery.
 * Each series is a plain number (or a few, for the histogram) that the engine
 * bumps in a step it takes anyway, registered with `Metric.registerUnsafe` so
 * that exporters read it at scrape time. What the engine already knows is not
 * counted at all but computed when read: the jobs in each status, and the
 * progress of the jobs still running. A driver's `update` stays a single
 * addition.
 *
 * Series live in a metric registry (`Metric.MetricRegistry`, one per process
 * unless a program provides its own): an engine, a QMP server or an HTTP
 * server counts into the registry of the context it was built in, and every
 * engine of a registry adds to the same series.
 */
import { type Cause, Context, Effect, Exit, Metric, type Scope } from "effect"
import type { Server, Socket } from "node:net"
import type { JobOutcome } from "../Job.ts"
import type { EngineState, JobRecord } from "../internal/jobRecord.ts"
import type { JobStatus } from "../JobStatus.ts"
import * as JobStatusTable from "../JobStatus.ts"

/** The prefix of every metric name. */
export const prefix = "effect_jobs_"

/** Every metric: its name, type, labels and what it counts (the docs' table is checked against it). */
export const definitions = {
  created: {
    name: `${prefix}created_total`,
    type: "counter",
    labels: ["type"],
    description: "Jobs created (made by their driver and published), by type"
  },
  concluded: {
    name: `${prefix}concluded_total`,
    type: "counter",
    labels: ["type", "outcome"],
    description: "Jobs concluded, by type and outcome (Succeeded, Failed, Cancelled)"
  },
  inStatus: {
    name: `${prefix}in_status`,
    type: "gauge",
    labels: ["status"],
    description: "Jobs in each status now (not yet dismissed), counted when read"
  },
  duration: {
    name: `${prefix}duration_seconds`,
    type: "histogram",
    labels: ["type"],
    description: "Time from start to CONCLUDED on the engine's clock, by type (jobs that started)"
  },
  unitsDone: {
    name: `${prefix}units_done_total`,
    type: "counter",
    labels: ["type"],
    description: "Progress units done (bytes for the file drivers), by type: concluded jobs, plus the others' progress when read"
  },
  verbRequests: {
    name: `${prefix}verb_requests_total`,
    type: "counter",
    labels: ["verb", "result"],
    description: "Verb requests to the Jobs service, by verb and result (ok, or the error's tag)"
  },
  connectionsOpen: {
    name: `${prefix}connections_open`,
    type: "gauge",
    labels: ["protocol"],
    description: "Client connections open now, by protocol (qmp, http)"
  },
  connections: {
    name: `${prefix}connections_total`,
    type: "counter",
    labels: ["protocol"],
    description: "Client connections accepted, by protocol (qmp, http)"
  },
  eventOverflows: {
    name: `${prefix}event_overflows_total`,
    type: "counter",
    labels: [],
    description:
      "Event subscriptions cut off (EventsOverflow) because their reader fell a whole buffer behind: they get no further events"
  },
  storeWriteFailures: {
    name: `${prefix}store_write_failures_total`,
    type: "counter",
    labels: [],
    description:
      "Commits to the durable job store that failed (disk full, database down, lease lost); while they fail, new jobs are refused"
  }
} as const

/** Upper bounds of the duration histogram's buckets, in seconds. */
export const durationBoundaries: ReadonlyArray<number> = [
  0.001,
  0.01,
  0.1,
  0.5,
  1,
  5,
  10,
  30,
  60,
  300,
  900,
  1800,
  3600,
  4 * 3600,
  24 * 3600
]

/** The statuses `in_status` reports: every status a job not yet dismissed can be in. */
export const reportedStatuses: ReadonlyArray<JobStatus> = JobStatusTable.all.filter((s) => s !== "undefined" && s !== "null")

export type Protocol = "qmp" | "http"

/** One counter or gauge series: a plain number, read by the exporters. */
export class Cell {
  value = 0
}

/** One histogram series: bucket counts kept by hand, in `Metric.HistogramState`'s shape when read. */
export class HistogramCell {
  readonly bounds: ReadonlyArray<number>
  readonly counts: Array<number>
  count = 0
  sum = 0
  min = Number.MAX_VALUE
  max = -Number.MAX_VALUE
  constructor(bounds: ReadonlyArray<number>) {
    this.bounds = bounds
    this.counts = bounds.map(() => 0)
  }

  observe(value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    if (i < bounds.length) this.counts[i]!++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }

  state(): Metric.HistogramState {
    let cumulative = 0
    const buckets = this.bounds.map((bound, i): [number, number] => [bound, (cumulative += this.counts[i]!)])
    return { buckets, count: this.count, sum: this.sum, min: this.min, max: this.max }
  }
}

const noop = () => {}

/** What the series of one job type count. */
export interface TypeMetrics {
  readonly created: Cell
  readonly concluded: { readonly [O in JobOutcome["_tag"]]: Cell }
  /** Units of the jobs of this type that have concluded. */
  readonly unitsConcluded: Cell
  readonly duration: HistogramCell
}

/** The series of one metric registry, and the engines that count into it. */
export class JobMetrics {
  /** The registry, as a context: what `Metric.registerUnsafe` reads it from. */
  readonly context: Context.Context<never>
  /** Engines alive now: the status gauges and the units of running jobs are read from them. */
  readonly engines = new Set<EngineState>()
  private readonly types = new Map<string, TypeMetrics>()
  private readonly verbs = new Map<string, Cell>()
  private readonly protocols = new Map<Protocol, { readonly open: Cell; readonly total: Cell }>()
  readonly eventOverflows: Cell
  readonly storeWriteFailures: Cell

  constructor(registry: Metric.MetricRegistry) {
    this.context = Context.make(Metric.MetricRegistry, registry)
    for (const status of reportedStatuses) {
      this.gauge(definitions.inStatus, { status }, () => this.countInStatus(status))
    }
    this.eventOverflows = this.counter(definitions.eventOverflows, {})
    this.storeWriteFailures = this.counter(definitions.storeWriteFailures, {})
  }

  private register<S>(metric: Metric.Metric<never, S>, get: () => S): void {
    Metric.registerUnsafe(metric, this.context, { get, update: noop, modify: noop })
  }

  private counter(definition: Definition, attributes: Record<string, string>, extra?: () => number): Cell {
    const cell = new Cell()
    const metric = Metric.counter(definition.name, { description: definition.description, attributes, incremental: true })
    this.register(
      metric,
      extra === undefined
        ? () => ({ count: cell.value, incremental: true })
        : () => ({ count: cell.value + extra(), incremental: true })
    )
    return cell
  }

  private gauge(definition: Definition, attributes: Record<string, string>, get: () => number): void {
    this.register(Metric.gauge(definition.name, { description: definition.description, attributes }), () => ({ value: get() }))
  }

  /** The series of a job type, registered when the first job of the type is created. */
  type(type: string): TypeMetrics {
    let metrics = this.types.get(type)
    if (metrics === undefined) {
      const outcome = (outcome: JobOutcome["_tag"]) => this.counter(definitions.concluded, { type, outcome })
      const duration = new HistogramCell(durationBoundaries)
      this.register(
        Metric.histogram(definitions.duration.name, {
          description: definitions.duration.description,
          attributes: { type },
          boundaries: durationBoundaries
        }),
        () => duration.state()
      )
      metrics = {
        created: this.counter(definitions.created, { type }),
        concluded: { Succeeded: outcome("Succeeded"), Failed: outcome("Failed"), Cancelled: outcome("Cancelled") },
        unitsConcluded: this.counter(definitions.unitsDone, { type }, () => this.unitsInProgress(type)),
        duration
      }
      this.types.set(type, metrics)
    }
    return metrics
  }

  /** The series of one verb and result. */
  verb(verb: string, result: string): Cell {
    const key = `${verb} ${result}`
    let cell = this.verbs.get(key)
    if (cell === undefined) {
      cell = this.counter(definitions.verbRequests, { verb, result })
      this.verbs.set(key, cell)
    }
    return cell
  }

  /** The connection series of a protocol. */
  connections(protocol: Protocol): { readonly open: Cell; readonly total: Cell } {
    let cells = this.protocols.get(protocol)
    if (cells === undefined) {
      const open = new Cell()
      this.gauge(definitions.connectionsOpen, { protocol }, () => open.value)
      cells = { open, total: this.counter(definitions.connections, { protocol }) }
      this.protocols.set(protocol, cells)
    }
    return cells
  }

  private countInStatus(status: JobStatus): number {
    let n = 0
    for (const engine of this.engines) {
      for (const job of engine.jobs.values()) if (job.status === status) n++
    }
    return n
  }

  /** Progress of the jobs of `type` that have not concluded (a concluded job's is in `unitsConcluded`). */
  private unitsInProgress(type: string): number {
    let n = 0
    for (const engine of this.engines) {
      for (const job of engine.jobs.values()) if (job.type === type && job.status !== "concluded") n += job.current
    }
    return n
  }
}

interface Definition {
  readonly name: string
  readonly description: string
}

const byRegistry = new WeakMap<Metric.MetricRegistry, JobMetrics>()

/** The series of `registry`, registered in it on first use. */
export const forRegistry = (registry: Metric.MetricRegistry): JobMetrics => {
  let metrics = byRegistry.get(registry)
  if (metrics === undefined) {
    metrics = new JobMetrics(registry)
    byRegistry.set(registry, metrics)
  }
  return metrics
}

/** The series of the registry in `context` (the process's default registry unless one is provided). */
export const fromContext = (context: Context.Context<never>): JobMetrics =>
  forRegistry(Context.get(context, Metric.MetricRegistry))

// ---- the engine's hooks: each a few additions, in a step the engine takes anyway

/** A job was created (its driver made it, and it is published). */
export const jobCreated = (job: JobRecord): void => {
  job.engine.metrics.type(job.type).created.value++
}

/** A job is about to become CONCLUDED with its final outcome; `now` is the engine clock in milliseconds. */
export const jobConcluding = (job: JobRecord, now: number): void => {
  const metrics = job.engine.metrics.type(job.type)
  metrics.concluded[job.outcome()._tag].value++
  metrics.unitsConcluded.value += job.current
  if (job.started) metrics.duration.observe(Math.max(0, now - job.engine.epoch - job.startedAt) / 1000)
}

/** The `result` label of a verb request that failed: the error's tag, `defect` or `interrupted`. */
export const failureResult = (cause: Cause.Cause<unknown>): string => {
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") {
      const error = reason.error
      return typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
        ? error._tag
        : "error"
    }
  }
  return cause.reasons.some((reason) => reason._tag === "Die") ? "defect" : "interrupted"
}

/** Counts each run of a verb's Effect in `verb_requests_total`, by its result. */
export const verbCounter = (metrics: JobMetrics, verb: string) => {
  const ok = metrics.verb(verb, "ok")
  // One finalizer per verb, shared by every call.
  const count = (exit: Exit.Exit<unknown, unknown>) => {
    if (Exit.isSuccess(exit)) ok.value++
    else metrics.verb(verb, failureResult(exit.cause)).value++
    return Effect.void
  }
  return <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> => Effect.onExit(effect, count)
}

// ---- connections

/**
 * Counts a connection as open (and accepted) in the registry of `context`;
 * the function returned counts it closed (once, however often it is called).
 * For servers that learn of connections in callbacks, e.g. Node's
 * `server.on("connection", (socket) => socket.once("close", connectionOpenedUnsafe(context, "http")))`.
 */
export const connectionOpenedUnsafe = (context: Context.Context<never>, protocol: Protocol): () => void => {
  const cells = fromContext(context).connections(protocol)
  cells.total.value++
  cells.open.value++
  let open = true
  return () => {
    if (open) cells.open.value--
    open = false
  }
}

/**
 * Counts every connection a Node server (`net.Server`, `http.Server`) accepts
 * from now on, until its socket closes, in the registry of `context`.
 */
export const countServerConnections = (server: Server, context: Context.Context<never>, protocol: Protocol): void => {
  server.on("connection", (socket: Socket) => {
    socket.once("close", connectionOpenedUnsafe(context, protocol))
  })
}

/** Counts a connection as open for the lifetime of the current scope. */
export const trackConnection = (protocol: Protocol): Effect.Effect<void, never, Scope.Scope> =>
  Effect.asVoid(Effect.acquireRelease(
    Effect.contextWith((context: Context.Context<never>) => Effect.sync(() => connectionOpenedUnsafe(context, protocol))),
    (closed) => Effect.sync(closed)
  ))
