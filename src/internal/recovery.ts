/**
 * Bringing a durable store's jobs back after a restart.
 *
 * - A CONCLUDED job (one waiting for its dismissal) comes back as it was,
 *   error included; its transaction keeps its outcome.
 * - A transaction whose commit had been decided (phase `committing`) commits:
 *   the store's decision stands, whatever the drivers had done when the server
 *   stopped. Members of resumable drivers are made again from their last
 *   checkpoint, prepared, and their `commit` runs again: such a driver tells
 *   from its checkpoint what is already in place (the file drivers' commit
 *   journals, recovered before the store, have finished the renames they
 *   recorded; the rest are done now). A member whose commit cannot be
 *   completed concludes with the error; the others as succeeded. Members of
 *   other drivers conclude as succeeded without their commit.
 * - A transaction whose unconcluded members all have a `resumable` driver, and
 *   that was still running or PENDING, comes back: each member in the status
 *   it had, its user pause and its pause holds kept (a hold is unclaimed
 *   until a program holds the job for the same reason again: `pauseHolds.ts`),
 *   its callbacks made again with `handle.resumedFrom` = its last checkpoint;
 *   a member that was running (paused, ready, on standby) runs again and
 *   parks at once if it is still paused; one that was WAITING or
 *   PENDING waits there as before.
 * - Every other job that had not concluded fails with `interrupted: the server
 *   stopped while the job was <status>`: it comes back in its status, a parked
 *   one first goes back to RUNNING (READY), and then it fails as any job does —
 *   ABORTING, its driver's `abort` and `clean` (its callbacks are made again
 *   from the stored parameters, when its driver is registered), the final
 *   event, CONCLUDED. Its whole transaction aborts with it.
 *
 * Every status change is published as usual, after the events the store kept,
 * with the sequence numbers following on from them.
 * @internal
 */
import { Effect, Exit, type Schema } from "effect"
import type { JobStatus } from "../JobStatus.ts"
import { traceCallback } from "../observability/tracing.ts"
import type { Checkpoint, StoredJob, StoredTxn } from "../store/records.ts"
import { finalizeJob } from "./conclude.ts"
import type { Drivers } from "./create.ts"
import { JobHandleImpl } from "./jobHandle.ts"
import { causeMessage, type EngineState, JobRecord } from "./jobRecord.ts"
import { restoreHoldsUnsafe } from "./pauseHolds.ts"
import { soloTxnId } from "./persistence.ts"
import { committed, TxnState } from "./txnState.ts"

/** What `recover` found and did. */
export interface RecoveryReport {
  /** CONCLUDED jobs brought back, waiting for their dismissal. */
  readonly concluded: ReadonlyArray<string>
  /** Jobs that concluded as succeeded: their transaction's commit had been decided. */
  readonly committed: ReadonlyArray<string>
  /** Jobs that failed as interrupted, with the status each had. */
  readonly interrupted: ReadonlyArray<{ readonly id: string; readonly status: JobStatus }>
  /** Jobs of resumable drivers that go on, with the status each had. */
  readonly resumed: ReadonlyArray<{ readonly id: string; readonly status: JobStatus }>
  /** Jobs whose transaction's commit had been decided, but whose own commit could not be completed. */
  readonly commitFailed: ReadonlyArray<{ readonly id: string; readonly error: string }>
}

export const interruptedMessage = (status: JobStatus): string =>
  `interrupted: the server stopped while the job was ${status}`

/** A record with the stored job's state, in the engine, with no fiber and no callbacks yet. */
const restore = (engine: EngineState, stored: StoredJob, txn: TxnState): JobRecord => {
  const job = new JobRecord(engine, stored.id, stored.type, false, !stored.manualFinalize, !stored.manualDismiss, txn)
  job.handle = new JobHandleImpl(job)
  // A restored status is where the job was, not a change: the table is not consulted.
  job.status = stored.status
  job.current = stored.progress.current
  job.total = stored.progress.total
  job.speed = stored.speed
  job.error = stored.error
  job.started = stored.status !== "created"
  job.startedAt = stored.startedAt === undefined ? 0 : stored.startedAt - engine.epoch
  job.paused = false
  job.busy = false
  job.runReturned = true
  job.pauseCount = 0
  job.keepForStore(stored.params, stored.createdAt)
  engine.jobs.set(stored.id, job)
  return job
}

