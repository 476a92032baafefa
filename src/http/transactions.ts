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
 */
import { Effect } from "effect"
import type { Job } from "../Job.ts"
import { type CreateOptions, discardUnstarted, type JobsService } from "../Jobs.ts"
import * as JobTxn from "../JobTxn.ts"
import type { CreateJob, CreateTransaction, TransactionCreated } from "./api.ts"
import { type ApiError, conflict, fromJobError } from "./errors.ts"
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
    const created: Array<Job> = []
    for (const member of request.jobs) {
      const job = yield* jobs.create(createOptions(member, txn)).pipe(
        Effect.catch((error) => Effect.andThen(discardUnstarted(jobs, created), Effect.fail(fromJobError(error))))
      )
      created.push(job)
    }
    for (const job of created) {
      yield* jobs.start(job).pipe(
        // Only a closing engine refuses to start a job it just created: the shutdown removes them all.
        Effect.mapError(fromJobError)
      )
    }
    return {
      txn: txn === undefined ? null : state.nameTxn(txn),
      jobs: created.map(state.view)
    }
  }))
