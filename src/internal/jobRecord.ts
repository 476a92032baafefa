/**
 * The engine's record of one job, and the one function through which every
 * status change goes. All fields are changed only inside synchronous steps
 * (`Effect.sync`), which JavaScript runs to the end without interleaving: that
 * is the engine's lock. Driver callbacks run between such steps, never inside.
 * @internal
 */
import { Cause, type Clock, Deferred, Effect, Exit, Fiber, MutableRef, Ref, type Schema, type Tracer } from "effect"
import type { CallbackFailedCause } from "./callbackFailure.ts"
import type { Job, JobInfo, JobOutcome } from "../Job.ts"
import type { JobCallbacks } from "../JobDriver.ts"
import { StatusNotReached } from "../JobError.ts"
import type { Unstamped } from "../JobEvent.ts"
import type { JobHandle } from "../JobHandle.ts"
import * as JobStatus from "../JobStatus.ts"
import type { JobMetrics } from "../observability/metrics.ts"
import { type JobTracing, statusChanged } from "../observability/tracing.ts"
import type { EventHub } from "./eventHub.ts"
import type { FiberCount } from "./fiberCount.ts"
import type { Persistence } from "./persistence.ts"
import { TxnState } from "./txnState.ts"

/** Shared by every job of one `Jobs` instance. */
export interface EngineState {
  readonly hub: EventHub
  /**
   * Every job not yet dismissed, internal ones included, in creation order: keyed
   * by its id (O(1) lookup), or by the record itself when it has none. One map,
   * not a set beside it: each entry is paid for by every job for its whole life.
   */
  readonly jobs: Map<string | JobRecord, JobRecord>
  /** Job fibers still running, so the engine can wait for them when it closes. */
  readonly fibers: FiberCount
  closing: boolean
  /** The engine's clock (a job's start time, for its duration). */
  readonly clock: Clock.Clock
  /** When the engine was made, on its clock (milliseconds): jobs' start times count from it. */
  readonly epoch: number
  /** The metric series the engine counts into. */
  readonly metrics: JobMetrics
  /** The tracer jobs get spans from; `undefined` when none records spans. */
  readonly tracing: JobTracing | undefined
  /** The writer to the durable store, when the engine has one. */
  persistence: Persistence | undefined
}

interface StatusWaiter {
  readonly status: JobStatus.JobStatus
  readonly resume: (exit: Exit.Exit<void, StatusNotReached>) => void
}

/**
 * A wait registered in `set` until `resume` is called; an interrupted waiter
 * takes itself out at once, so abandoned waits cost nothing afterwards.
 * `now` is checked in the same step as the registration (a fiber may yield
 * between any two steps, and the status may change meanwhile): when it returns
 * an exit, the wait is over before it began.
 */
const waitIn = <W, A, E>(
  now: () => Exit.Exit<A, E> | undefined,
  set: () => Set<W>,
  make: (resume: (exit: Exit.Exit<A, E>) => void) => W
): Effect.Effect<A, E> =>
  Effect.callback<A, E>((resume) => {
    const done = now()
    if (done !== undefined) return resume(done)
    const waiters = set()
    const waiter = make(resume)
    waiters.add(waiter)
    return Effect.sync(() => {
      waiters.delete(waiter)
    })
  })

export const canceledMessage = "Operation canceled"

// Outcomes are read-only values: the ones without data are shared.
const succeededOutcome: JobOutcome = Object.freeze({ _tag: "Succeeded" })
const cancelledOutcome: JobOutcome = Object.freeze({ _tag: "Cancelled" })

/**
 * The record's yes/no facts, one bit each in one number: a server holds a
 * record per job, paused ones included, for as long as the job lives.
 */
const pausedBit = 1
const userPausedBit = 2
const busyFlagBit = 4
const startedBit = 8
const runReturnedBit = 16
const cancelRequestedBit = 32
const isCancelledBit = 64
const sleepingBit = 128
const finalizingBit = 256
const internalBit = 512
const autoFinalizeBit = 1024
const autoDismissBit = 2048

