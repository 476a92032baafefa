/**
 * The `Jobs` service: the engine's shared state, the driver registry, and the
 * verbs of `verbs.ts` bound to them; closing it force-cancels and finishes
 * every job (QEMU: job_cancel_sync_all).
 * @internal
 */
import { Clock, Effect, type Scope, Stream } from "effect"
import type { JobInfo } from "../Job.ts"
import type { JobsOptions, JobsService } from "../Jobs.ts"
import * as Metrics from "../observability/metrics.ts"
import * as Tracing from "../observability/tracing.ts"
import { cancelJob } from "./cancel.ts"
import { dismiss } from "./conclude.ts"
import { check, create, type Drivers, register } from "./create.ts"
import { EventHub } from "./eventHub.ts"
import { FiberCount } from "./fiberCount.ts"
import type { EngineState, JobRecord } from "./jobRecord.ts"
import * as verbs from "./verbs.ts"

/**
 * A job's row in `list`. Rows are read-only values: a job's last row is kept
 * and handed out again while nothing in it has changed, so a client that polls
 * the list (QMP `query-jobs`) does not cost a row per job per poll.
 */
const info = (job: JobRecord): JobInfo => {
  const last = job.lastInfo
  if (
    last !== undefined && last.status === job.status && last.currentProgress === job.current &&
    last.totalProgress === job.total && last.error === job.error
  ) return last
  const row = {
    id: job.id!,
    type: job.type,
    status: job.status,
    currentProgress: job.current,
    totalProgress: job.total
  }
  return (job.lastInfo = Object.freeze(job.error === undefined ? row : { ...row, error: job.error }))
}

/** Closing: force-cancel and finish every job, then wait for their fibers. */
const close = (engine: EngineState): Effect.Effect<void> =>
  Effect.gen(function*() {
    engine.closing = true
    while (engine.jobs.size > 0) {
      const job: JobRecord = engine.jobs.values().next().value!
      // A transaction being finalized is past cancelling: its end is waited for instead.
      if ((yield* cancelJob(job, true)) === "locked") yield* job.txn.awaitSettled()
      yield* job.awaitConcluded()
      yield* dismiss(job)
    }
    yield* engine.fibers.awaitNone
    engine.hub.end()
  })

export const makeEngine = (options: JobsOptions): Effect.Effect<JobsService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    // Metrics go to the registry, and spans to the tracer, of the context the engine is built in.
    const context = yield* Effect.context<never>()
    const metrics = Metrics.fromContext(context)
    const engine: EngineState = {
      hub: new EventHub({
        capacity: options.eventBuffer ?? 4096,
        retained: options.retainedEvents ?? 10_000,
        now: () => clock.currentTimeMillisUnsafe(),
        onOverflow: () => {
          metrics.eventOverflows.value++
        }
      }),
      jobs: new Map(),
      fibers: new FiberCount(),
      closing: false,
      clock,
      epoch: clock.currentTimeMillisUnsafe(),
      metrics,
      tracing: Tracing.fromContext(context)
    }
    const drivers: Drivers = new Map()
    metrics.engines.add(engine)
    yield* Effect.addFinalizer(() =>
      Effect.ensuring(close(engine), Effect.sync(() => metrics.engines.delete(engine)))
    )
    const counted = (verb: string) => Metrics.verbCounter(metrics, verb)
    const countStart = counted("start")
    const countPause = counted("pause")
    const countResume = counted("resume")
    const countCancel = counted("cancel")
    const countComplete = counted("complete")
    const countFinalize = counted("finalize")
    const countDismiss = counted("dismiss")
    const countSetSpeed = counted("set-speed")
    const countChange = counted("change")

    const createJob = (createOptions: Parameters<JobsService["create"]>[0]) => create(engine, drivers, createOptions)
    const subscribe = ((subscribeOptions?: { readonly capacity?: number | undefined; readonly since?: number | undefined }) =>
      engine.hub.subscribe(subscribeOptions?.capacity, subscribeOptions?.since)) as JobsService["subscribe"]
    const list = () => {
      const rows: Array<JobInfo> = []
      for (const job of engine.jobs.values()) if (!job.internal) rows.push(info(job))
      return rows
    }

    const service: JobsService = {
      register: (driver) => register(drivers, driver),
      validate: (createOptions) => Effect.asVoid(check(engine, drivers, createOptions)),
      create: createJob,
      start: (ref) => countStart(verbs.start(engine, ref)),
      // One step: a caller interrupted between the two would leave the job CREATED for good.
      run: (createOptions) =>
        Effect.uninterruptible(Effect.tap(createJob(createOptions), (job) =>
          // Just created: only a closing engine can refuse to start it.
          Effect.catchTags(countStart(verbs.start(engine, job)), { JobNotFound: Effect.die, JobAlreadyStarted: Effect.die }))),
      get: (id) => verbs.lookup(engine, id),
      list: Effect.sync(list),
      // One synchronous step: the list is exactly the state after event `seq`.
      snapshot: Effect.sync(() => {
        // Its `seq` is a cursor to resume from: the log keeps what follows.
        engine.hub.openLog()
        return { seq: engine.hub.seq, jobs: list() }
      }),
      pause: (ref) => countPause(verbs.pause(engine, ref)),
      resume: (ref) => countResume(verbs.resume(engine, ref)),
      cancel: (ref, cancelOptions) => countCancel(verbs.cancel(engine, ref, cancelOptions)),
      complete: (ref) => countComplete(verbs.complete(engine, ref)),
      finalize: (ref) => countFinalize(verbs.finalize(engine, ref)),
      dismiss: (ref) => countDismiss(verbs.dismissVerb(engine, ref)),
      setSpeed: (ref, speed) => countSetSpeed(verbs.setSpeed(engine, ref, speed)),
      change: (ref, changeOptions) => countChange(verbs.change(engine, ref, changeOptions)),
      hold: (ref, reason) => verbs.hold(engine, ref, reason),
      enter: (ref) => verbs.enter(engine, ref),
      cancelSync: (ref, cancelOptions) => verbs.cancelSync(engine, ref, cancelOptions),
      completeSync: (ref) => verbs.completeSync(engine, ref),
      finishSync: (ref) => verbs.finishSync(engine, ref),
      awaitStatus: (ref, status) => verbs.awaitStatus(engine, ref, status),
      awaitOutcome: (ref) => verbs.awaitOutcome(engine, ref),
      join: (ref) => verbs.join(engine, ref),
      subscribe,
      events: Stream.unwrap(subscribe()),
      awaitDelivered: Effect.suspend(() => engine.hub.awaitDelivered())
    }
    return service
  })
