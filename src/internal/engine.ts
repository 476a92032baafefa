/**
 * The implementation of the `Jobs` service: the job registry, creation, start,
 * and the user verbs with QEMU's checks in QEMU's order.
 * @internal
 */
import { type Cause, Effect, Exit, Fiber, Schema, type Scope, Stream } from "effect"
import type { Job, JobInfo, JobOutcome } from "../Job.ts"
import type { JobCallbacks, JobDriver } from "../JobDriver.ts"
import {
  CallbackFailed,
  CannotComplete,
  ChangeNotSupported,
  DriverAlreadyRegistered,
  EngineClosing,
  InternalJobWithId,
  InvalidJobId,
  InvalidParameters,
  JobAlreadyPaused,
  JobAlreadyStarted,
  JobCancelled,
  JobFailed,
  JobIdInUse,
  JobIdRequired,
  JobNotFound,
  JobNotPaused,
  JobRefused,
  JobSetupFailed,
  NegativeSpeed,
  TxnClosed,
  UnknownJobType,
  VerbNotAllowed
} from "../JobError.ts"
import type { JobHandle } from "../JobHandle.ts"
import type { CreateError } from "../JobError.ts"
import type { CreateOptions, JobRef, JobsOptions, JobsService } from "../Jobs.ts"
import * as JobVerb from "../JobVerb.ts"
import { afterOutcome } from "./callbackFailure.ts"
import { liftUserPause } from "./cancelRequest.ts"
import { cancelJob } from "./cancel.ts"
import { runJob } from "./completion.ts"
import { dismiss } from "./conclude.ts"
import { EventHub } from "./eventHub.ts"
import { causeMessage, type EngineState, JobRecord } from "./jobRecord.ts"
import { JobHandleImpl } from "./jobHandle.ts"
import { enterUnsafe, pauseUnsafe, resumeUnsafe } from "./pausing.ts"
import { finalizeTxn } from "./txn.ts"
import { TxnState } from "./txnState.ts"

interface RegisteredDriver {
  readonly decode: (params: unknown) => Effect.Effect<unknown, Schema.SchemaError>
  readonly make: (params: unknown, job: JobHandle) => Effect.Effect<JobCallbacks<unknown>, unknown>
  readonly check: ((params: unknown) => Effect.Effect<void, unknown>) | undefined
}

/** QEMU's id_wellformed: a letter, then letters, digits, `-`, `.`, `_`. */
const wellFormedId = /^[A-Za-z][A-Za-z0-9\-._]*$/

const info = (job: JobRecord): JobInfo => {
  const row = {
    id: job.id!,
    type: job.type,
    status: job.status,
    currentProgress: job.current,
    totalProgress: job.total
  }
  return job.error === undefined ? row : { ...row, error: job.error }
}

const callbackFailed = (job: JobRecord, callback: string) => (cause: Cause.Cause<unknown>) =>
  Effect.fail(new CallbackFailed({ id: job.label, callback, detail: causeMessage(cause) }))