/** The driver's callbacks, made again from the stored parameters (set on the job when that succeeds). */
const remakeExit = (drivers: Drivers, job: JobRecord): Effect.Effect<Exit.Exit<unknown, unknown>> => {
  const driver = drivers.get(job.type)
  if (driver === undefined) return Effect.succeed(Exit.fail(`no driver for job type '${job.type}'`))
  return Effect.tap(
    Effect.exit(Effect.flatMap(driver.decode(job.storedParams ?? {}), (params) => driver.make(params, job.handle!))),
    (made) =>
      Effect.sync(() => {
        if (Exit.isSuccess(made)) job.callbacks = made.value
      })
  )
}

/** Whether the driver's callbacks could be made again. */
const remake = (drivers: Drivers, job: JobRecord): Effect.Effect<boolean> =>
  Effect.map(remakeExit(drivers, job), Exit.isSuccess)

/** Statuses a resumable job comes back in: before any decision of its transaction. */
const resumableStatuses: ReadonlySet<JobStatus> = new Set<JobStatus>([
  "created",
  "running",
  "paused",
  "ready",
  "standby",
  "waiting",
  "pending"
])

/** `run` had returned: the job waits for its transaction, as before. */
const returned = (status: JobStatus) => status === "waiting" || status === "pending"

/**
 * Puts a resumable job back as it was: CREATED and the statuses `run` had
 * returned in stay as they are; a running one (whatever its pause) runs again
 * from RUNNING, its user's pause kept as a pause request its first pause point
 * parks at.
 */
const resumeUnsafe = (job: JobRecord, stored: StoredJob, start: (job: JobRecord) => void): void => {
  job.userPaused = stored.userPaused
  if (stored.status === "created") {
    job.started = false
    job.runReturned = false
    job.paused = true
    job.pauseCount = 1 + (stored.userPaused ? 1 : 0)
    restoreHoldsUnsafe(job, stored.pauseHolds)
    return
  }
  if (returned(stored.status)) {
    restoreHoldsUnsafe(job, stored.pauseHolds)
    return
  }
  job.status = "running"
  // Its driver reports its progress again, from what its checkpoint covers.
  job.current = 0
  job.total = 0
  job.runReturned = false
  job.busy = true
  job.pauseCount = stored.userPaused ? 1 : 0
  restoreHoldsUnsafe(job, stored.pauseHolds)
  start(job)
}

export const recommitMessage = (detail: string): string =>
  `the server stopped during the commit, which could not be completed: ${detail}`

/**
 * The members of a transaction whose commit was decided, made again from
 * their last checkpoints when their driver is resumable, then prepared (newest
 * first, as before the decision): their commits run again, and such a driver
 * finds from its checkpoint what had already been put in place. A member that
 * cannot be made or prepared again keeps the error and takes its `abort`.
 * Members of other drivers conclude without their commit, which may or may
 * not have run.
 */
const prepareRecommit = (
  drivers: Drivers,
  newestFirst: ReadonlyArray<JobRecord>,
  checkpointOf: ReadonlyMap<string, Schema.Json>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const again = newestFirst.filter((job) => drivers.get(job.type)?.resumable === true)
    for (const job of again) {
      job.resumedFrom = checkpointOf.get(job.id!)
      const made = yield* remakeExit(drivers, job)
      if (Exit.isFailure(made)) job.recordError(recommitMessage(causeMessage(made.cause)))
    }
    for (const job of again) {
      const prepare = job.callbacks?.prepare
      if (job.error !== undefined || prepare === undefined) continue
      const prepared = yield* Effect.exit(traceCallback(job, "prepare", prepare))
      if (Exit.isFailure(prepared)) job.recordError(recommitMessage(causeMessage(prepared.cause)))
    }
  })

