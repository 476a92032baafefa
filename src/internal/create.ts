/**
 * The driver registry and job creation (QEMU: job_create, job_early_fail): the
 * checks in QEMU's order, the driver's own check, then the driver builds the
 * job's callbacks before the job becomes visible.
 * @internal
 */
import { Cause, type Context, Effect, Exit, Option, Schema, Tracer } from "effect"
import type { Job } from "../Job.ts"
import type { JobCallbacks, JobDriver } from "../JobDriver.ts"
import {
  type CreateError,
  DriverAlreadyRegistered,
  EngineClosing,
  InternalJobWithId,
  InvalidJobId,
  InvalidParameters,
  JobIdInUse,
  JobIdRequired,
  JobRefused,
  JobSetupFailed,
  NegativeSpeed,
  StoreNotRecovered,
  StoreNotWritable,
  TxnClosed,
  UnknownJobType
} from "../JobError.ts"
import type { JobHandle } from "../JobHandle.ts"
import type { CreateOptions } from "../Jobs.ts"
import { jobCreated } from "../observability/metrics.ts"
import { startJobSpan } from "../observability/tracing.ts"
import { afterOutcome } from "./callbackFailure.ts"
import { dismiss } from "./conclude.ts"
import { JobHandleImpl } from "./jobHandle.ts"
import { causeMessage, type EngineState, JobRecord } from "./jobRecord.ts"
import { TxnState } from "./txnState.ts"

/** A registered driver, its requirements already provided. */
export interface RegisteredDriver {
  readonly decode: (params: unknown) => Effect.Effect<unknown, Schema.SchemaError>
  readonly make: (params: unknown, job: JobHandle) => Effect.Effect<JobCallbacks<unknown>, unknown>
  readonly check: ((params: unknown) => Effect.Effect<void, unknown>) | undefined
  /** The driver goes on with its jobs after a restart (`JobDriver.resumable`). */
  readonly resumable: boolean
}

export type Drivers = Map<string, RegisteredDriver>

/** QEMU's id_wellformed: a letter, then letters, digits, `-`, `.`, `_`. */
const wellFormedId = /^[A-Za-z][A-Za-z0-9\-._]*$/

export const register = <P, E, R>(drivers: Drivers, driver: JobDriver<P, E, R>) =>
  Effect.contextWith((context: Context.Context<R>) =>
    Effect.suspend(() => {
      if (drivers.has(driver.type)) return Effect.fail(new DriverAlreadyRegistered({ type: driver.type }))
      const decodeEffect = Schema.decodeUnknownEffect(driver.params as Schema.Decoder<P>)
      const decodeExit = Schema.decodeUnknownExit(driver.params as Schema.Decoder<P>)
      const check = driver.check
      drivers.set(driver.type, {
        // Most parameter schemas decode synchronously: their result is ready as an Exit. A
        // schema that cannot (an asynchronous transformation) is run as an Effect.
        decode: (params) => {
          const exit = decodeExit(params)
          return Exit.isSuccess(exit) || !Cause.hasDies(exit.cause) ? exit : decodeEffect(params)
        },
        make: (params, job) => Effect.provideContext(driver.make(params as P, job), context),
        check: check === undefined ? undefined : (params) => Effect.provideContext(check(params as P), context),
        resumable: driver.resumable === true
      })
      return Effect.void
    })
  )

/** QEMU's id rules, in QEMU's order (the "in use" rule is checked again when the job is published). */
const idRuleViolation = (engine: EngineState, options: CreateOptions) => {
  const id = options.id
  if (id !== undefined && options.internal) return new InternalJobWithId({ id })
  if (id !== undefined && !wellFormedId.test(id)) return new InvalidJobId({ id })
  if (id !== undefined && engine.jobs.has(id)) return new JobIdInUse({ id })
  if (id === undefined && !options.internal) return new JobIdRequired()
  return undefined
}

/** The checks that need no Effect, in QEMU's order: what refuses the job, or its driver. */
const refusalOrDriver = (
  engine: EngineState,
  drivers: Drivers,
  options: CreateOptions
): CreateError | RegisteredDriver => {
  if (engine.closing) return new EngineClosing()
  const persistence = engine.persistence
  if (persistence !== undefined) {
    if (!persistence.recovered) return new StoreNotRecovered({ store: persistence.location })
    if (persistence.failure !== undefined) {
      return new StoreNotWritable({ store: persistence.location, reason: persistence.failure })
    }
  }
  const invalid = idRuleViolation(engine, options)
  if (invalid !== undefined) return invalid
  if (options.speed !== undefined && options.speed < 0) {
    return new NegativeSpeed({ id: options.id ?? "", speed: options.speed })
  }
  const txn = options.txn as TxnState | undefined
  if (txn !== undefined && txn.currentPhase !== "running") return new TxnClosed({ id: options.id ?? "" })
  return drivers.get(options.type) ?? new UnknownJobType({ type: options.type })
}

const isDriver = (found: CreateError | RegisteredDriver): found is RegisteredDriver => !("_tag" in found)