export const makeEngine = (options: JobsOptions): Effect.Effect<JobsService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const engine: EngineState = {
      hub: new EventHub(options.eventBuffer ?? 4096),
      jobs: new Set(),
      byId: new Map(),
      fibers: new Set(),
      closing: false
    }
    const drivers = new Map<string, RegisteredDriver>()

    const lookup = (ref: JobRef): Effect.Effect<JobRecord, JobNotFound> =>
      Effect.suspend(() => {
        if (typeof ref === "string") {
          const job = engine.byId.get(ref)
          return job === undefined ? Effect.fail(new JobNotFound({ id: ref })) : Effect.succeed(job)
        }
        return ref instanceof JobRecord && ref.engine === engine
          ? Effect.succeed(ref)
          : Effect.fail(new JobNotFound({ id: ref.id ?? "" }))
      })

    const verbCheck = (job: JobRecord, verb: JobVerb.JobVerb): Effect.Effect<void, VerbNotAllowed> =>
      JobVerb.isAllowed(verb, job.status)
        ? Effect.void
        : Effect.fail(new VerbNotAllowed({ id: job.label, status: job.status, verb }))

    const register = <P, E, R>(driver: JobDriver<P, E, R>) =>
      Effect.contextWith((context: import("effect").Context.Context<R>) =>
        Effect.suspend(() => {
          if (drivers.has(driver.type)) return Effect.fail(new DriverAlreadyRegistered({ type: driver.type }))
          const decode = Schema.decodeUnknownEffect(driver.params as Schema.Decoder<P>)
          drivers.set(driver.type, {
            decode: (params) => decode(params),
            make: (params, job) => Effect.provideContext(driver.make(params as P, job), context),
            check: driver.check === undefined
              ? undefined
              : (params) => Effect.provideContext(driver.check!(params as P), context)
          })
          return Effect.void
        })
      )

    /** QEMU's id rules, in QEMU's order (the "in use" rule is checked again when the job is published). */
    const idRuleViolation = (options: CreateOptions) => {
      const id = options.id
      if (id !== undefined && options.internal) return new InternalJobWithId({ id })
      if (id !== undefined && !wellFormedId.test(id)) return new InvalidJobId({ id })
      if (id !== undefined && engine.byId.has(id)) return new JobIdInUse({ id })
      if (id === undefined && !options.internal) return new JobIdRequired()
      return undefined
    }

    /** Everything `create` checks before building the job; the decoded parameters. */
    const check = (options: CreateOptions): Effect.Effect<[RegisteredDriver, unknown], CreateError> =>
      Effect.suspend((): Effect.Effect<[RegisteredDriver, unknown], CreateError> => {
        if (engine.closing) return Effect.fail(new EngineClosing())
        const invalid = idRuleViolation(options)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (options.speed !== undefined && options.speed < 0) {
          return Effect.fail(new NegativeSpeed({ id: options.id ?? "", speed: options.speed }))
        }
        const txn = options.txn as TxnState | undefined
        if (txn !== undefined && txn.currentPhase !== "running") {
          return Effect.fail(new TxnClosed({ id: options.id ?? "" }))
        }
        const driver = drivers.get(options.type)
        if (driver === undefined) return Effect.fail(new UnknownJobType({ type: options.type }))
        const decoded = Effect.mapError(
          driver.decode(options.params ?? {}),
          (e) => new InvalidParameters({ type: options.type, detail: e.message })
        )
        const checked = driver.check
        return Effect.flatMap(decoded, (params): Effect.Effect<[RegisteredDriver, unknown], CreateError> =>
          checked === undefined
            ? Effect.succeed([driver, params])
            : Effect.as(
              Effect.catchCause(checked(params), (cause) =>
                Effect.fail(new JobRefused({ id: options.id ?? "", type: options.type, detail: causeMessage(cause) }))),
              [driver, params]
            ))
      })

    const create = (options: CreateOptions): Effect.Effect<Job, CreateError> =>
      Effect.flatMap(check(options), ([driver, params]) => setUp(options, driver, params))

    /** The driver builds the job's callbacks before anyone can see the job: no verb meets a half-built one. */
    const setUp = (
      options: CreateOptions,
      driver: RegisteredDriver,
      params: unknown
    ): Effect.Effect<Job, EngineClosing | JobIdInUse | TxnClosed | JobSetupFailed> => {
      const txn = (options.txn as TxnState | undefined) ?? new TxnState(false)
      const job = new JobRecord(
        engine,
        options.id,
        options.type,
        options.internal ?? false,
        !(options.manualFinalize ?? false),
        !(options.manualDismiss ?? false),
        txn
      )
      job.speed = options.speed ?? 0
      job.handle = new JobHandleImpl(job)
      return Effect.flatMap(Effect.exit(driver.make(params, job.handle)), (made): Effect.Effect<Job, EngineClosing | JobIdInUse | TxnClosed | JobSetupFailed> => {
        // Checked again: another job may have taken the id, or the transaction finished, meanwhile.
        const refusal = engine.closing
          ? new EngineClosing()
          : options.id !== undefined && engine.byId.has(options.id)
          ? new JobIdInUse({ id: options.id })
          : txn.currentPhase !== "running"
          ? new TxnClosed({ id: job.label })
          : undefined
        if (refusal !== undefined) {
          const free = Exit.isSuccess(made) ? made.value.free : undefined
          return Effect.andThen(free === undefined ? Effect.void : afterOutcome(job, "free", free), Effect.fail(refusal))
        }
        engine.jobs.add(job)
        if (job.id !== undefined) engine.byId.set(job.id, job)
        if (Exit.isSuccess(made)) {
          job.callbacks = made.value
          txn.join(job)
          job.transition("created")
          return Effect.succeed(job)
        }
        // Early fail: the job is created and, at once, dismissed (CREATED → NULL).
        job.transition("created")
        return Effect.andThen(
          dismiss(job),
          Effect.fail(new JobSetupFailed({ id: job.label, type: job.type, detail: causeMessage(made.cause) }))
        )
      })
    }

    const start = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.suspend((): Effect.Effect<void, JobAlreadyStarted | EngineClosing> => {
          if (engine.closing) return Effect.fail(new EngineClosing())
          if (job.started || job.status !== "created") {
            return Effect.fail(new JobAlreadyStarted({ id: job.label, status: job.status }))
          }
          job.started = true
          job.pauseCount = job.pauseCount - 1
          job.busy = true
          job.paused = false
          job.transition("running")
          // A force cancel may arrive between the move to RUNNING and the fiber's first step.
          const run = Effect.andThen(job.handle!.pausePoint, job.callbacks!.run)
          const body = Effect.suspend(() => (job.isCancelled ? Effect.interrupt : run))
          return Effect.asVoid(Effect.forkDetach(
            Effect.withFiber((fiber) => {
              job.runFiber = fiber
              engine.fibers.add(fiber)
              fiber.addObserver(() => engine.fibers.delete(fiber))
              return runJob(job, body)
            }),
            { startImmediately: true }
          ))
        }))

    const pause = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(
          verbCheck(job, "pause"),
          Effect.suspend(() => {
            if (job.userPaused) return Effect.fail(new JobAlreadyPaused({ id: job.label }))
            job.userPaused = true
            pauseUnsafe(job)
            return Effect.void
          })
        ))

    const resume = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.suspend((): Effect.Effect<void, JobNotPaused | VerbNotAllowed> => {
          // QEMU checks "was it paused" before the verb.
          if (!job.userPaused || job.pauseCount <= 0) return Effect.fail(new JobNotPaused({ id: job.label }))
          return Effect.andThen(verbCheck(job, "resume"), liftUserPause(job))
        }))

    const cancel = (ref: JobRef, options?: { readonly force?: boolean | undefined }) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(verbCheck(job, "cancel"), cancelJob(job, options?.force ?? false)))

    const complete = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(
          verbCheck(job, "complete"),
          Effect.suspend((): Effect.Effect<void, CannotComplete | CallbackFailed> => {
            const callback = job.callbacks?.complete
            if (job.cancelRequested || callback === undefined) {
              return Effect.fail(new CannotComplete({ id: job.label }))
            }
            return Effect.catchCause(callback, callbackFailed(job, "complete"))
          })
        ))

    const finalize = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) => Effect.andThen(verbCheck(job, "finalize"), finalizeTxn(job.txn)))

    const dismissVerb = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) => Effect.andThen(verbCheck(job, "dismiss"), dismiss(job)))

    const setSpeed = (ref: JobRef, speed: number) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(
          verbCheck(job, "set-speed"),
          Effect.suspend((): Effect.Effect<void, NegativeSpeed | CallbackFailed> => {
            if (speed < 0) return Effect.fail(new NegativeSpeed({ id: job.label, speed }))
            const callback = job.callbacks?.setSpeed
            const record = Effect.sync(() => {
              const old = job.speed
              job.speed = speed
              // QEMU's kick rule: only a faster (or unlimited) speed wakes a job sleeping on its timer.
              if ((speed === 0 || speed > old) && job.sleeping) enterUnsafe(job)
            })
            return callback === undefined
              ? record
              : Effect.andThen(Effect.catchCause(callback(speed), callbackFailed(job, "setSpeed")), record)
          })
        ))

    const change = (ref: JobRef, changeOptions: unknown) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(
          verbCheck(job, "change"),
          Effect.suspend((): Effect.Effect<void, ChangeNotSupported | CallbackFailed> => {
            const callback = job.callbacks?.change
            if (callback === undefined) return Effect.fail(new ChangeNotSupported({ id: job.label }))
            return Effect.catchCause(callback(changeOptions), callbackFailed(job, "change"))
          })
        ))

    const hold = (ref: JobRef, reason: string) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.acquireRelease(
          Effect.sync(() => {
            const key = {}
            ;(job.holds ??= new Map()).set(key, reason)
            pauseUnsafe(job)
            return key
          }),
          (key) =>
            Effect.sync(() => {
              if (job.holds?.delete(key)) resumeUnsafe(job)
            })
        )).pipe(Effect.asVoid)

    const finishSync = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) => Effect.as(job.awaitCompleted(), job).pipe(Effect.map(syncOutcome)))

    const syncOutcome = (job: JobRecord): JobOutcome => job.outcome()

    const cancelSync = (ref: JobRef, options?: { readonly force?: boolean | undefined }) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(cancelJob(job, options?.force ?? false), Effect.map(job.awaitCompleted(), () => syncOutcome(job))))

    const completeSync = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.andThen(complete(job), Effect.map(job.awaitCompleted(), () => syncOutcome(job))))

    const awaitOutcome = (ref: JobRef) => Effect.flatMap(lookup(ref), (job) => job.awaitConcluded())

    const join = (ref: JobRef) =>
      Effect.flatMap(lookup(ref), (job) =>
        Effect.flatMap(job.awaitConcluded(), (outcome): Effect.Effect<void, JobFailed | JobCancelled> => {
          switch (outcome._tag) {
            case "Succeeded":
              return Effect.void
            case "Failed":
              return Effect.fail(new JobFailed({ id: job.label, error: outcome.error }))
            case "Cancelled":
              return Effect.fail(new JobCancelled({ id: job.label }))
          }
        }))

    const subscribe = (subscribeOptions?: { readonly capacity?: number | undefined }) =>
      engine.hub.subscribe(subscribeOptions?.capacity)

    // Closing: force-cancel and finish every job (QEMU: job_cancel_sync_all), then wait for their fibers.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        engine.closing = true
        while (engine.jobs.size > 0) {
          const job: JobRecord = engine.jobs.values().next().value!
          yield* cancelJob(job, true)
          yield* job.awaitConcluded()
          yield* dismiss(job)
        }
        yield* Fiber.awaitAll(Array.from(engine.fibers))
        engine.hub.end()
      })
    )

    const service: JobsService = {
      register,
      validate: (options) => Effect.asVoid(check(options)),
      create,
      start,
      run: (options) =>
        Effect.tap(create(options), (job) =>
          // Just created: only a closing engine can refuse to start it.
          Effect.catchTags(start(job), { JobNotFound: Effect.die, JobAlreadyStarted: Effect.die })),
      get: (id) => lookup(id),
      list: Effect.sync(() => {
        const rows: Array<JobInfo> = []
        for (const job of engine.jobs) if (!job.internal) rows.push(info(job))
        return rows
      }),
      pause,
      resume,
      cancel,
      complete,
      finalize,
      dismiss: dismissVerb,
      setSpeed,
      change,
      hold,
      enter: (ref) => Effect.flatMap(lookup(ref), (job) => Effect.sync(() => enterUnsafe(job))),
      cancelSync,
      completeSync,
      finishSync,
      awaitStatus: (ref, status) => Effect.flatMap(lookup(ref), (job) => job.awaitStatus(status)),
      awaitOutcome,
      join,
      subscribe,
      events: Stream.unwrap(subscribe())
    }
    return service
  })

