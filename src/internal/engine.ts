/**
 * The `Jobs` service: the engine's shared state, the driver registry, and the
 * verbs of `verbs.ts` bound to them; closing it force-cancels and finishes
 * every job (QEMU: job_cancel_sync_all).
 * @internal
 */
import { Clock, Effect, Fiber, type Scope, Stream } from "effect"
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
import { Persistence } from "./persistence.ts"
import { recover, type RecoveryReport } from "./recovery.ts"
import { StoreNotices } from "./storeNotices.ts"
import * as verbs from "./verbs.ts"
import type { JobStoreService } from "../store/service.ts"
import { processOwner } from "../store/lease.ts"
import type { StoreCorrupt, StoreOwned, StoreTooNew, StoreUnavailable, StoreWriteFailed } from "../store/errors.ts"

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
/** The next job closing has to end: any; with a store, one not yet CONCLUDED (those stay, for the next run). */
const nextToEnd = (engine: EngineState): JobRecord | undefined => {
  for (const job of engine.jobs.values()) {
    if (engine.persistence === undefined || job.status !== "concluded") return job
  }
  return undefined
}

const close = (engine: EngineState): Effect.Effect<void> =>
  Effect.gen(function*() {
    engine.closing = true
    engine.persistence?.beginClosing()
    for (let job = nextToEnd(engine); job !== undefined; job = nextToEnd(engine)) {
      // A transaction being finalized is past cancelling: its end is waited for instead.
      if ((yield* cancelJob(job, true)) === "locked") yield* job.txn.awaitSettled()
      yield* job.awaitConcluded()
      if (engine.persistence === undefined) yield* dismiss(job)
    }
    yield* engine.fibers.awaitNone
    engine.hub.end()
  })

const nothingRecovered: RecoveryReport = { concluded: [], committed: [], interrupted: [], resumed: [], commitFailed: [] }

export type StoreOpenError = StoreOwned | StoreTooNew | StoreUnavailable | StoreCorrupt | StoreWriteFailed

/** An engine in memory: QEMU's semantics, nothing outlives the process. */
export const makeEngine = (options: JobsOptions): Effect.Effect<JobsService, never, Scope.Scope> =>
  makeEngineWith(options, undefined) as Effect.Effect<JobsService, never, Scope.Scope>

/** An engine that keeps its jobs and events in `store` (none: `makeEngine`). */
export const makeEngineWith = (
  options: JobsOptions,
  store: JobStoreService | undefined
): Effect.Effect<JobsService, StoreOpenError, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    // Metrics go to the registry, and spans to the tracer, of the context the engine is built in.
    const context = yield* Effect.context<never>()
    const metrics = Metrics.fromContext(context)
    const retained = options.retainedEvents ?? 10_000
    // With a store: its lease for the engine's life, and the log as the store left it.
    const owned = store === undefined ? undefined : yield* store.acquire(processOwner())
    const lastSeq = owned?.snapshot.lastSeq ?? 0
    const retainedBefore = owned === undefined || retained === 0
      ? []
      : yield* Effect.orDie(store!.readEvents(Math.max(owned.snapshot.oldestSeq - 1, lastSeq - retained), retained))
    const engine: EngineState = {
      hub: new EventHub({
        capacity: options.eventBuffer ?? 4096,
        retained,
        now: () => clock.currentTimeMillisUnsafe(),
        onOverflow: () => {
          metrics.eventOverflows.value++
        },
        lastSeq,
        retainedBefore
      }),
      jobs: new Map(),
      fibers: new FiberCount(),
      closing: false,
      clock,
      epoch: clock.currentTimeMillisUnsafe(),
      metrics,
      tracing: Tracing.fromContext(context),
      persistence: undefined
    }
    const notices = new StoreNotices()
    // Runs after the store's last flush (finalizers run in reverse): a failure of that one is told too.
    yield* Effect.addFinalizer(() => Effect.sync(() => notices.end()))
    if (owned !== undefined) {
      const persistence = new Persistence({
        owned,
        location: store!.location,
        hub: engine.hub,
        now: () => clock.currentTimeMillisUnsafe(),
        onFailure: () => {
          metrics.storeWriteFailures.value++
        },
        notices
      })
      engine.persistence = persistence
      const writer = yield* Effect.forkDetach(persistence.writer)
      // Runs after the engine has closed (finalizers run in reverse): its last events are written too.
      yield* Effect.addFinalizer(() => Effect.andThen(Fiber.interrupt(writer), persistence.flush))
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
      awaitDelivered: Effect.suspend(() => engine.hub.awaitDelivered()),
      durable: engine.persistence === undefined ? Effect.void : engine.persistence.durable,
      storeNotices: notices.stream,
      recover: Effect.suspend(() => {
        const persistence = engine.persistence
        if (persistence === undefined || persistence.recovered) return Effect.succeed(nothingRecovered)
        persistence.recovered = true
        const { checkpoints, jobs, txns } = owned!.snapshot
        // A resumed job's fiber runs detached, with the services of whoever recovers, as `start` does.
        return Effect.withFiber((caller) =>
          recover(engine, drivers, jobs, txns, checkpoints, (job) => verbs.startFiberUnsafe(job, caller.context))
        )
      })
    }
    return service
  })
