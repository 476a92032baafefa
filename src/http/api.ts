/**
 * The HTTP API as data: every endpoint with its path, its request and
 * response schemas and its errors. The handlers (`handlers.ts`) implement it,
 * and its OpenAPI document (`GET /api/openapi.json`) is generated from it.
 *
 * Bodies are JSON with the library's own names (`currentProgress`,
 * `manualFinalize`, …). A request body may not carry members its schema does
 * not declare.
 */
import { Schema } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "effect/http-api"
import { JobInfo } from "../Job.ts"
import { JobEvent } from "../JobEvent.ts"
import { JobStatus } from "../JobStatus.ts"
import { JobVerb } from "../JobVerb.ts"
import { BadRequest, Conflict, Forbidden, NotFound, ReadOnly, Unavailable, UnsupportedMediaType } from "./errors.ts"

/**
 * One job as the API shows it: QEMU's `JobInfo` and what else a management
 * tool wants to see.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobView = Schema.Struct({
  ...JobInfo.fields,
  /** The transaction the job belongs to; `null` for a job's own one-job transaction. */
  txn: Schema.NullOr(Schema.String),
  manualFinalize: Schema.Boolean,
  manualDismiss: Schema.Boolean,
  /** The rate limit in units per second; 0 is unlimited. */
  speed: Schema.Number,
  /** The progress made per second over the last few seconds; `null` until measured. */
  rate: Schema.NullOr(Schema.Number),
  /** Seconds left at `rate`; `null` when that cannot be told (no rate yet, or none at all). */
  eta: Schema.NullOr(Schema.Number),
  /** Doing work (not sleeping, yielded or parked). */
  busy: Schema.Boolean,
  /** Any pause is in place (the user's, a hold's, or creation's). */
  paused: Schema.Boolean,
  /** The user's pause is in place: `resume` lifts it. */
  userPaused: Schema.Boolean
})

/**
 * @since 0.1.0
 * @category models
 */
export type JobView = typeof JobView.Type

/**
 * One job with what it was created with: `GET /api/jobs/:id`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobDetail = Schema.Struct({
  ...JobView.fields,
  /** The parameters it was created with, for a job created over this API (not over QMP or by a program). */
  params: Schema.optionalKey(Schema.Unknown)
})

/**
 * @since 0.1.0
 * @category models
 */
export type JobDetail = typeof JobDetail.Type

/**
 * Every job, and the sequence number of the last event the list reflects:
 * `GET /api/events?since=<seq>` then misses nothing and repeats nothing.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobsSnapshot = Schema.Struct({
  seq: Schema.Number,
  jobs: Schema.Array(JobView)
})

/**
 * @since 0.1.0
 * @category models
 */
export type JobsSnapshot = typeof JobsSnapshot.Type

/**
 * A job to create (`POST /api/jobs`, or one member of `POST /api/transactions`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreateJob = Schema.Struct({
  /** The registered job type (the server's driver). */
  type: Schema.String,
  /** A letter, then letters, digits, `-`, `.`, `_`. */
  id: Schema.String,
  /** The driver's parameters, checked by its schema. */
  params: Schema.optionalKey(Schema.Unknown),
  /** Wait in PENDING for `finalize` (default: finalize automatically). */
  manualFinalize: Schema.optionalKey(Schema.Boolean),
  /** Wait in CONCLUDED for `dismiss` (default: dismiss automatically). */
  manualDismiss: Schema.optionalKey(Schema.Boolean),
  /** The initial rate limit in units per second (0, the default, is unlimited). */
  speed: Schema.optionalKey(Schema.Int)
})

/**
 * @since 0.1.0
 * @category models
 */
export type CreateJob = typeof CreateJob.Type

/**
 * Jobs created together, all or none: `grouped` makes them one transaction
 * (all commit or all abort); `individual` (the default) only creates them together.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CreateTransaction = Schema.Struct({
  completionMode: Schema.optionalKey(Schema.Literals(["grouped", "individual"])),
  jobs: Schema.Array(CreateJob)
})

/**
 * @since 0.1.0
 * @category models
 */
export type CreateTransaction = typeof CreateTransaction.Type

/**
 * @since 0.1.0
 * @category schemas
 */