/** The decoded parameters, then the driver's own check of them. */
const decodeAndCheck = (driver: RegisteredDriver, options: CreateOptions): Effect.Effect<unknown, CreateError> =>
  Effect.flatMap(
    Effect.mapError(
      driver.decode(options.params ?? {}),
      (e) => new InvalidParameters({ type: options.type, detail: e.message })
    ),
    (params) =>
      driver.check === undefined ? Effect.succeed(params) : Effect.as(
        Effect.catchCause(driver.check(params), (cause) =>
          Effect.fail(new JobRefused({ id: options.id ?? "", type: options.type, detail: causeMessage(cause) }))),
        params
      )
  )

/** Everything `create` checks before building the job; the driver and the decoded parameters. */
export const check = (
  engine: EngineState,
  drivers: Drivers,
  options: CreateOptions
): Effect.Effect<[RegisteredDriver, unknown], CreateError> =>
  Effect.suspend(() => {
    const found = refusalOrDriver(engine, drivers, options)
    if (!isDriver(found)) return Effect.fail(found)
    return Effect.map(decodeAndCheck(found, options), (params): [RegisteredDriver, unknown] => [found, params])
  })

export const create = (engine: EngineState, drivers: Drivers, options: CreateOptions): Effect.Effect<Job, CreateError> =>
  Effect.suspend(() => {
    const driver = refusalOrDriver(engine, drivers, options)
    if (!isDriver(driver)) return Effect.fail(driver)
    // The common case — parameters that decode at once, no check of the driver's own, no
    // tracing — goes on to set-up in this step.
    if (driver.check === undefined && engine.tracing === undefined) {
      const decoded = driver.decode(options.params ?? {})
      if (Exit.isExit(decoded) && Exit.isSuccess(decoded)) {
        return setUp(engine, options, driver, decoded.value, Option.none())
      }
    }
    return Effect.flatMap(decodeAndCheck(driver, options), (params) =>
      engine.tracing === undefined
        ? setUp(engine, options, driver, params, Option.none())
        // The job's span links to the span it was created in.
        : Effect.flatMap(Effect.serviceOption(Tracer.ParentSpan), (creator) =>
          setUp(engine, options, driver, params, creator)))
  })

/** The driver builds the job's callbacks before anyone can see the job: no verb meets a half-built one. */
const setUp = (
  engine: EngineState,
  options: CreateOptions,
  driver: RegisteredDriver,
  params: unknown,
  creator: Option.Option<Tracer.AnySpan>
): Effect.Effect<Job, EngineClosing | JobIdInUse | TxnClosed | JobSetupFailed> => {
  const txn = options.txn as TxnState | undefined
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
  if (engine.persistence !== undefined) job.keepForStore(options.params ?? {}, engine.clock.currentTimeMillisUnsafe())
  const publish = (
    made: Exit.Exit<JobCallbacks<unknown>, unknown>
  ): Effect.Effect<Job, EngineClosing | JobIdInUse | TxnClosed | JobSetupFailed> => {
    if (Exit.isFailure(made) && Cause.hasInterruptsOnly(made.cause)) return Effect.failCause(made.cause as Cause.Cause<never>)
    // Checked again: another job may have taken the id, or the transaction finished, meanwhile.
    const refusal = engine.closing
      ? new EngineClosing()
      : options.id !== undefined && engine.jobs.has(options.id)
      ? new JobIdInUse({ id: options.id })
      : txn !== undefined && txn.currentPhase !== "running"
      ? new TxnClosed({ id: job.label })
      : undefined
    if (refusal !== undefined) {
      const free = Exit.isSuccess(made) ? made.value.free : undefined
      return Effect.andThen(free === undefined ? Effect.void : afterOutcome(job, "free", free), Effect.fail(refusal))
    }
    engine.jobs.set(job.id ?? job, job)
    if (Exit.isSuccess(made)) {
      job.callbacks = made.value
      txn?.join(job)
      jobCreated(job)
      if (engine.tracing !== undefined) startJobSpan(job, engine.tracing, creator)
      job.transition("created")
      return Effect.succeed(job)
    }
    // Early fail: the job is created and, at once, dismissed (CREATED → NULL).
    job.transition("created")
    return Effect.andThen(
      dismiss(job),
      Effect.fail(new JobSetupFailed({ id: job.label, type: job.type, detail: causeMessage(made.cause) }))
    )
  }
  const making = driver.make(params, job.handle!)
  // Callbacks made without running anything (`Effect.succeed`) are published in this step.
  if (Exit.isExit(making) && Exit.isSuccess(making)) {
    const published = publish(making as Exit.Exit<JobCallbacks<unknown>, unknown>)
    return Exit.isExit(published) ? published : Effect.uninterruptible(published)
  }
  // Once `make` has returned, the job is published (or its callbacks freed) whatever
  // happens to the caller: built callbacks are never dropped on the floor.
  return Effect.uninterruptibleMask((restore) => Effect.flatMap(Effect.exit(restore(making)), publish))
}
