/**
 * Typed errors of the job engine. Each carries the data that explains it, and its
 * `message` is QEMU's text wherever QEMU has one, so management tools see the
 * same words from effect-jobs as from QEMU.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JobStatus } from "./JobStatus.ts"
import { JobVerb } from "./JobVerb.ts"

/**
 * No job (with an id) is known by this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", { id: Schema.String }) {
  override get message() {
    return "Job not found"
  }
}

/**
 * The job's status does not accept the verb (see `JobVerb.acceptedIn`).
 *
 * @since 0.1.0
 * @category errors
 */
export class VerbNotAllowed extends Schema.TaggedError<VerbNotAllowed>()("VerbNotAllowed", {
  id: Schema.String,
  status: JobStatus,
  verb: JobVerb
}) {
  override get message() {
    return `Job '${this.id}' in state '${this.status}' cannot accept command verb '${this.verb}'`
  }
}

/**
 * `pause` while the user's pause is already in place.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobAlreadyPaused extends Schema.TaggedError<JobAlreadyPaused>()("JobAlreadyPaused", {
  id: Schema.String
}) {
  override get message() {
    return "Job is already paused"
  }
}

/**
 * `resume` of a job the user did not pause.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotPaused extends Schema.TaggedError<JobNotPaused>()("JobNotPaused", { id: Schema.String }) {
  override get message() {
    return "Can't resume a job that was not paused"
  }
}

/**
 * `complete` of a job whose cancel was requested, or whose driver cannot complete.
 *
 * @since 0.1.0
 * @category errors
 */
export class CannotComplete extends Schema.TaggedError<CannotComplete>()("CannotComplete", {
  id: Schema.String
}) {
  override get message() {
    return `The active block job '${this.id}' cannot be completed`
  }
}

/**
 * `change` of a job whose driver has no `change` callback.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChangeNotSupported extends Schema.TaggedError<ChangeNotSupported>()("ChangeNotSupported", {
  id: Schema.String
}) {
  override get message() {
    return "Job type does not support change"
  }
}

/**
 * `setSpeed` with a negative speed (checked after the lookup and the verb check, as QEMU does).
 *
 * @since 0.1.0
 * @category errors
 */
export class NegativeSpeed extends Schema.TaggedError<NegativeSpeed>()("NegativeSpeed", {
  id: Schema.String,
  speed: Schema.Number
}) {
  override get message() {
    return "Parameter 'speed' expects a non-negative value"
  }
}

