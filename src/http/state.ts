/**
 * What the HTTP API keeps beside the engine: the ids it gives transactions,
 * the parameters of the jobs it created, the progress samples behind each
 * job's rate, and the signal that ends the event streams when the server
 * stops. One per API: `layer` builds it, and the handlers and the event
 * streams read it.
 */
import { Context, Deferred, Duration, Effect, Layer, Option, Schedule, Scheduler } from "effect"
import { monotonicMillis } from "../internal/monotonicMillis.ts"
import type { Job } from "../Job.ts"
import { Jobs, type JobsService } from "../Jobs.ts"
import * as JobStatus from "../JobStatus.ts"
import type { JobTxn } from "../JobTxn.ts"
import type { JobsSnapshot, JobView } from "./api.ts"
import { eta, Rates } from "./rates.ts"

/**
 * The options of the HTTP API.
 *
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  /** A comment on every event stream this often, so idle connections stay open (default 15 seconds). */
  readonly heartbeatInterval?: Duration.Input | undefined
  /** Events an event-stream client may fall behind before it is cut off (default 1024). */
  readonly eventBuffer?: number | undefined
  /** How often each job's progress is sampled for its rate (default 250 ms). */
  readonly sampleInterval?: Duration.Input | undefined
  /** How far back the rate looks (default 3 seconds). */
  readonly rateWindow?: Duration.Input | undefined
  /**
   * `Host` values (`name:port`) to accept besides the server's own address
   * (and, on a loopback address, `localhost`); a page whose `Origin` has one
   * of them is accepted too.
   */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** As the server stops, how long event streams may take to deliver the last events (default 2 seconds). */
  readonly shutdownGrace?: Duration.Input | undefined
  /**
   * Refuse every request that could change anything (every POST) with a 403
   * (`ReadOnly`); `GET /api/server` says so, and the dashboard offers no
   * actions (default `false`).
   */
  readonly readOnly?: boolean | undefined
  /** Serve the dashboard at `/` (default `true`). */
  readonly dashboard?: boolean | undefined
  /**
   * The flags of `effect-jobs qmp` that reach the QMP server serving the same
   * jobs (e.g. `["--socket", "/run/jobs.sock"]`), as `GET /api/server` tells
   * them; read at each request, so a server may give them once it listens.
   */
  readonly qmpFlags?: (() => ReadonlyArray<string> | undefined) | undefined
}

export interface StreamSettings {
  readonly heartbeat: Duration.Duration
  readonly capacity: number
}

/** An event stream being written. */
export interface ActiveStream {
  /** Completed once its body has ended. */
  readonly ended: Deferred.Deferred<void>
  /** Closes its connection at once. */
  readonly cutOff: Effect.Effect<void>
}

export interface HttpStateShape {
  readonly jobs: JobsService
  readonly options: HttpOptions
  readonly streams: StreamSettings
  /** Every job with an id, in creation order, and the seq of the last event the list reflects. */
  readonly snapshot: Effect.Effect<JobsSnapshot>
  /** One job as the API shows it, now. */
  readonly view: (job: Job) => JobView
  /** The id of a transaction created by a user; this API names them `t1`, `t2`, … as it first sees them. */
  readonly nameTxn: (txn: JobTxn) => string
  /** The transaction this API calls `id`, while one of its members is listed. */
  readonly findTxn: (id: string) => Effect.Effect<JobTxn | undefined>
  /** Keeps the parameters a job was created with (over this API). */
  readonly recordParams: (job: Job, params: unknown) => void
  /** The parameters a job was created with, if it was created over this API. */
  readonly paramsOf: (job: Job) => unknown
  /** Completed once the event streams are to end (the server is stopping). */
  readonly closing: Deferred.Deferred<void>
  /** The event streams being written. */
  readonly activeStreams: Set<ActiveStream>
  /**
   * Ends every event stream: each gets the events published so far, then
   * `event: shutdown`. A stream whose client has not taken it all within
   * `shutdownGrace` (twice: for the events, and for the end) is cut off.
   */
  readonly endStreams: Effect.Effect<void>
}

export class HttpState extends Context.Service<HttpState, HttpStateShape>()("effect-jobs/http/HttpState") {}

/** The transaction a job was created in, if a user made it (`JobTxn.make`); a job's own one is no one's to name. */
const userTxnOf = (job: Job): JobTxn | undefined => {
  // The engine's job record carries its transaction; only a user's is `explicit`.
  const txn = (job as { readonly txn?: { readonly explicit?: boolean } }).txn
  return txn !== undefined && txn.explicit === true ? txn as unknown as JobTxn : undefined
}

/** Three decimals are more than a rate or a time left means. */
const thousandths = (value: number): number => Math.round(value * 1000) / 1000

