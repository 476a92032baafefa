/**
 * The commands that create jobs: `backup`, `mirror` and `transaction`. They
 * start the drivers registered for the job types `backup` and `mirror`, whose
 * parameters are `{source, target, speed?, overwrite?}`.
 *
 * A `transaction` is all or nothing: every action is checked first (ids, types,
 * parameters, speeds; also ids repeated within the transaction), and nothing is
 * created unless all pass. Then every job is created, then every job is
 * started. If a driver fails to set a job up (e.g. a missing source), the jobs
 * already created are cancelled and removed before they ever run, and the
 * transaction fails with that error. With `completion-mode: grouped` the jobs
 * share one `JobTxn`: they all commit or all abort. `backup` and `mirror` are
 * one-action transactions.
 */
import { Effect, Schema } from "effect"
import type { Job } from "../../Job.ts"
import type { CreateOptions, JobsService } from "../../Jobs.ts"
import * as JobTxn from "../../JobTxn.ts"
import { Enum, Int } from "../args.ts"
import { type Command, command } from "../command.ts"
import { fromJobError, GenericError, type QmpError } from "../errors.ts"

/** The arguments of `backup` and `mirror`, and the `data` of a transaction action. */
export const JobArgs = Schema.Struct({
  "job-id": Schema.String,
  source: Schema.String,
  target: Schema.String,
  speed: Schema.optionalKey(Int),
  "auto-finalize": Schema.optionalKey(Schema.Boolean),
  "auto-dismiss": Schema.optionalKey(Schema.Boolean),
  overwrite: Schema.optionalKey(Schema.Boolean)
})

export type JobArgs = typeof JobArgs.Type

export const actionTypes = ["backup", "mirror"] as const

export type ActionType = typeof actionTypes[number]

const TransactionArgs = Schema.Struct({
  actions: Schema.Array(Schema.Struct({ type: Enum(actionTypes), data: JobArgs })),
  properties: Schema.optionalKey(Schema.Struct({
    "completion-mode": Schema.optionalKey(Enum(["individual", "grouped"]))
  }))
})

interface Action {
  readonly type: ActionType
  readonly data: JobArgs
}

const createOptions = (action: Action, txn: JobTxn.JobTxn | undefined): CreateOptions => {
  const { data } = action
  const params: Record<string, unknown> = { source: data.source, target: data.target }
  if (data.speed !== undefined) params.speed = data.speed
  if (data.overwrite !== undefined) params.overwrite = data.overwrite
  return {
    type: action.type,
    id: data["job-id"],
    manualFinalize: data["auto-finalize"] === false,
    manualDismiss: data["auto-dismiss"] === false,
    params,
    txn,
    // The engine's speed is what QMP reports (events, query-block-jobs); negative
    // speeds were refused by `validateAll`, in QEMU's order.
    speed: data.speed !== undefined && data.speed > 0 ? data.speed : undefined
  }
}

/** Every check that can be made without creating anything, in QEMU's order per action. */
const validateAll = (jobs: JobsService, actions: ReadonlyArray<Action>) =>
  Effect.gen(function*() {
    const ids = new Set<string>()
    for (const action of actions) {
      yield* Effect.mapError(jobs.validate({ ...createOptions(action, undefined), speed: undefined }), fromJobError)
      const id = action.data["job-id"]
      // An earlier action of this transaction would have taken the id by now.
      if (ids.has(id)) return yield* new GenericError({ desc: `Job ID '${id}' already in use` })
      ids.add(id)
      const speed = action.data.speed
      if (speed !== undefined && speed < 0) {
        return yield* new GenericError({ desc: "Parameter 'speed' expects a non-negative value" })
      }
    }
  })

/** Removes jobs that were created but never started (they end CONCLUDED, then NULL). */
const discard = (jobs: JobsService, created: ReadonlyArray<Job>) =>
  Effect.gen(function*() {
    for (const job of created) {
      if (job.status !== "concluded" && job.status !== "null") {
        yield* Effect.ignore(jobs.cancel(job, { force: true }))
      }
    }
    for (const job of created) {
      yield* Effect.ignore(jobs.awaitOutcome(job))
      if (job.status === "concluded") yield* Effect.ignore(jobs.dismiss(job))
    }
  })

/** Validates, creates and starts the jobs of `actions`; all or nothing. */
export const startActions = (
  jobs: JobsService,
  actions: ReadonlyArray<Action>,
  grouped: boolean
): Effect.Effect<void, QmpError> =>
  Effect.gen(function*() {
    yield* validateAll(jobs, actions)
    const txn = grouped ? yield* JobTxn.make : undefined
    const created: Array<Job> = []
    const undo = (error: { readonly message: string }) => Effect.andThen(discard(jobs, created), Effect.fail(fromJobError(error)))
    for (const action of actions) {
      const job = yield* Effect.catch(jobs.create(createOptions(action, txn)), undo)
      created.push(job)
    }
    for (const job of created) yield* Effect.mapError(jobs.start(job), fromJobError)
  })

const single = (type: ActionType): Command =>
  command(type, JobArgs, (data, { jobs }) => Effect.as(startActions(jobs, [{ type, data }], false), {}))

export const createCommands: ReadonlyArray<Command> = [
  single("backup"),
  single("mirror"),
  command("transaction", TransactionArgs, (args, { jobs }) =>
    Effect.as(
      startActions(jobs, args.actions, args.properties?.["completion-mode"] === "grouped"),
      {}
    ))
]
