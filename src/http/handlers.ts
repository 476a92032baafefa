/**
 * The handlers of the API (`api.ts`), over the engine's `Jobs` and the API's
 * own state (`state.ts`).
 *
 * POST bodies are read here rather than by the HttpApi runtime, so that a
 * body that does not match its schema is answered with QMP's text, which
 * names the parameter by its path (`body.ts`). The verbs answer 204 with no
 * body; a job they name that does not exist is a 404, a verb its state does
 * not allow a 409.
 */
import { Effect, Layer } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as JobStatus from "../JobStatus.ts"
import * as JobVerb from "../JobVerb.ts"
import {
  Api,
  CancelRequest,
  CreateJob,
  CreateTransaction,
  type JobDetail,
  type JobsSnapshot,
  NoArguments,
  type ServerInfo,
  SpeedRequest,
  type Tables
} from "./api.ts"
import { bodyDecoder } from "./body.ts"
import { fromJobError, notFound } from "./errors.ts"
import { cursorOf, eventsResponse } from "./events.ts"
import { progressResponse } from "./progress.ts"
import { HttpState } from "./state.ts"
import { cancelTransaction, createTransaction, validateTransaction } from "./transactions.ts"

const decodeCreateJob = bodyDecoder(CreateJob)
const decodeTransaction = bodyDecoder(CreateTransaction)
const decodeNothing = bodyDecoder(NoArguments)
const decodeCancel = bodyDecoder(CancelRequest)
const decodeSpeed = bodyDecoder(SpeedRequest)

/** The state machine's tables, as `GET /api/tables` sends them. */
export const tables: Tables = {
  statuses: JobStatus.all,
  transitions: JobStatus.transitions,
  verbs: JobVerb.all,
  acceptedIn: JobVerb.acceptedIn
}

const jobsHandlers = HttpApiBuilder.group(Api, "jobs", (handlers) =>
  Effect.gen(function*() {
    const state = yield* HttpState
    const { jobs } = state
    /** A verb that takes no arguments. */
    const verb = (apply: (id: string) => Effect.Effect<void, { readonly _tag: string; readonly message: string }>) =>
    (
      { params, request }: {
        readonly params: { readonly id: string }
        readonly request: HttpServerRequest.HttpServerRequest
      }
    ) => Effect.andThen(decodeNothing(request), Effect.mapError(apply(params.id), fromJobError))
    return handlers
      // The views are JSON already (typed as the schema says): sent as they are, with no encoding pass.
      .handle("list", () => Effect.map(state.snapshot, (snapshot: JobsSnapshot) => HttpServerResponse.jsonUnsafe(snapshot)))
      .handle("get", ({ params }) =>
        Effect.map(
          Effect.mapError(jobs.get(params.id), (error) => notFound(error.message)),
          (job) => {
            const createdWith = state.paramsOf(job)
            const detail: JobDetail = createdWith === undefined ? state.view(job) : { ...state.view(job), params: createdWith }
            return HttpServerResponse.jsonUnsafe(detail)
          }
        ))
      .handleRaw("create", ({ request }) =>
        Effect.gen(function*() {
          const job = yield* decodeCreateJob(request)
          const created = yield* createTransaction(state, { completionMode: "individual", jobs: [job] })
          return created.jobs[0]!
        }))
      .handleRaw("pause", verb((id) => jobs.pause(id)))
      .handleRaw("resume", verb((id) => jobs.resume(id)))
      .handleRaw("cancel", ({ params, request }) =>
        Effect.gen(function*() {
          const { force } = yield* decodeCancel(request)
          yield* Effect.mapError(jobs.cancel(params.id, { force: force ?? false }), fromJobError)
        }))
      .handleRaw("complete", verb((id) => jobs.complete(id)))
      .handleRaw("finalize", verb((id) => jobs.finalize(id)))
      .handleRaw("dismiss", verb((id) => jobs.dismiss(id)))
      .handleRaw("speed", ({ params, request }) =>
        Effect.gen(function*() {
          const { speed } = yield* decodeSpeed(request)
          yield* Effect.mapError(jobs.setSpeed(params.id, speed), fromJobError)
        }))
  }))

const transactionsHandlers = HttpApiBuilder.group(Api, "transactions", (handlers) =>
  Effect.gen(function*() {
    const state = yield* HttpState
    return handlers
      .handleRaw("create", ({ request }) => Effect.flatMap(decodeTransaction(request), (body) => createTransaction(state, body)))
      .handleRaw("validate", ({ request }) =>
        Effect.flatMap(decodeTransaction(request), (body) => validateTransaction(state, body)))
      .handleRaw("cancel", ({ params, request }) =>
        Effect.andThen(decodeNothing(request), cancelTransaction(state, params.id)))
  }))

const serverHandlers = HttpApiBuilder.group(Api, "server", (handlers) =>
  Effect.gen(function*() {
    const state = yield* HttpState
    return handlers.handle("get", () =>
      Effect.map(state.jobs.snapshot, ({ seq }): ServerInfo => ({
        readOnly: state.options.readOnly ?? false,
        seq,
        qmpFlags: state.options.qmpFlags?.() ?? null
      })))
  }))

const tablesHandlers = HttpApiBuilder.group(Api, "tables", (handlers) =>
  handlers.handle("get", () => Effect.succeed(tables)))

const eventsHandlers = HttpApiBuilder.group(Api, "events", (handlers) =>
  Effect.gen(function*() {
    const state = yield* HttpState
    return handlers
      .handle("stream", ({ query, request }) =>
        Effect.flatMap(cursorOf(request, query.since), (since) => eventsResponse(state, since)))
      .handle("progress", () => Effect.sync(() => progressResponse(state)))
  }))

/**
 * Every group's handlers, over `HttpState` (and through it `Jobs`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  | Layer.Success<typeof jobsHandlers>
  | Layer.Success<typeof transactionsHandlers>
  | Layer.Success<typeof tablesHandlers>
  | Layer.Success<typeof serverHandlers>
  | Layer.Success<typeof eventsHandlers>,
  never,
  HttpState
> = Layer.mergeAll(jobsHandlers, transactionsHandlers, tablesHandlers, serverHandlers, eventsHandlers)
