/**
 * Creating jobs, all or none (`POST /api/jobs` is a transaction of one).
 *
 * First every job is checked without creating anything: ids repeated within
 * the request, then for each job what `Jobs.validate` checks — its id, type,
 * parameters (the driver's schema and its own checks) and speed. Then every
 * job is created, and only then started. If a creation still fails (a
 * driver's check passed but setting the job up did not, e.g. its files
 * changed meanwhile), the jobs created so far are torn down newest first —
 * cancelled, waited for and dismissed, before any of them ran — and the
 * request fails with that error once they are gone, so a client that reads
 * the error then lists the jobs finds none of them.
 *
 * With `grouped` the jobs share one `JobTxn`: they all commit or all abort.
 * `validateTransaction` makes the first step alone. A user's transaction is
 * cancelled as one: a force cancel of one member, which aborts them all.
 */
import { Effect } from "effect"
import { createAndStartAll, type CreateOptions, type JobsService } from "../Jobs.ts"
import * as JobTxn from "../JobTxn.ts"
import * as JobVerb from "../JobVerb.ts"
import type { CreateJob, CreateTransaction, TransactionCreated } from "./api.ts"
import { type ApiError, conflict, fromJobError, notFound } from "./errors.ts"
import type { HttpStateShape } from "./state.ts"

const createOptions = (job: CreateJob, txn: JobTxn.JobTxn | undefined): CreateOptions => ({
  type: job.type,
  id: job.id,
  params: job.params ?? {},
  manualFinalize: job.manualFinalize ?? false,
  manualDismiss: job.manualDismiss ?? false,
  speed: job.speed,
  txn
})

/** Every check that needs nothing created, job by job, in the engine's order. */
const validateAll = (jobs: JobsService, members: ReadonlyArray<CreateJob>): Effect.Effect<void, ApiError> =>
  Effect.gen(function*() {
    const ids = new Set<string>()
    for (const member of members) {
      // An earlier member would own the id by the time this one is created.
      if (ids.has(member.id)) return yield* conflict(`Job ID '${member.id}' already in use`)
      ids.add(member.id)
      yield* Effect.mapError(jobs.validate(createOptions(member, undefined)), fromJobError)
    }
  })

/** Whether `createTransaction` would accept the request now; creates nothing. */
export const validateTransaction = (state: HttpStateShape, request: CreateTransaction): Effect.Effect<void, ApiError> =>
  validateAll(state.jobs, request.jobs)

/**
 * Aborts the transaction this API calls `id`: force-cancels its first member
 * that still accepts `cancel`, which cancels the others. Does nothing once
 * every member is past cancelling, or once the transaction has started
 * committing (the engine ignores the cancel then). 404 once no member is listed.
 */
export const cancelTransaction = (state: HttpStateShape, id: string): Effect.Effect<void, ApiError> =>
  Effect.gen(function*() {
    const txn = yield* state.findTxn(id)
    if (txn === undefined) return yield* notFound("Transaction not found")
    const member = txn.members.find((job) => JobVerb.isAllowed("cancel", job.status))
    if (member === undefined) return
    // A member that moved on since it was picked is no reason to fail: the transaction is ending anyway.
    yield* Effect.ignore(state.jobs.cancel(member, { force: true }))
  })

/**
 * Validates, creates and starts the request's jobs, all or none; answers with
 * each job as it is once started. Uninterruptible: a client that goes away
 * midway leaves either every job or none.
 */
export const createTransaction = (
  state: HttpStateShape,
  request: CreateTransaction
): Effect.Effect<TransactionCreated, ApiError> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const { jobs } = state
    yield* validateAll(jobs, request.jobs)
    const txn = request.completionMode === "grouped" && request.jobs.length > 0 ? yield* JobTxn.make : undefined
    const created = yield* createAndStartAll(
      jobs,
      request.jobs.map((member) => createOptions(member, txn)),
      (job, i) => state.recordParams(job, request.jobs[i]!.params ?? {})
    ).pipe(Effect.mapError(fromJobError))
    return {
      txn: txn === undefined ? null : state.nameTxn(txn),
      jobs: created.map(state.view)
    }
  }))
