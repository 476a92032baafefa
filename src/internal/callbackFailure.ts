/**
 * What a failing driver callback means, by where it runs (the driver contract):
 * - in the job's own loop (`pause`, `resume`) or on its behalf from a verb
 *   (`userResume`, `cancel`): the job fails as if `run` had failed;
 * - after the outcome is decided (`commit`, `abort`, `clean`, `free`): the failure
 *   is logged and kept as the job's error if it has none, and the job still concludes.
 * A defect counts as a failure everywhere; nothing a driver does takes the engine down.
 * Each runs in a child span of the job's span when the engine traces.
 * @internal
 */
import { Cause, Effect } from "effect"
import { traceCallback } from "../observability/tracing.ts"
import { causeMessage, type JobRecord } from "./jobRecord.ts"

export interface CallbackFailedCause {
  readonly callback: string
  readonly message: string
}

/** The defect that ends `run` when a callback of the job's own loop failed. */
export class JobCallbackDefect extends Error {
  readonly failure: CallbackFailedCause
  constructor(failure: CallbackFailedCause) {
    super(failure.message)
    this.failure = failure
  }
}

/** Marks the job failed by a callback and stops its `run` (if it is still running). */
export const failJob = (job: JobRecord, callback: string, cause: Cause.Cause<unknown>): void => {
  job.callbackFailure ??= { callback, message: causeMessage(cause) }
  job.runFiber?.interruptUnsafe()
}

/** Runs a callback of the job's own loop; a failure fails the job (and ends `run` with a defect). */
export const inJobLoop = <A>(job: JobRecord, callback: string, effect: Effect.Effect<A, unknown>): Effect.Effect<A> =>
  Effect.catchCause(traceCallback(job, callback, effect), (cause) =>
    Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause as Cause.Cause<never>) : Effect.suspend(() => {
      const failure: CallbackFailedCause = { callback, message: causeMessage(cause) }
      job.callbackFailure ??= failure
      return Effect.die(new JobCallbackDefect(failure))
    }))

/** Runs a callback on the job's behalf from outside its loop; a failure fails the job. */
export const onBehalf = <A>(
  job: JobRecord,
  callback: string,
  effect: Effect.Effect<A, unknown>,
  fallback: A
): Effect.Effect<A> =>
  Effect.catchCause(traceCallback(job, callback, effect), (cause) =>
    Effect.sync(() => {
      failJob(job, callback, cause)
      return fallback
    }))

/** Runs a callback after the outcome is decided; a failure is logged and kept as the job's error. */
export const afterOutcome = (job: JobRecord, callback: string, effect: Effect.Effect<void, unknown>): Effect.Effect<void> =>
  Effect.catchCause(traceCallback(job, callback, effect), (cause) =>
    Effect.suspend(() => {
      const message = causeMessage(cause)
      job.recordError(message)
      return Effect.logWarning(`effect-jobs: ${callback} of job '${job.label}' failed: ${message}`)
    }))
