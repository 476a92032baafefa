/**
 * The errors of the HTTP API. Every one is sent as `{"error": {"class",
 * "desc"}}`, the body of a QMP error reply, with QEMU's class and text (the
 * engine's typed errors carry QEMU's texts as their `message`); the HTTP
 * status says what kind of failure it is:
 *
 * | Status | When |
 * | --- | --- |
 * | 400 | bad parameters: a body that does not match its schema (the parameter's path is in `desc`), an id, type or speed the engine refuses, a driver's check of its parameters |
 * | 403 | a request whose `Host` or `Origin` is not this server's; any POST to a read-only server |
 * | 404 | no job with this id; no such resource |
 * | 409 | the job's state does not allow the verb (`VerbNotAllowed`, already paused, not paused, cannot complete, soft cancel of a paused job), an id in use, a driver that refused the verb or failed to set up |
 * | 415 | a POST whose `Content-Type` is not `application/json` |
 * | 503 | the engine is shutting down |
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { oneLine } from "../qmp/errors.ts"

/**
 * The `error` member of an error body: QMP's error class and its description.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ErrorDetail = Schema.Struct({
  class: Schema.String,
  desc: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type ErrorDetail = typeof ErrorDetail.Type

const fields = { error: ErrorDetail }

/**
 * 400: the request's parameters are wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.Error<BadRequest>("effect-jobs/http/BadRequest")(fields, {
  httpApiStatus: 400,
  description: "Bad parameters"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 403: the request's `Host` or `Origin` is not this server's.
 *
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.Error<Forbidden>("effect-jobs/http/Forbidden")(fields, {
  httpApiStatus: 403,
  description: "Host or Origin not this server's"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 403: the server is read-only (`readOnly`, `serve --http-read-only`): it
 * refuses every POST, before looking at it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ReadOnly extends Schema.Error<ReadOnly>("effect-jobs/http/ReadOnly")(fields, {
  httpApiStatus: 403,
  description: "The server is read-only"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 404: no job with this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.Error<NotFound>("effect-jobs/http/NotFound")(fields, {
  httpApiStatus: 404,
  description: "No such job"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 409: the job's state does not allow the request.
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.Error<Conflict>("effect-jobs/http/Conflict")(fields, {
  httpApiStatus: 409,
  description: "Not allowed in the job's state"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 415: a POST without `Content-Type: application/json`.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedMediaType extends Schema.Error<UnsupportedMediaType>("effect-jobs/http/UnsupportedMediaType")(
  fields,
  { httpApiStatus: 415, description: "Not a JSON body" }
) {
  override get message() {
    return this.error.desc
  }
}

/**
 * 503: the engine is shutting down.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unavailable extends Schema.Error<Unavailable>("effect-jobs/http/Unavailable")(fields, {
  httpApiStatus: 503,
  description: "Shutting down"
}) {
  override get message() {
    return this.error.desc
  }
}

/**
 * Any error of the API.
 *
 * @since 0.1.0
 * @category errors
 */
export type ApiError = BadRequest | Forbidden | ReadOnly | NotFound | Conflict | UnsupportedMediaType | Unavailable

const detail = (desc: string, errorClass = "GenericError"): { readonly error: ErrorDetail } => ({
  error: { class: errorClass, desc: oneLine(desc) }
})

/** A 400 with QEMU's class for it. */
export const badRequest = (desc: string): BadRequest => new BadRequest(detail(desc))

export const forbidden = (desc: string): Forbidden => new Forbidden(detail(desc))

export const readOnly = (desc: string): ReadOnly => new ReadOnly(detail(desc))

export const notFound = (desc: string): NotFound => new NotFound(detail(desc))

export const conflict = (desc: string): Conflict => new Conflict(detail(desc))

export const unsupportedMediaType = (desc: string): UnsupportedMediaType => new UnsupportedMediaType(detail(desc))

/** The engine's errors by tag: which status each gets. */
const statusOf: Record<string, 400 | 404 | 409 | 503> = {
  JobNotFound: 404,
  VerbNotAllowed: 409,
  JobAlreadyPaused: 409,
  JobNotPaused: 409,
  CannotComplete: 409,
  CallbackFailed: 409,
  ChangeNotSupported: 409,
  JobIdInUse: 409,
  JobAlreadyStarted: 409,
  JobSetupFailed: 409,
  TxnClosed: 409,
  InvalidJobId: 400,
  JobIdRequired: 400,
  InternalJobWithId: 400,
  UnknownJobType: 400,
  InvalidParameters: 400,
  JobRefused: 400,
  NegativeSpeed: 400,
  EngineClosing: 503,
  StoreNotWritable: 503,
  StoreNotRecovered: 503
}

/**
 * An engine error (`JobError`) as the API answers it: the status its kind
 * calls for, class `GenericError` and the engine's text, as QMP's `job-*`
 * commands answer. An error the table does not know is a 409.
 */
export const fromJobError = (error: { readonly _tag: string; readonly message: string }): ApiError => {
  const body = detail(error.message)
  switch (statusOf[error._tag]) {
    case 400:
      return new BadRequest(body)
    case 404:
      return new NotFound(body)
    case 503:
      return new Unavailable(body)
    default:
      return new Conflict(body)
  }
}