/** What few jobs need (pause holds, a failed callback, waiters, a span): made on first use. */
class JobExtras {
  holds: Map<object, string> | undefined = undefined
  callbackFailure: CallbackFailedCause | undefined = undefined
  /** Cancel requests calling the driver right now; finalization waits for them. */
  cancelsInFlight = 0
  cancelsDone: Deferred.Deferred<void> | undefined = undefined
  span: Tracer.Span | undefined = undefined
  statusWaiters: Set<StatusWaiter> | undefined = undefined
  completedWaiters: Set<(exit: Exit.Exit<void>) => void> | undefined = undefined
  concludedWaiters: Set<(exit: Exit.Exit<JobOutcome>) => void> | undefined = undefined
  /** For a durable store: the parameters as given, and when the job was created (engine clock, ms). */
  storedParams: unknown = undefined
  createdAt = 0
  /** The driver's last checkpoint, and the one the job was brought back from after a restart. */
  checkpoint: Schema.Json | undefined = undefined
  resumedFrom: Schema.Json | undefined = undefined
}

export class JobRecord implements Job {
  status: JobStatus.JobStatus = "undefined"
  /** Pause requests: creation's, the user's, each hold's. `pausePoint` parks while it is above 0. */
  readonly pauseCountRef: Ref.Ref<number> = Ref.makeUnsafe(1)
  private flags = pausedBit
  private extras: JobExtras | undefined = undefined
  /** The job's error, once it has one; set at most once, except that `Operation canceled` is never overwritten. */
  error: string | undefined = undefined
  current = 0
  total = 0
  speed = 0
  /** Waiting in `yield`/`sleep`; completing it is `enter`. */
  wake: Deferred.Deferred<void> | undefined = undefined
  /** Parked at a pause point: resumes the job's waiting fiber (see `unparkUnsafe`). */
  unpark: ((effect: Effect.Effect<void>) => void) | undefined = undefined
  /** The fiber running `run`, while `run` may still be interrupted. */
  runFiber: Fiber.Fiber<unknown, unknown> | undefined = undefined
  callbacks: JobCallbacks<unknown> | undefined = undefined
  handle: JobHandle | undefined = undefined
  /**
   * When it started: milliseconds since the engine's epoch, which stay a small
   * integer (no boxed number per job) for the engine's first 24 days.
   */
  startedAt = 0
  /** The job's last row in the engine's list (see `list`). */
  lastInfo: JobInfo | undefined = undefined

  readonly engine: EngineState
  readonly id: string | undefined
  readonly type: string
  /** The job's transaction; a job alone in its own gets it when first asked (see `txn`). */
  private txnState: TxnState | undefined

  constructor(
    engine: EngineState,
    id: string | undefined,
    type: string,
    internal: boolean,
    autoFinalize: boolean,
    autoDismiss: boolean,
    txn: TxnState | undefined
  ) {
    this.engine = engine
    this.id = id
    this.type = type
    this.txnState = txn
    this.flags = pausedBit | (internal ? internalBit : 0) | (autoFinalize ? autoFinalizeBit : 0) |
      (autoDismiss ? autoDismissBit : 0)
  }

