/**
 * The `Jobs` service: creates jobs of the registered driver types, starts them,
 * looks them up, lists them, and carries the user verbs — pause, resume, cancel,
 * complete, finalize, dismiss, setSpeed, change — with QEMU's checks, in QEMU's
 * order, with QEMU's texts, as typed errors.
 *
 * Every job runs in its own fiber. Closing the layer's scope force-cancels and
 * finishes every job (their `abort` and `clean` run), so no job outlives it.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import type { Job, JobInfo, JobOutcome } from "./Job.ts"
import type { JobDriver } from "./JobDriver.ts"
import type {
  CallbackFailed,
  CannotComplete,
  ChangeNotSupported,
  CreateError,
  CursorExpired,
  DriverAlreadyRegistered,
  EngineClosing,
  EventsOverflow,
  JobAlreadyPaused,
  JobAlreadyStarted,
  JobCancelled,
  JobFailed,
  JobNotFound,
  JobNotPaused,
  NegativeSpeed,
  StatusNotReached,
  VerbNotAllowed
} from "./JobError.ts"
import type { JobEvent } from "./JobEvent.ts"
import type { JobStatus } from "./JobStatus.ts"
import type { JobTxn } from "./JobTxn.ts"
import type { StoreNotice } from "./StoreNotice.ts"
import { makeEngine, makeEngineWith, type StoreOpenError } from "./internal/engine.ts"
import type { RecoveryReport } from "./internal/recovery.ts"
import { JobStore } from "./JobStore.ts"

/**
 * A job, by its id or by the object `create` returned (the only way to reach an internal job).
 *
 * @since 0.1.0
 * @category models
 */
export type JobRef = string | Job