export const TransactionCreated = Schema.Struct({
  /** The new transaction's id (`grouped`); `null` when each job has its own. */
  txn: Schema.NullOr(Schema.String),
  jobs: Schema.Array(JobView)
})

/**
 * @since 0.1.0
 * @category models
 */
export type TransactionCreated = typeof TransactionCreated.Type

/**
 * The body of `cancel`: soft by default, as the engine's `Jobs.cancel` and
 * QMP's `block-job-cancel`; `force: true` is QMP's `job-cancel`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CancelRequest = Schema.Struct({
  force: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category schemas
 */
export const SpeedRequest = Schema.Struct({
  /** Units per second, 0 or more (0 is unlimited). */
  speed: Schema.Int
})

/** The body of a verb that takes no arguments: nothing, or `{}` (any member is unexpected). */
export const NoArguments = Schema.Record(Schema.String, Schema.Never)

/**
 * The state machine as data: `JobStatus.transitions` and `JobVerb.acceptedIn`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Tables = Schema.Struct({
  statuses: Schema.Array(JobStatus),
  transitions: Schema.Record(Schema.String, Schema.Array(JobStatus)),
  verbs: Schema.Array(JobVerb),
  acceptedIn: Schema.Record(Schema.String, Schema.Array(JobStatus))
})

/**
 * @since 0.1.0
 * @category models
 */
export type Tables = typeof Tables.Type

/**
 * The `data` of an `event: reset`: the events after the client's cursor are
 * no longer kept. `oldest` is the oldest sequence number still kept, `seq`
 * that of the snapshot `jobs`; the events after `seq` follow.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Reset = Schema.Struct({
  oldest: Schema.Number,
  seq: Schema.Number,
  jobs: Schema.Array(JobView)
})

/**
 * @since 0.1.0
 * @category models
 */
export type Reset = typeof Reset.Type

/**
 * The `data` of an `event: progress` of `GET /api/progress`: the jobs whose
 * view changed since the stream's last message (every job in its first),
 * read together after the event `seq`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Progress = JobsSnapshot

/**
 * @since 0.1.0
 * @category models
 */
export type Progress = typeof Progress.Type

/**
 * What a client should know about the server before it offers anything:
 * `GET /api/server`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerInfo = Schema.Struct({
  /** Every POST is refused (403, `ReadOnly`): show, do not offer actions. */
  readOnly: Schema.Boolean,
  /** The sequence number of the latest event: a client resuming the event stream is caught up once it has seen it. */
  seq: Schema.Number,
  /** The flags of `effect-jobs qmp` that reach the QMP server of the same jobs (`["--socket", PATH]`), if there is one. */
  qmpFlags: Schema.NullOr(Schema.Array(Schema.String))
})

/**
 * @since 0.1.0
 * @category models
 */
export type ServerInfo = typeof ServerInfo.Type

/** The event names of the job events: their `_tag`s. */
export const jobEventKinds = ["StatusChange", "Ready", "Pending", "Completed", "Cancelled"] as const

/**
 * The messages of `GET /api/events`: each job event (`id` its `seq`, `event`
 * its kind, `data` the event as JSON); `reset` when the cursor has expired;
 * `shutdown` as the server stops. Comments (`: heartbeat`) keep the
 * connection alive.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EventMessage = Schema.Union([
  Schema.Struct({
    id: Schema.String,
    event: Schema.Literals(jobEventKinds),
    data: Schema.fromJsonString(JobEvent)
  }),
  Schema.Struct({ id: Schema.String, event: Schema.Literal("reset"), data: Schema.fromJsonString(Reset) }),
  Schema.Struct({ event: Schema.Literal("shutdown"), data: Schema.fromJsonString(Schema.Struct({})) })
])

/**
 * The messages of `GET /api/progress`: `progress` every sample interval in
 * which some job's view changed; `shutdown` as the server stops.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProgressMessage = Schema.Union([
  Schema.Struct({ event: Schema.Literal("progress"), data: Schema.fromJsonString(Progress) }),
  Schema.Struct({ event: Schema.Literal("shutdown"), data: Schema.fromJsonString(Schema.Struct({})) })
])

const JobId = { id: Schema.String }

/** Errors of every endpoint: the guard's. */
const guarded = [Forbidden] as const
/** Errors of every POST: the guard's (a read-only server refuses them all), and a body that is not JSON or does not match. */
const posted = [Forbidden, ReadOnly, UnsupportedMediaType, BadRequest] as const