/**
 * An internal job was given an id.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalJobWithId extends Schema.TaggedError<InternalJobWithId>()("InternalJobWithId", {
  id: Schema.String
}) {
  override get message() {
    return "Cannot specify job ID for internal job"
  }
}

/**
 * An id that is not a letter followed by letters, digits, `-`, `.` or `_`.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidJobId extends Schema.TaggedError<InvalidJobId>()("InvalidJobId", { id: Schema.String }) {
  override get message() {
    return `Invalid job ID '${this.id}'`
  }
}

/**
 * The id belongs to a job that has not been dismissed yet.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobIdInUse extends Schema.TaggedError<JobIdInUse>()("JobIdInUse", { id: Schema.String }) {
  override get message() {
    return `Job ID '${this.id}' already in use`
  }
}

/**
 * A job that is not internal was created without an id.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobIdRequired extends Schema.TaggedError<JobIdRequired>()("JobIdRequired", {}) {
  override get message() {
    return "An explicit job ID is required"
  }
}

/**
 * No driver is registered for the job type.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownJobType extends Schema.TaggedError<UnknownJobType>()("UnknownJobType", {
  type: Schema.String
}) {
  override get message() {
    return `Job type '${this.type}' is not registered`
  }
}

/**
 * The job's parameters do not match its driver's schema. The message is one
 * line (QMP sends it as an error's `desc`): the schema's own text puts the
 * path on a line of its own, which joins the first here.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidParameters extends Schema.TaggedError<InvalidParameters>()("InvalidParameters", {
  type: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Invalid parameters for job type '${this.type}': ${this.detail.trim().replace(/\s*[\r\n]+\s*/g, " ")}`
  }
}

/**
 * The driver could not set the job up; the job was created and failed early (CREATED → NULL).
 *
 * @since 0.1.0
 * @category errors
 */
export class JobSetupFailed extends Schema.TaggedError<JobSetupFailed>()("JobSetupFailed", {
  id: Schema.String,
  type: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/**
 * The driver's `check` refused the parameters: no job was created.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobRefused extends Schema.TaggedError<JobRefused>()("JobRefused", {
  id: Schema.String,
  type: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/**
 * A driver callback run on behalf of a verb (`complete`, `change`, `setSpeed`) failed;
 * the job is unaffected.
 *
 * @since 0.1.0
 * @category errors
 */
export class CallbackFailed extends Schema.TaggedError<CallbackFailed>()("CallbackFailed", {
  id: Schema.String,
  callback: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return this.detail
  }
}

/**
 * A subscriber fell more than its buffer behind the engine. Its stream ends with
 * this error after the events it had buffered; the engine and the other
 * subscribers are not slowed down.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventsOverflow extends Schema.TaggedError<EventsOverflow>()("EventsOverflow", {
  capacity: Schema.Number
}) {
  override get message() {
    return `Event subscriber fell more than ${this.capacity} events behind and was disconnected`
  }
}

/**
 * `subscribe({ since })` with a cursor older than the event log still holds:
 * some events after it are gone. Read the job list again (`Jobs.snapshot`) and
 * subscribe from its `seq`, as a Kubernetes client lists again after 410 Gone.
 *
 * @since 0.1.0
 * @category errors
 */
export class CursorExpired extends Schema.TaggedError<CursorExpired>()("CursorExpired", {
  since: Schema.Number,
  /** The oldest sequence number still retained (the next event's, when none is). */
  oldest: Schema.Number
}) {
  override get message() {
    return `Events after ${this.since} are no longer retained; the oldest retained is ${this.oldest}`
  }
}

/**
 * `awaitStatus` for a status the job left the engine without reaching.
 *
 * @since 0.1.0
 * @category errors
 */
export class StatusNotReached extends Schema.TaggedError<StatusNotReached>()("StatusNotReached", {
  id: Schema.String,
  status: JobStatus
}) {
  override get message() {
    return `Job '${this.id}' was dismissed without reaching status '${this.status}'`
  }
}

/**
 * `join` of a job that concluded with an error.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobFailed extends Schema.TaggedError<JobFailed>()("JobFailed", {
  id: Schema.String,
  error: Schema.String
}) {
  override get message() {
    return this.error
  }
}

/**
 * `join` of a job that was cancelled.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobCancelled extends Schema.TaggedError<JobCancelled>()("JobCancelled", { id: Schema.String }) {
  override get message() {
    return `Job '${this.id}' was cancelled`
  }
}

/**
 * The errors of creating a job.
 *
 * @since 0.1.0
 * @category errors
 */
export type CreateError =
  | InternalJobWithId
  | InvalidJobId
  | JobIdInUse
  | JobIdRequired
  | UnknownJobType
  | InvalidParameters
  | JobSetupFailed
  | JobRefused
  | TxnClosed
  | EngineClosing
  | NegativeSpeed
  | StoreNotWritable
  | StoreNotRecovered

/**
 * `start` of a job that is not in CREATED.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobAlreadyStarted extends Schema.TaggedError<JobAlreadyStarted>()("JobAlreadyStarted", {
  id: Schema.String,
  status: JobStatus
}) {
  override get message() {
    return `Job '${this.id}' has already been started (state '${this.status}')`
  }
}

/**
 * A driver is already registered for this job type.
 *
 * @since 0.1.0
 * @category errors
 */
export class DriverAlreadyRegistered extends Schema.TaggedError<DriverAlreadyRegistered>()(
  "DriverAlreadyRegistered",
  { type: Schema.String }
) {
  override get message() {
    return `A driver for job type '${this.type}' is already registered`
  }
}

/**
 * A job was created in a transaction whose members have all finished: members
 * join only while the transaction runs (create every member before starting them).
 *
 * @since 0.1.0
 * @category errors
 */
export class TxnClosed extends Schema.TaggedError<TxnClosed>()("TxnClosed", { id: Schema.String }) {
  override get message() {
    return `Job '${this.id}' cannot join a transaction whose members have already finished`
  }
}

/**
 * `JobTxn.awaitOutcome` of a transaction that has no members: there is nothing
 * to commit or abort, and so no outcome to wait for.
 *
 * @since 0.1.0
 * @category errors
 */
export class TxnEmpty extends Schema.TaggedError<TxnEmpty>()("TxnEmpty", {}) {
  override get message() {
    return "The transaction has no members"
  }
}

/**
 * The `Jobs` layer is closing: no job may be created or started any more.
 *
 * @since 0.1.0
 * @category errors
 */
export class EngineClosing extends Schema.TaggedError<EngineClosing>()("EngineClosing", {}) {
  override get message() {
    return "The job engine is shutting down"
  }
}

/**
 * The engine's durable store cannot be written (the disk is full, the
 * database is down, the lease was lost): new jobs are refused until a write
 * succeeds again. The jobs already running go on; nothing committed is lost.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreNotWritable extends Schema.TaggedError<StoreNotWritable>()("StoreNotWritable", {
  store: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `The job store ${this.store} cannot be written (${this.reason}); new jobs are refused until it can`
  }
}

/**
 * The engine has a durable store whose jobs it has not brought back yet:
 * `Jobs.recover` comes first, once the drivers are registered.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreNotRecovered extends Schema.TaggedError<StoreNotRecovered>()("StoreNotRecovered", {
  store: Schema.String
}) {
  override get message() {
    return `The jobs stored in ${this.store} have not been recovered yet; recover them before creating new ones`
  }
}