/**
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  /** The registered driver type. */
  readonly type: string
  /** Required unless `internal`; a letter, then letters, digits, `-`, `.`, `_`. */
  readonly id?: string | undefined
  /** Decoded with the driver's schema. */
  readonly params?: unknown
  /** Internal jobs have no id, send no events and are hidden from `list`. */
  readonly internal?: boolean | undefined
  /** Hold the job in PENDING until `finalize` (default: finalize automatically). */
  readonly manualFinalize?: boolean | undefined
  /** Hold the job in CONCLUDED until `dismiss` (default: dismiss automatically). */
  readonly manualDismiss?: boolean | undefined
  /** The transaction to join; without one the job gets its own. */
  readonly txn?: JobTxn | undefined
  /** The initial rate limit in units per second (0, the default, is unlimited); drivers read it as `handle.speed`. */
  readonly speed?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JobsService {
  /** Registers a driver; its requirements are captured now. */
  readonly register: <P, E, R>(driver: JobDriver<P, E, R>) => Effect.Effect<void, DriverAlreadyRegistered, R>
  /**
   * Checks what `create` checks before it builds anything — the id rules, the
   * type, the parameters — without creating a job. For all-or-nothing batches
   * (e.g. a QMP `transaction`): validate every job, then create them.
   */
  readonly validate: (options: CreateOptions) => Effect.Effect<void, CreateError>
  /** Creates a job in CREATED. It does not run until `start`. */
  readonly create: (options: CreateOptions) => Effect.Effect<Job, CreateError>
  /** CREATED → RUNNING: the job's fiber starts and runs until its first wait. */
  readonly start: (job: JobRef) => Effect.Effect<void, JobNotFound | JobAlreadyStarted | EngineClosing>
  /** `create` then `start`, as one uninterruptible step: an interrupted caller leaves the job running, never CREATED. */
  readonly run: (options: CreateOptions) => Effect.Effect<Job, CreateError>
  readonly get: (id: string) => Effect.Effect<Job, JobNotFound>
  /** QEMU's `query-jobs`: every job with an id, in creation order. */
  readonly list: Effect.Effect<ReadonlyArray<JobInfo>>
  readonly pause: (job: JobRef) => Effect.Effect<void, JobNotFound | VerbNotAllowed | JobAlreadyPaused>
  readonly resume: (job: JobRef) => Effect.Effect<void, JobNotFound | JobNotPaused | VerbNotAllowed>
  /** Soft by default: the driver's `cancel` decides what a soft cancel means. */
  readonly cancel: (
    job: JobRef,
    options?: { readonly force?: boolean | undefined }
  ) => Effect.Effect<void, JobNotFound | VerbNotAllowed>
  readonly complete: (job: JobRef) => Effect.Effect<void, JobNotFound | VerbNotAllowed | CannotComplete | CallbackFailed>
  /** Finalizes the job's whole transaction. */
  readonly finalize: (job: JobRef) => Effect.Effect<void, JobNotFound | VerbNotAllowed>
  readonly dismiss: (job: JobRef) => Effect.Effect<void, JobNotFound | VerbNotAllowed>
  readonly setSpeed: (
    job: JobRef,
    speed: number
  ) => Effect.Effect<void, JobNotFound | VerbNotAllowed | NegativeSpeed | CallbackFailed>
  readonly change: (
    job: JobRef,
    options: unknown
  ) => Effect.Effect<void, JobNotFound | VerbNotAllowed | ChangeNotSupported | CallbackFailed>
  /**
   * A pause hold with a reason, released when the scope closes. Holds add to the
   * pause count like the user's pause, but any number may be held, each released once.
   * With a durable store, holds survive a restart without a holder: holding the job
   * again for the same reason takes such a hold over instead of adding one.
   */
  readonly hold: (job: JobRef, reason: string) => Effect.Effect<void, JobNotFound, Scope.Scope>
  /** QEMU job_enter: wakes a job waiting in `yield` or `sleep`. */
  readonly enter: (job: JobRef) => Effect.Effect<void, JobNotFound>
  /** Cancels (without the verb check) and waits until the job has completed (WAITING or later). */
  readonly cancelSync: (
    job: JobRef,
    options?: { readonly force?: boolean | undefined }
  ) => Effect.Effect<JobOutcome, JobNotFound>
  /** Completes and waits until the job has completed (WAITING or later). */
  readonly completeSync: (
    job: JobRef
  ) => Effect.Effect<JobOutcome, JobNotFound | VerbNotAllowed | CannotComplete | CallbackFailed>
  /** Waits until the job has completed (WAITING or later; PENDING with manual finalize). */
  readonly finishSync: (job: JobRef) => Effect.Effect<JobOutcome, JobNotFound>
  /** Waits until the job is in `status` (now or later); fails if it is dismissed first. */
  readonly awaitStatus: (job: JobRef, status: JobStatus) => Effect.Effect<void, JobNotFound | StatusNotReached>
  /**
   * Waits for the job's final outcome: CONCLUDED, or — for a job that dismisses
   * itself — NULL, so that every event of the job has been published.
   */
  readonly awaitOutcome: (job: JobRef) => Effect.Effect<JobOutcome, JobNotFound>
  /** Waits for CONCLUDED and fails unless the job succeeded. */
  readonly join: (job: JobRef) => Effect.Effect<void, JobNotFound | JobFailed | JobCancelled>
  /**
   * Subscribes now: the stream has every event published from this moment on.
   * With `since`, it starts after the event whose `seq` is `since` instead: the
   * retained events after it, then the live ones, with no gap and no duplicate;
   * it fails with `CursorExpired` if some of those events are no longer
   * retained (read `snapshot` again and subscribe from its `seq`). It ends with
   * `EventsOverflow` if its reader falls `capacity` events behind.
   */
  readonly subscribe: {
    (
      options?: { readonly capacity?: number | undefined; readonly since?: undefined }
    ): Effect.Effect<Stream.Stream<JobEvent, EventsOverflow>, never, Scope.Scope>
    (
      options: { readonly capacity?: number | undefined; readonly since: number }
    ): Effect.Effect<Stream.Stream<JobEvent, EventsOverflow>, CursorExpired, Scope.Scope>
  }
  /**
   * The job list (as `list`) together with the sequence number of the last event
   * it reflects: subscribing with `since: seq` afterwards misses nothing and
   * repeats nothing.
   */
  readonly snapshot: Effect.Effect<{ readonly seq: number; readonly jobs: ReadonlyArray<JobInfo> }>
  /** The events, subscribing when the stream starts. */
  readonly events: Stream.Stream<JobEvent, EventsOverflow>
  /**
   * Waits until every subscriber has processed every event published so far:
   * its reader has taken each one and come back for more. After `awaitOutcome`,
   * it is what lets a program end without cutting off the tail of an event
   * reader it forked (a subscription that ends counts as done; one that nobody
   * reads holds the wait up).
   */
  readonly awaitDelivered: Effect.Effect<void>
  /**
   * With a durable store (`layerDurable`): waits until everything published or
   * changed so far is in the store and its events are delivered — what a
   * server's reply waits for, so a client never hears of something the store
   * could lose. Without a store it returns at once.
   */
  readonly durable: Effect.Effect<void>
  /**
   * With a durable store: brings back the jobs it holds (see docs/durability.md),
   * once, after the drivers are registered. New jobs are refused
   * (`StoreNotRecovered`) until it has run. Without a store: nothing to do.
   */
  readonly recover: Effect.Effect<RecoveryReport>
  /**
   * With a durable store: its notices from now on (`StoreNotice.ts`) —
   * `StoreUnwritable` when a write fails, once per outage (or at once, if the
   * stream starts during one), `StoreWritable` when one succeeds again. The
   * stream ends when the engine closes; without a store it never emits.
   */
  readonly storeNotices: Stream.Stream<StoreNotice>
}