const verb = <const Name extends string>(name: Name) =>
  HttpApiEndpoint.post(name, `/jobs/:id/${name}`, {
    params: JobId,
    payload: NoArguments,
    success: HttpApiSchema.NoContent,
    error: [...posted, NotFound, Conflict]
  })

/**
 * @since 0.1.0
 * @category api
 */
export class JobsGroup extends HttpApiGroup.make("jobs")
  .add(
    HttpApiEndpoint.get("list", "/jobs", { success: JobsSnapshot, error: guarded }),
    HttpApiEndpoint.get("get", "/jobs/:id", { params: JobId, success: JobDetail, error: [...guarded, NotFound] }),
    HttpApiEndpoint.post("create", "/jobs", {
      payload: CreateJob,
      success: JobView.pipe(HttpApiSchema.status(201)),
      error: [...posted, Conflict, Unavailable]
    }),
    verb("pause"),
    verb("resume"),
    HttpApiEndpoint.post("cancel", "/jobs/:id/cancel", {
      params: JobId,
      payload: CancelRequest,
      success: HttpApiSchema.NoContent,
      error: [...posted, NotFound, Conflict]
    }),
    verb("complete"),
    verb("finalize"),
    verb("dismiss"),
    HttpApiEndpoint.post("speed", "/jobs/:id/speed", {
      params: JobId,
      payload: SpeedRequest,
      success: HttpApiSchema.NoContent,
      error: [...posted, NotFound, Conflict]
    })
  )
  .prefix("/api")
{}

/**
 * @since 0.1.0
 * @category api
 */
export class TransactionsGroup extends HttpApiGroup.make("transactions")
  .add(
    HttpApiEndpoint.post("create", "/transactions", {
      payload: CreateTransaction,
      success: TransactionCreated.pipe(HttpApiSchema.status(201)),
      error: [...posted, Conflict, Unavailable]
    }),
    // Checks a request as `create` would, and creates nothing: what a form shows as its user types.
    HttpApiEndpoint.post("validate", "/transactions/validate", {
      payload: CreateTransaction,
      success: HttpApiSchema.NoContent,
      error: [...posted, Conflict]
    }),
    HttpApiEndpoint.post("cancel", "/transactions/:id/cancel", {
      params: JobId,
      payload: NoArguments,
      success: HttpApiSchema.NoContent,
      error: [...posted, NotFound]
    })
  )
  .prefix("/api")
{}

/**
 * @since 0.1.0
 * @category api
 */
export class StateMachineGroup extends HttpApiGroup.make("tables")
  .add(HttpApiEndpoint.get("get", "/tables", { success: Tables, error: guarded }))
  .prefix("/api")
{}

/**
 * @since 0.1.0
 * @category api
 */
export class ServerGroup extends HttpApiGroup.make("server")
  .add(HttpApiEndpoint.get("get", "/server", { success: ServerInfo, error: guarded }))
  .prefix("/api")
{}

/**
 * @since 0.1.0
 * @category api
 */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("stream", "/events", {
      query: { since: Schema.optional(Schema.String) },
      headers: { "last-event-id": Schema.optional(Schema.String) },
      success: HttpApiSchema.StreamSse({ events: EventMessage }),
      error: [...guarded, BadRequest]
    }),
    HttpApiEndpoint.get("progress", "/progress", {
      success: HttpApiSchema.StreamSse({ events: ProgressMessage }),
      error: guarded
    })
  )
  .prefix("/api")
{}

/**
 * The whole API. `GET /api/openapi.json` serves its OpenAPI document.
 *
 * @since 0.1.0
 * @category api
 */
export class Api extends HttpApi.make("effect-jobs")
  .add(JobsGroup)
  .add(TransactionsGroup)
  .add(StateMachineGroup)
  .add(ServerGroup)
  .add(EventsGroup)
  .annotateMerge(OpenApi.annotations({
    title: "effect-jobs",
    description: "Jobs with QEMU's job semantics: list, create, pause, resume, cancel, complete, finalize, " +
      "dismiss and rate-limit them, create transactions, and follow their events."
  }))
{}

/** Where the OpenAPI document is served. */
export const openapiPath = "/api/openapi.json"