export const recover = (
  engine: EngineState,
  drivers: Drivers,
  jobs: ReadonlyArray<StoredJob>,
  txns: ReadonlyArray<StoredTxn>,
  checkpoints: ReadonlyArray<Checkpoint>,
  /** Starts a restored job's fiber, as the `start` verb does. */
  start: (job: JobRecord) => void
): Effect.Effect<RecoveryReport> =>
  Effect.gen(function*() {
    const persistence = engine.persistence!
    const report = {
      concluded: [] as Array<string>,
      committed: [] as Array<string>,
      interrupted: [] as Array<{ id: string; status: JobStatus }>,
      resumed: [] as Array<{ id: string; status: JobStatus }>,
      commitFailed: [] as Array<{ id: string; error: string }>
    }
    const checkpointOf = new Map(checkpoints.map((c) => [c.job, c.data]))
    const storedTxns = new Map(txns.map((txn) => [txn.id, txn]))
    const members = new Map<string, Array<StoredJob>>()
    for (const job of jobs) {
      const list = members.get(job.txn)
      if (list === undefined) members.set(job.txn, [job])
      else list.push(job)
    }
    for (const [txnId, stored] of members) {
      const storedTxn = storedTxns.get(txnId)
      const explicit = storedTxn?.explicit ?? txnId !== soloTxnId(stored[0]!.id)
      const txn = new TxnState(explicit)
      if (explicit) persistence.adoptTxn(txn, txnId)
      const restored = stored.map((job) => restore(engine, job, txn))
      const open = restored.filter((job) => job.status !== "concluded")
      const phase = storedTxn?.phase ?? "running"
      const canResume = open.length > 0 && (phase === "running" || phase === "pending") &&
        open.every((job) => drivers.get(job.type)?.resumable === true && resumableStatuses.has(job.status))
      if (canResume) {
        for (const job of open) {
          job.resumedFrom = checkpointOf.get(job.id!)
          if (!(yield* remake(drivers, job))) break
        }
      }
      if (canResume && open.every((job) => job.callbacks !== undefined)) {
        for (let i = 0; i < restored.length; i++) txn.rejoin(restored[i]!, returned(stored[i]!.status))
        txn.restorePhase(phase)
        for (let i = 0; i < restored.length; i++) {
          const job = restored[i]!
          if (job.status === "concluded") continue
          report.resumed.push({ id: job.id!, status: job.status })
          if (job.resumedFrom !== undefined) job.checkpointData = job.resumedFrom
          resumeUnsafe(job, stored[i]!, start)
        }
        continue
      }
      for (const job of restored) txn.join(job)
      if (open.length === 0) {
        report.concluded.push(...restored.map((job) => job.id!))
        txn.finalizationBegun = true
        txn.settleUnsafe(
          phase === "committed" ? committed : { _tag: "Aborted", error: storedTxn?.error ?? "Operation canceled" }
        )
        continue
      }
      report.concluded.push(...restored.filter((job) => job.status === "concluded").map((job) => job.id!))
      txn.finalizationBegun = true
      if (phase === "committing" || phase === "committed") {
        const newestFirst = open.slice().reverse()
        yield* prepareRecommit(drivers, newestFirst, checkpointOf)
        for (const job of newestFirst) {
          if (job.status !== "pending") job.transition("pending")
          if (job.error === undefined) report.committed.push(job.id!)
          else report.commitFailed.push({ id: job.id!, error: job.error })
          yield* finalizeJob(job)
        }
        txn.settleUnsafe(committed)
        continue
      }
      for (const job of open) {
        const status = job.status
        report.interrupted.push({ id: job.id!, status })
        // Parked when the server stopped: back to where it was working first, as a cancel would.
        if (status === "paused") job.transition("running")
        else if (status === "standby") job.transition("ready")
        job.recordError(interruptedMessage(status))
        if (job.callbacks === undefined) yield* remake(drivers, job)
      }
      txn.firstError ??= open[0]!.error
      for (const job of open.slice().reverse()) yield* finalizeJob(job)
      txn.settleUnsafe({ _tag: "Aborted", error: txn.firstError ?? "Operation canceled" })
    }
    return report
  }).pipe(Effect.uninterruptible)
