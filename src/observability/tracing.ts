/**
 * Traces of jobs, on effect's `Tracer`: one span per job (`job <type>`, from
 * creation to CONCLUDED), an event on it for each status change, and a child
 * span for each driver callback the engine runs (`run`, `prepare`, `commit`,
 * `abort`, `clean`, `cancel`, `complete`). Spans the driver makes inside a
 * callback are children of the callback's span.
 *
 * A job's span is a root span: a job outlives the request that created it by
 * far, so it gets a trace of its own, linked to the span that created it (a
 * QMP command's, an HTTP request's) when there is one.
 *
 * An engine traces only if a real tracer is installed where it is built
 * (effect's default tracer records nothing anyone reads): without one, no
 * span is ever made and the engine's only cost is a field that stays
 * `undefined`.
 */
import { Clock, Context, Effect, Exit, Option, References, Tracer } from "effect"
import { JobFailed } from "../JobError.ts"
import type { JobRecord } from "../internal/jobRecord.ts"
import type { TxnState } from "../internal/txnState.ts"
import type { JobStatus } from "../JobStatus.ts"

/** An engine's tracer and clock (span times are on the engine's clock). */
export interface JobTracing {
  readonly tracer: Tracer.Tracer
  readonly clock: Clock.Clock
}

/** Whether `context` has a tracer that records spans (not effect's default one, and tracing not disabled). */
export const tracingIn = (context: Context.Context<never>): boolean =>
  Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer && Context.get(context, References.TracerEnabled)

/** The tracing of an engine built in `context`; `undefined` (trace nothing) without a real tracer. */
export const fromContext = (context: Context.Context<never>): JobTracing | undefined =>
  tracingIn(context)
    ? { tracer: Context.get(context, Tracer.Tracer), clock: Context.get(context, Clock.Clock) }
    : undefined

/** Transactions get a number the first time a span names them: the members of one share it. */
const txnIds = new WeakMap<TxnState, string>()
let lastTxnId = 0
const txnId = (txn: TxnState): string => {
  let id = txnIds.get(txn)
  if (id === undefined) {
    id = `txn-${++lastTxnId}`
    txnIds.set(txn, id)
  }
  return id
}

/** Opens the span of a job just created, before its first status change; `creator` is the creating span, if any. */
export const startJobSpan = (job: JobRecord, tracing: JobTracing, creator: Option.Option<Tracer.AnySpan>): void => {
  const span = tracing.tracer.span({
    name: `job ${job.type}`,
    parent: Option.none(),
    annotations: Context.empty(),
    links: Option.isSome(creator) ? [{ span: creator.value, attributes: { "effect_jobs.link": "created by" } }] : [],
    startTime: tracing.clock.currentTimeNanosUnsafe(),
    kind: "internal",
    root: true,
    sampled: true
  })
  if (job.id !== undefined) span.attribute("job.id", job.id)
  span.attribute("job.type", job.type)
  span.attribute("job.txn", txnId(job.txn))
  if (job.txn.explicit) span.attribute("job.txn.explicit", true)
  job.span = span
}

/**
 * Records a status change on the job's span; at CONCLUDED the span ends, with
 * the outcome (a failure carries the job's error; a cancel ends it as interrupted).
 */
export const statusChanged = (job: JobRecord, span: Tracer.Span, from: JobStatus, to: JobStatus): void => {
  const now = job.engine.tracing!.clock.currentTimeNanosUnsafe()
  span.event(to, now, { "job.status": to, "job.previous_status": from })
  if (to !== "concluded") return
  job.span = undefined
  const outcome = job.outcome()
  span.attribute("job.outcome", outcome._tag)
  span.attribute("job.progress.current", job.current)
  span.attribute("job.progress.total", job.total)
  if (outcome._tag === "Failed") span.attribute("job.error", outcome.error)
  span.end(
    now,
    outcome._tag === "Succeeded"
      ? Exit.void
      : outcome._tag === "Cancelled"
      ? Exit.interrupt()
      : Exit.fail(new JobFailed({ id: job.label, error: outcome.error }))
  )
}

/**
 * Runs a driver callback of `job` in a child span of the job's span, named
 * after the callback; spans the callback makes go under it, to the engine's
 * tracer. Without a job span (no tracer), `effect` itself.
 */
export const traceCallback = <A, E>(job: JobRecord, callback: string, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  job.span === undefined ? effect : Effect.suspend(() => {
    const parent = job.span
    const tracing = job.engine.tracing
    if (parent === undefined || tracing === undefined) return effect
    const span = tracing.tracer.span({
      name: callback,
      parent: Option.some(parent),
      annotations: Context.empty(),
      links: [],
      startTime: tracing.clock.currentTimeNanosUnsafe(),
      kind: "internal",
      root: false,
      sampled: parent.sampled
    })
    if (job.id !== undefined) span.attribute("job.id", job.id)
    span.attribute("job.type", job.type)
    span.attribute("job.callback", callback)
    return effect.pipe(
      // A stack trace would always point here, and costs microseconds to capture.
      Effect.withParentSpan(span, { captureStackTrace: false }),
      Effect.provideService(Tracer.Tracer, tracing.tracer),
      Effect.onExit((exit) => Effect.sync(() => span.end(tracing.clock.currentTimeNanosUnsafe(), exit)))
    )
  })

/**
 * `Effect.withSpan`, but only when the running fiber has a tracer that
 * records spans: with effect's default tracer, `effect` runs as it is, without
 * making a span nobody reads.
 */
export const withSpanWhenTracing = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  name: string,
  options?: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.withFiber((fiber) =>
    fiber.getRef(Tracer.Tracer) === Tracer.nativeTracer || !fiber.getRef(References.TracerEnabled)
      ? effect
      : Effect.withSpan(effect, name, options)
  )
