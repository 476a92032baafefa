/**
 * The commands that create jobs: `backup`, `mirror` and `transaction`. They
 * start the drivers registered for the job types `backup` and `mirror`, whose
 * parameters are `{source, target, overwrite?}`; `speed` is the job's own
 * (`CreateOptions.speed`), which QMP reports in events and `query-block-jobs`.
 *
 * A `transaction` is all or nothing. Every action is checked first — ids
 * (also ids repeated within the transaction), types, parameters, the driver's
 * own checks of its files (`Jobs.validate`), then the speed, QEMU's order —
 * and nothing is created unless all pass. Then every job is created, then
 * every job is started. If a driver still fails to set a job up (the files
 * changed since the check, or two actions write one target), the jobs already
 * created are torn down newest first, as QEMU's transaction aborts its
 * actions — cancelled, and removed before they ever run — and the transaction
 * fails with that error once all of that is done. With `completion-mode:
 * grouped` the jobs share one `JobTxn`: they all commit or all abort.
 * `backup` and `mirror` are one-action transactions.
 */
import { Effect, Schema } from "effect"
import { createAndStartAll, type CreateOptions, type JobsService } from "../../Jobs.ts"
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

/**
 * The job an action creates. Its speed is the engine's, the only one: the
 * driver's rate limiter follows it, and it is what QMP reports. (A negative
 * speed never gets here: `validateAll` refuses it, in QEMU's order.)
 */
const createOptions = (action: Action, txn: JobTxn.JobTxn | undefined): CreateOptions => {
  const { data } = action
  const params: Record<string, unknown> = { source: data.source, target: data.target }
  if (data.overwrite !== undefined) params.overwrite = data.overwrite
  return {
    type: action.type,
    id: data["job-id"],
    manualFinalize: data["auto-finalize"] === false,
    manualDismiss: data["auto-dismiss"] === false,
    params,
    txn,
    speed: data.speed
  }
}

/** Every check that can be made without creating anything, in QEMU's order per action. */
const validateAll = (jobs: JobsService, actions: ReadonlyArray<Action>) =>
  Effect.gen(function*() {
    const ids = new Set<string>()
    for (const action of actions) {
      const id = action.data["job-id"]
      // An earlier action of this transaction would have taken the id by now: the engine
      // would find it in use before looking at anything else of this action.
      if (ids.has(id)) return yield* new GenericError({ desc: `Job ID '${id}' already in use` })
      ids.add(id)
      // The engine's checks and the driver's; the speed after them, where QEMU checks it.
      yield* Effect.mapError(jobs.validate({ ...createOptions(action, undefined), speed: undefined }), fromJobError)
      const speed = action.data.speed
      if (speed !== undefined && speed < 0) {
        return yield* new GenericError({ desc: "Parameter 'speed' expects a non-negative value" })
      }
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
    // A failed creation's teardown completes before the error is returned: its events precede the reply.
    yield* Effect.mapError(createAndStartAll(jobs, actions.map((action) => createOptions(action, txn))), fromJobError)
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