/**
 * Tears down jobs that were created but never started, newest first (QEMU
 * aborts a transaction's actions in reverse): each is cancelled, waited for and
 * dismissed (CONCLUDED, then NULL) before the next. In a shared transaction the
 * first cancel aborts every member; the others are then waited for and
 * dismissed in the same order. For "all or none" creation of several jobs.
 *
 * @since 0.1.0
 * @category combinators
 */
export const discardUnstarted = (jobs: JobsService, created: ReadonlyArray<Job>): Effect.Effect<void> =>
  // Uninterruptible: stopped half-way, it would leave the newer jobs gone and the older ones CREATED.
  Effect.uninterruptible(Effect.gen(function*() {
    for (const job of [...created].reverse()) {
      if (job.status !== "concluded" && job.status !== "null") {
        yield* Effect.ignore(jobs.cancel(job, { force: true }))
      }
      yield* Effect.ignore(jobs.awaitOutcome(job))
      if (job.status === "concluded") yield* Effect.ignore(jobs.dismiss(job))
    }
  }))

/**
 * Creates a job for each of `requests`, in order, then starts them all: all
 * or none. If a creation fails, the jobs created before it are discarded
 * (`discardUnstarted`) and then its error is returned; `onCreated` sees each
 * job (with its request's index) as it is created, before any is started. The whole is uninterruptible:
 * a caller interrupted midway (a client that goes away) leaves every job
 * started, or none created — never a job CREATED and left so. For the
 * several jobs of one request (QMP's `transaction`, the HTTP API's).
 *
 * @since 0.1.0
 * @category combinators
 */
export const createAndStartAll = (
  jobs: JobsService,
  requests: ReadonlyArray<CreateOptions>,
  onCreated?: (job: Job, index: number) => void
): Effect.Effect<ReadonlyArray<Job>, CreateError | JobNotFound | JobAlreadyStarted> =>
  Effect.uninterruptible(Effect.gen(function*() {
    const created: Array<Job> = []
    for (let i = 0; i < requests.length; i++) {
      const job = yield* Effect.catch(
        jobs.create(requests[i]!),
        (error) => Effect.andThen(discardUnstarted(jobs, created), Effect.fail(error))
      )
      created.push(job)
      onCreated?.(job, i)
    }
    for (const job of created) yield* jobs.start(job)
    return created
  }))

/**
 * @since 0.1.0
 * @category models
 */
export interface JobsOptions {
  /** Events a subscriber may fall behind before it is cut off (default 4096). */
  readonly eventBuffer?: number | undefined
  /**
   * Events the event log keeps for subscribers that resume from a sequence number (default 10,000; 0 keeps
   * none). The log opens when it is first read — a subscription or a snapshot — since nobody holds a
   * sequence number before that; until then events are not even built.
   */
  readonly retainedEvents?: number | undefined
}

/**
 * @since 0.1.0
 * @category services
 */
export class Jobs extends Context.Service<Jobs, JobsService>()("effect-jobs/Jobs") {}

/**
 * A `Jobs` with no drivers; add them with `JobDriver.layer`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Jobs> = Layer.effect(Jobs, makeEngine({}))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: JobsOptions): Layer.Layer<Jobs> => Layer.effect(Jobs, makeEngine(options))

/**
 * A `Jobs` whose jobs, transactions and events are kept in the `JobStore`
 * (see docs/durability.md): it takes the store's lease for its life (failing
 * with `StoreOwned`, naming the holder, while another process has it), and
 * every event is in the store before any subscriber or client sees it. Call
 * `recover` once the drivers are registered; new jobs wait for it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDurable = (options: JobsOptions = {}): Layer.Layer<Jobs, StoreOpenError, JobStore> =>
  Layer.effect(
    Jobs,
    Effect.gen(function*() {
      const store = yield* JobStore
      return yield* makeEngineWith(options, store)
    })
  )

/**
 * @since 0.1.0
 * @category models
 */
export type { RecoveryReport }