  private flag(bit: number): boolean {
    return (this.flags & bit) !== 0
  }
  private setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit
  }
  /** Parked at a pause point, or not started yet. */
  get paused(): boolean {
    return this.flag(pausedBit)
  }
  set paused(on: boolean) {
    this.setFlag(pausedBit, on)
  }
  get userPaused(): boolean {
    return this.flag(userPausedBit)
  }
  set userPaused(on: boolean) {
    this.setFlag(userPausedBit, on)
  }
  /** Doing work (not sleeping, yielded or parked); see `busy`. */
  get busyFlag(): boolean {
    return this.flag(busyFlagBit)
  }
  set busyFlag(on: boolean) {
    this.setFlag(busyFlagBit, on)
  }
  get started(): boolean {
    return this.flag(startedBit)
  }
  set started(on: boolean) {
    this.setFlag(startedBit, on)
  }
  /** `run` has returned (QEMU: deferred_to_main_loop); verbs that act on a running job no longer apply. */
  get runReturned(): boolean {
    return this.flag(runReturnedBit)
  }
  set runReturned(on: boolean) {
    this.setFlag(runReturnedBit, on)
  }
  /** Cancel requested (soft or force). */
  get cancelRequested(): boolean {
    return this.flag(cancelRequestedBit)
  }
  set cancelRequested(on: boolean) {
    this.setFlag(cancelRequestedBit, on)
  }
  /** Really cancelled (force): the job stops without further work. */
  get isCancelled(): boolean {
    return this.flag(isCancelledBit)
  }
  set isCancelled(on: boolean) {
    this.setFlag(isCancelledBit, on)
  }
  /** A sleep timer is armed (QEMU: the sleep timer is pending). */
  get sleeping(): boolean {
    return this.flag(sleepingBit)
  }
  set sleeping(on: boolean) {
    this.setFlag(sleepingBit, on)
  }
  /** Finalization (commit/abort, clean) has begun: no cancel calls the driver any more. */
  get finalizing(): boolean {
    return this.flag(finalizingBit)
  }
  set finalizing(on: boolean) {
    this.setFlag(finalizingBit, on)
  }
  get internal(): boolean {
    return this.flag(internalBit)
  }
  get autoFinalize(): boolean {
    return this.flag(autoFinalizeBit)
  }
  get autoDismiss(): boolean {
    return this.flag(autoDismissBit)
  }
  /** Cancel requests calling the driver right now; finalization waits for them. */
  private get cancelsInFlight(): number {
    return this.extras === undefined ? 0 : this.extras.cancelsInFlight
  }
  /** The parameters as the job was created with them; kept only for a durable store. */
  get storedParams(): unknown {
    return this.extras?.storedParams
  }
  /** When it was created (engine clock, milliseconds); kept only for a durable store. */
  get createdAt(): number {
    return this.extras?.createdAt ?? 0
  }
  /** The checkpoint a restarted job goes on from (`JobHandle.resumedFrom`). */
  get resumedFrom(): Schema.Json | undefined {
    return this.extras?.resumedFrom
  }
  set resumedFrom(data: Schema.Json | undefined) {
    this.more.resumedFrom = data
  }
  /** The driver's last checkpoint (kept only for a durable store). */
  get checkpointData(): Schema.Json | undefined {
    return this.extras?.checkpoint
  }
  set checkpointData(data: Schema.Json | undefined) {
    this.more.checkpoint = data
  }
  /** Keeps what a durable store needs to bring the job back. */
  keepForStore(params: unknown, createdAt: number): void {
    const extras = this.more
    extras.storedParams = params
    extras.createdAt = createdAt
  }
  private get more(): JobExtras {
    return (this.extras ??= new JobExtras())
  }
  /** Pause holds by key. */
  get holds(): Map<object, string> | undefined {
    return this.extras?.holds
  }
  set holds(holds: Map<object, string> | undefined) {
    this.more.holds = holds
  }
  /** A callback failed outside `run` (pause, resume, userResume, cancel): the job fails with it. */
  get callbackFailure(): CallbackFailedCause | undefined {
    return this.extras?.callbackFailure
  }
  set callbackFailure(failure: CallbackFailedCause | undefined) {
    this.more.callbackFailure = failure
  }
  /** The job's span, from creation until CONCLUDED, when the engine traces. */
  get span(): Tracer.Span | undefined {
    return this.extras?.span
  }
  set span(span: Tracer.Span | undefined) {
    if (span !== undefined || this.extras !== undefined) this.more.span = span
  }

  /**
   * The job's transaction. A job created without one is alone in a private one,
   * made when first needed — mostly when `run` returns: a running or parked job
   * does not pay for it.
   */
  get txn(): TxnState {
    return (this.txnState ??= TxnState.alone(this))
  }

  /** Its transaction has been made (always, but for a private one not yet needed). */
  get hasTxn(): boolean {
    return this.txnState !== undefined
  }

  /** Its transaction's finalization is under way (see `TxnState.locked`); false for a private one not yet made. */
  get txnLocked(): boolean {
    return this.txnState !== undefined && this.txnState.locked
  }

  /**
   * Busy as QEMU reports it: doing work, or a member of a transaction whose
   * finalization is under way (QEMU holds its lock through finalization, so no
   * observer ever sees a member idle in the middle of it).
   */
  get busy(): boolean {
    return this.busyFlag || this.txnLocked
  }
  set busy(busy: boolean) {
    this.busyFlag = busy
  }

  /** Waits registered on this job and not yet settled or abandoned. */
  get waiterCount(): number {
    return (this.extras?.statusWaiters?.size ?? 0) + (this.extras?.completedWaiters?.size ?? 0) +
      (this.extras?.concludedWaiters?.size ?? 0)
  }

  get label(): string {
    return this.id ?? "<internal>"
  }
  get pauseCount(): number {
    return Ref.getUnsafe(this.pauseCountRef)
  }
  set pauseCount(n: number) {
    MutableRef.set(this.pauseCountRef.ref, n)
  }
  get pauseHolds(): ReadonlyArray<string> {
    return this.holds === undefined ? [] : Array.from(this.holds.values())
  }
  get progress() {
    return { current: this.current, total: this.total }
  }

  /** The outcome as QEMU's sync helpers and the final result report it. */
  outcome(): JobOutcome {
    if (this.isCancelled && (this.error === undefined || this.error === canceledMessage)) {
      return cancelledOutcome
    }
    return this.error === undefined ? succeededOutcome : { _tag: "Failed", error: this.error }
  }

  /**
   * The only way a job changes status. An edge outside the table is a defect of
   * the engine. `then` is an event that belongs right after the status change
   * (READY, PENDING).
   *
   * Effect resumes a waiting fiber synchronously, inside this call: so the caller
   * must have finished changing the job before it calls this, and waiters are
   * told last, after the events.
   */
  transition(to: JobStatus.JobStatus, then?: (id: string) => Unstamped): void {
    const from = this.setStatusUnsafe(to, then)
    if (from !== to) this.notifyStatusUnsafe(to)
  }

  /** The first half of `transition`: check, change, publish. Returns the previous status. */
  setStatusUnsafe(to: JobStatus.JobStatus, then?: (id: string) => Unstamped): JobStatus.JobStatus {
    const from = this.status
    if (!JobStatus.canTransition(from, to)) {
      throw new Error(`effect-jobs: illegal status change ${from} -> ${to} for job '${this.label}'`)
    }
    this.status = to
    if (this.span !== undefined && from !== to) statusChanged(this, this.span, from, to)
    if (this.engine.persistence !== undefined) this.engine.persistence.touch(this)
    if (from !== to && !this.internal && this.engine.hub.active) {
      this.engine.hub.publish({ _tag: "StatusChange", id: this.id!, status: to })
      if (then !== undefined) this.engine.hub.publish(then(this.id!))
    }
    return from
  }

  /** The second half of `transition`: wakes whoever waits for this status. */
  notifyStatusUnsafe(to: JobStatus.JobStatus, outcome?: JobOutcome): void {
    const extras = this.extras
    if (extras === undefined) return
    if (extras.statusWaiters !== undefined) this.settleStatusWaiters(extras, to)
    if (JobStatus.isCompleted(to) && extras.completedWaiters !== undefined) {
      const waiters = extras.completedWaiters
      extras.completedWaiters = undefined
      for (const resume of waiters) resume(Exit.void)
    }
    // A job that dismisses itself has its final word at NULL: its outcome waiters hear of it then.
    if ((to === "null" || (to === "concluded" && !this.dismissesItself)) && extras.concludedWaiters !== undefined) {
      const waiters = extras.concludedWaiters
      extras.concludedWaiters = undefined
      const exit = Exit.succeed(outcome ?? this.outcome())
      for (const resume of waiters) resume(exit)
    }
  }

  private settleStatusWaiters(extras: JobExtras, to: JobStatus.JobStatus): void {
    const settled: Array<[StatusWaiter, Exit.Exit<void, StatusNotReached>]> = []
    const waiters = extras.statusWaiters!
    for (const w of waiters) {
      if (w.status === to) settled.push([w, Exit.void])
      else if (to === "null") {
        settled.push([w, Exit.fail(new StatusNotReached({ id: this.label, status: w.status }))])
      }
    }
    for (const [w] of settled) waiters.delete(w)
    if (waiters.size === 0) extras.statusWaiters = undefined
    for (const [w, exit] of settled) w.resume(exit)
  }

  /** Publishes a non-status event, unless the job is internal or nobody listens. */
  emit(make: (id: string) => Unstamped): void {
    if (!this.internal && this.engine.hub.active) this.engine.hub.publish(make(this.id!))
  }

  progressPayload(id: string) {
    return { id, type: this.type, len: this.total, offset: this.current, speed: this.speed }
  }

  /** Resolves when the job is in `status` (now or later); fails if it is dismissed first. */
  awaitStatus(status: JobStatus.JobStatus): Effect.Effect<void, StatusNotReached> {
    return waitIn(
      () =>
        this.status === status
          ? Exit.void
          : this.status === "null"
          ? Exit.fail(new StatusNotReached({ id: this.label, status }))
          : undefined,
      () => (this.more.statusWaiters ??= new Set()),
      (resume) => ({ status, resume })
    )
  }

  /** Resolves once `run` has returned and its outcome is recorded (WAITING or later). */
  awaitCompleted(): Effect.Effect<void> {
    return waitIn(
      () => (JobStatus.isCompleted(this.status) ? Exit.void : undefined),
      () => (this.more.completedWaiters ??= new Set()),
      (resume) => resume
    )
  }

  /** Dismissed right after it concludes: automatic dismiss, or it never started. */
  get dismissesItself(): boolean {
    return this.autoDismiss || !this.started
  }

  /**
   * Resolves with the job's final outcome once it is CONCLUDED — for a job that
   * dismisses itself, once it is NULL, so that its last event has been published.
   */
  awaitConcluded(): Effect.Effect<JobOutcome> {
    return waitIn(
      () => this.concludedExitUnsafe(),
      () => (this.more.concludedWaiters ??= new Set()),
      (resume) => resume
    )
  }

  /** The final outcome if `awaitConcluded` would have it at once, else `undefined`. */
  concludedExitUnsafe(): Exit.Exit<JobOutcome> | undefined {
    return this.status === "null" || (this.status === "concluded" && !this.dismissesItself)
      ? Exit.succeed(this.outcome())
      : undefined
  }

  /**
   * Starts a cancel request's calls into the driver, unless finalization has begun
   * (then the request must not call the driver: returns false).
   */
  beginCancelUnsafe(): boolean {
    if (this.finalizing || this.txnLocked || this.status === "concluded" || this.status === "null") return false
    this.more.cancelsInFlight++
    return true
  }

  endCancelUnsafe(): void {
    const extras = this.more
    if (--extras.cancelsInFlight === 0 && extras.cancelsDone !== undefined) {
      const done = extras.cancelsDone
      extras.cancelsDone = undefined
      Deferred.doneUnsafe(done, Exit.void)
    }
  }

  /**
   * Nothing of the job's end needs an Effect step: the driver has no callback
   * after `run` (prepare, commit, abort, clean, free), and no cancel request is
   * calling it.
   */
  get endsInline(): boolean {
    const c = this.callbacks
    return this.cancelsInFlight === 0 && c !== undefined && c.prepare === undefined && c.commit === undefined &&
      c.abort === undefined && c.clean === undefined && c.free === undefined
  }

  /** Marks finalization begun and waits for the cancel requests already calling the driver. */
  beginFinalization(): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.finalizing = true
      if (this.cancelsInFlight === 0) return Effect.void
      return Deferred.await(this.more.cancelsDone ??= Deferred.makeUnsafe<void>())
    })
  }

  /** Records the job's error unless it already has one. */
  recordError(message: string): void {
    if (this.error === undefined) this.error = message
  }
}

/** Readable text for a failure or defect of a driver callback. */
export const causeMessage = (cause: Cause.Cause<unknown>): string => {
  const failure = cause.reasons.find((r) => r._tag === "Fail" || r._tag === "Die")
  if (failure === undefined) return canceledMessage
  const value = failure._tag === "Fail" ? failure.error : failure.defect
  if (value instanceof Error || (typeof value === "object" && value !== null && "message" in value)) {
    const message = String((value as { message: unknown }).message)
    if (message.length > 0) return message
    if ("_tag" in value) return String((value as { _tag: unknown })._tag)
  }
  return typeof value === "string" ? value : String(value)
}