const nullable = (value: number | undefined): number | null => value === undefined ? null : thousandths(value)

const make = (options: HttpOptions) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const rates = new Rates(Duration.toMillis(options.rateWindow ?? "3 seconds"))
    const txnIds = new WeakMap<JobTxn, string>()
    let txnCount = 0
    const nameTxn = (txn: JobTxn): string => {
      let id = txnIds.get(txn)
      if (id === undefined) {
        id = `t${++txnCount}`
        txnIds.set(txn, id)
      }
      return id
    }

    const params = new WeakMap<Job, unknown>()

    const view = (job: Job): JobView => {
      const { current, total } = job.progress
      const rate = rates.rateOf(job)
      const txn = userTxnOf(job)
      const row: JobView = {
        id: job.id ?? "",
        type: job.type,
        status: job.status,
        currentProgress: current,
        totalProgress: total,
        ...(job.error === undefined ? {} : { error: job.error }),
        txn: txn === undefined ? null : nameTxn(txn),
        manualFinalize: !job.autoFinalize,
        manualDismiss: !job.autoDismiss,
        speed: job.speed,
        rate: rate === undefined ? null : thousandths(rate),
        // Once `run` has returned there is nothing left to estimate.
        eta: JobStatus.isCompleted(job.status) ? null : nullable(eta(current, total, rate)),
        busy: job.busy,
        paused: job.pauseCount > 0,
        userPaused: job.userPaused
      }
      return row
    }

    /** The listed jobs' objects, read in the same step as the list. */
    const listedJobs = Effect.gen(function*() {
      const snapshot = yield* jobs.snapshot
      const found: Array<Job> = []
      for (const row of snapshot.jobs) {
        const job = yield* Effect.option(jobs.get(row.id))
        if (Option.isSome(job)) found.push(job.value)
      }
      return { seq: snapshot.seq, jobs: found }
    }).pipe(
      // No other fiber runs between the snapshot and the look-ups: no job can be dismissed in between.
      Effect.provideService(Scheduler.PreventSchedulerYield, true)
    )

    const findTxn = (id: string): Effect.Effect<JobTxn | undefined> =>
      Effect.map(listedJobs, (listed) => {
        for (const job of listed.jobs) {
          const txn = userTxnOf(job)
          if (txn !== undefined && txnIds.get(txn) === id) return txn
        }
        return undefined
      })

    const snapshot: Effect.Effect<JobsSnapshot> = Effect.map(listedJobs, (listed) => ({
      seq: listed.seq,
      jobs: listed.jobs.map(view)
    }))

    const sample = Effect.gen(function*() {
      const listed = yield* listedJobs
      // Monotonic: a wall clock that jumps would make a rate out of the jump.
      const now = yield* monotonicMillis
      rates.sample(now, listed.jobs.map((job) => ({ job, current: job.progress.current })))
    })
    yield* sample.pipe(
      Effect.repeat(Schedule.spaced(options.sampleInterval ?? "250 millis")),
      Effect.forkScoped({ startImmediately: true })
    )

    const closing = yield* Deferred.make<void>()
    const activeStreams = new Set<ActiveStream>()
    const grace = options.shutdownGrace ?? "2 seconds"
    const endStreams = Effect.gen(function*() {
      yield* Effect.timeoutOrElse(jobs.awaitDelivered, { duration: grace, orElse: () => Effect.void })
      yield* Deferred.succeed(closing, undefined)
      const ending = Array.from(activeStreams)
      yield* Effect.timeoutOrElse(
        Effect.forEach(ending, (stream) => Deferred.await(stream.ended), { discard: true }),
        { duration: grace, orElse: () => Effect.void }
      )
      for (const stream of ending) if (!Deferred.isDoneUnsafe(stream.ended)) yield* stream.cutOff
    })

    return HttpState.of({
      jobs,
      options,
      streams: {
        heartbeat: Duration.fromInputUnsafe(options.heartbeatInterval ?? "15 seconds"),
        capacity: options.eventBuffer ?? 1024
      },
      snapshot,
      view,
      nameTxn,
      findTxn,
      recordParams: (job, value) => params.set(job, value),
      paramsOf: (job) => params.get(job),
      closing,
      activeStreams,
      endStreams
    })
  })

/**
 * The API's state over `Jobs`. Its event streams end when it closes, or
 * earlier with `endStreams`.
 */
export const layer = (options: HttpOptions = {}): Layer.Layer<HttpState, never, Jobs> =>
  Layer.effect(
    HttpState,
    Effect.tap(make(options), (state) => Effect.addFinalizer(() => Deferred.succeed(state.closing, undefined)))
  )
