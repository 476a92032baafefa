/**
 * The engine's writer to a durable store: write-ahead, one commit per tick.
 *
 * Whatever changes in a tick — jobs whose status or pause state changed, jobs
 * dismissed, the events published — is gathered here and written in one
 * atomic commit (group commit). The event hub is gated meanwhile: an event is
 * handed to subscribers, kept in the replay log and counted as delivered only
 * once the commit that holds it has succeeded, so no reader ever sees an event
 * the store could still lose.
 *
 * A commit that fails (disk full, database down, lease lost) is reported once
 * per outage as a log line and a notice (`StoreNotice.ts`), counted in a
 * metric, and retried with a growing delay; what it held stays pending,
 * nothing is dropped. Meanwhile `failure` is set, and new jobs are refused
 * (`StoreNotWritable`) until a commit succeeds again, which is told too.
 * @internal
 */
import { Duration, Effect } from "effect"
import type { JobEvent } from "../JobEvent.ts"
import type { OwnedStore } from "../store/service.ts"
import type { Checkpoint, StoredJob, StoredTxn } from "../store/records.ts"
import type { EventHub } from "./eventHub.ts"
import type { JobRecord } from "./jobRecord.ts"
import type { StoreNotices } from "./storeNotices.ts"
import type { TxnState } from "./txnState.ts"

/** A job's own one-job transaction is stored under its job's id. */
export const soloTxnId = (jobId: string): string => `job:${jobId}`

const firstRetry = Duration.millis(50)
const lastRetry = Duration.seconds(5)

interface DurableWait {
  /** The number of the commit it waits for. */
  target: number
  /** A reply's wait, which a failing store lets go (see `durable`); a decision's waits on. */
  readonly reply: boolean
  /** Stored (true), or given up because the engine closes with a store it cannot write (false). */
  readonly resume: (stored: boolean) => void
}

export class Persistence {
  /** Jobs (with an id) changed since the last commit began. */
  private dirty = new Set<JobRecord>()
  /** Jobs whose checkpoint changed since the last commit began. */
  private checkpoints = new Set<JobRecord>()
  /** Events published since the last commit began, in order. */
  private events: Array<JobEvent> = []
  /** The writer's wait for work, while it has none. */
  private wakeWriter: (() => void) | undefined = undefined
  private readonly waits = new Set<DurableWait>()
  /** Commits begun so far; the one under way, if `committing`, is number `begun`. */
  private begun = 0
  private committing = false
  /** Ids of explicit transactions, stable for the life of the process (a restart keeps the stored ones). */
  private readonly txnIds = new WeakMap<TxnState, string>()
  /** Why the last commit failed; `undefined` once one succeeds. */
  failure: string | undefined = undefined
  /** When the first commit of the current outage failed. */
  private failedAt = 0
  /** The stored jobs have been brought back (`Jobs.recover`): new jobs may be created. */
  recovered = false
  /** Events committed since the store's event log was last trimmed. */
  private sinceTrim = 0

  readonly owned: OwnedStore
  readonly location: string
  private readonly hub: EventHub
  private readonly now: () => number
  private readonly onFailure: () => void
  private readonly notices: StoreNotices
  /** Events the store keeps, as the hub's log does (at least 1,000: a trim is a write). */
  private readonly retained: number
  constructor(options: {
    readonly owned: OwnedStore
    readonly location: string
    readonly hub: EventHub
    readonly now: () => number
    /** A commit failed (for the metrics). */
    readonly onFailure: () => void
    /** Where an outage's start and end are told. */
    readonly notices: StoreNotices
  }) {
    const { hub, owned } = options
    this.owned = owned
    this.location = options.location
    this.hub = hub
    this.now = options.now
    this.onFailure = options.onFailure
    this.notices = options.notices
    this.retained = Math.max(hub.retained, 1000)
    hub.gate = (event) => {
      this.events.push(event)
      this.wake()
    }
  }

  /** `job` changed: its record goes into the next commit. */
  touch(job: JobRecord): void {
    if (job.id === undefined) return
    this.dirty.add(job)
    this.wake()
  }

  /** `job` recorded a checkpoint: it goes into the next commit. */
  checkpointed(job: JobRecord): void {
    this.checkpoints.add(job)
    this.wake()
  }

  /** The id an explicit transaction is stored under (a restored one keeps its stored id). */
  txnId(txn: TxnState, job: JobRecord): string {
    if (!txn.explicit) return soloTxnId(job.id!)
    let id = this.txnIds.get(txn)
    if (id === undefined) this.txnIds.set(txn, id = `txn:${crypto.randomUUID()}`)
    return id
  }

  /** Gives a restored transaction its stored id. */
  adoptTxn(txn: TxnState, id: string): void {
    this.txnIds.set(txn, id)
  }

  private wake(): void {
    const wake = this.wakeWriter
    if (wake !== undefined) {
      this.wakeWriter = undefined
      wake()
    }
  }

  private get idle(): boolean {
    return this.dirty.size === 0 && this.events.length === 0 && this.checkpoints.size === 0
  }

  /**
   * Waits until everything published or changed before the call is in the
   * store: true; false if it never will be — the engine closes while the store
   * cannot be written (see `beginClosing`). Commits are numbered as they
   * begin; a wait is for the commit that takes what is pending now (or, with
   * nothing pending, the one under way).
   */
  readonly stored: Effect.Effect<boolean> = this.waitFor(false)

  /**
   * For a reply to a client: waits until what came before it is in the store
   * and its events delivered. While the store cannot be written it does not
   * wait (the server goes on answering, and refuses new jobs); the events still
   * wait for their commit.
   */
  readonly durable: Effect.Effect<void> = Effect.asVoid(this.waitFor(true))

  private waitFor(reply: boolean): Effect.Effect<boolean> {
    return Effect.callback<boolean>((resume) => {
      if (this.abandoned) return resume(Effect.succeed(false))
      if (reply && this.failure !== undefined) return resume(Effect.succeed(false))
      const target = !this.idle ? this.begun + 1 : this.committing ? this.begun : 0
      if (target === 0) return resume(Effect.succeed(true))
      const wait: DurableWait = { target, reply, resume: (stored) => resume(Effect.succeed(stored)) }
      this.waits.add(wait)
      return Effect.sync(() => {
        this.waits.delete(wait)
      })
    })
  }

  /** Whether the engine closes (then a commit that fails gives up every wait). */
  private closing = false
  /** Every wait was given up: nothing more will be stored. */
  private abandoned = false

  /**
   * The engine closes. A store that cannot be written now will not be before
   * the process ends: whatever waits for it is told so (a transaction that
   * waits to have its commit decision stored aborts instead of committing).
   */
  beginClosing(): void {
    this.closing = true
    if (this.failure !== undefined) this.abandon()
  }

  /** The store cannot be written: replies stop waiting for it. */
  private releaseReplies(): void {
    for (const wait of Array.from(this.waits)) {
      if (!wait.reply) continue
      this.waits.delete(wait)
      wait.resume(false)
    }
  }

  private abandon(): void {
    this.abandoned = true
    const waits = Array.from(this.waits)
    this.waits.clear()
    for (const wait of waits) wait.resume(false)
  }

  private settleWaits(committed: number): void {
    const ready: Array<DurableWait> = []
    for (const wait of this.waits) if (wait.target <= committed) ready.push(wait)
    for (const wait of ready) {
      this.waits.delete(wait)
      wait.resume(true)
    }
  }

  private recordOf(job: JobRecord, now: number): StoredJob {
    const started = job.started ? { startedAt: job.engine.epoch + job.startedAt } : {}
    const error = job.error === undefined ? {} : { error: job.error }
    return {
      id: job.id!,
      type: job.type,
      params: (job.storedParams ?? {}) as StoredJob["params"],
      txn: this.txnId(job.txn, job),
      status: job.status,
      manualFinalize: !job.autoFinalize,
      manualDismiss: !job.autoDismiss,
      progress: { current: job.current, total: job.total },
      speed: job.speed,
      ...error,
      userPaused: job.userPaused,
      pauseHolds: job.pauseHolds,
      createdAt: job.createdAt,
      ...started,
      updatedAt: now
    }
  }

  private storedTxn(txn: TxnState, job: JobRecord): StoredTxn {
    const error = txn.firstError === undefined ? {} : { error: txn.firstError }
    return { id: this.txnId(txn, job), explicit: txn.explicit, phase: txn.currentPhase, ...error }
  }

  /** One commit of everything pending; on failure it all stays pending. Not interrupted half-way. */
  private readonly commitPending: Effect.Effect<boolean> = Effect.uninterruptible(Effect.suspend(() => {
    if (this.idle) return Effect.succeed(true)
    const jobs = this.dirty
    const events = this.events
    const checkpointed = this.checkpoints
    this.dirty = new Set()
    this.events = []
    this.checkpoints = new Set()
    const number = ++this.begun
    this.committing = true
    const now = this.now()
    const written: Array<StoredJob> = []
    const removedJobs: Array<string> = []
    const txns = new Map<string, StoredTxn>()
    const removedTxns = new Set<string>()
    for (const job of jobs) {
      if (job.status === "null") {
        removedJobs.push(job.id!)
        if (!job.hasTxn || !job.txn.explicit) removedTxns.add(soloTxnId(job.id!))
        else if (job.txn.members.every((m) => m.status === "null")) removedTxns.add(this.txnId(job.txn, job))
        continue
      }
      written.push(this.recordOf(job, now))
      const txn = this.storedTxn(job.txn, job)
      txns.set(txn.id, txn)
    }
    for (const id of txns.keys()) removedTxns.delete(id)
    const checkpoints: Array<Checkpoint> = []
    for (const job of checkpointed) {
      // A job that was written (not removed) keeps its newest checkpoint; a removed one takes it along.
      if (job.status !== "null" && job.checkpointData !== undefined) {
        if (!jobs.has(job)) written.push(this.recordOf(job, now))
        checkpoints.push({ job: job.id!, data: job.checkpointData })
      }
    }
    return this.owned.commit({
      jobs: written,
      removedJobs,
      txns: Array.from(txns.values()),
      removedTxns: Array.from(removedTxns),
      events,
      checkpoints,
      removedCheckpoints: removedJobs
    }).pipe(Effect.matchEffect({
      onSuccess: () =>
        Effect.sync(() => {
          this.committing = false
          if (this.failure !== undefined) {
            const now = this.now()
            this.notices.publish({ _tag: "StoreWritable", timestamp: now, unwritableMillis: now - this.failedAt })
          }
          this.failure = undefined
          this.hub.deliver(events)
          this.settleWaits(number)
          this.sinceTrim += events.length
          return true
        }).pipe(Effect.tap(() => this.sinceTrim >= this.retained ? this.trim : Effect.void)),
      onFailure: (error) =>
        Effect.suspend(() => {
          // Back in front of whatever came meanwhile: nothing is dropped, the order is kept.
          for (const job of this.dirty) jobs.add(job)
          this.dirty = jobs
          for (const job of this.checkpoints) checkpointed.add(job)
          this.checkpoints = checkpointed
          this.events = events.concat(this.events)
          this.committing = false
          // The next commit carries this one's changes: its waits wait for that one.
          for (const wait of this.waits) if (wait.target === number) wait.target = number + 1
          this.onFailure()
          const first = this.failure === undefined
          this.failure = error.message
          if (first) {
            this.failedAt = this.now()
            this.notices.publish({ _tag: "StoreUnwritable", timestamp: this.failedAt, error: error.message })
          }
          if (this.closing) this.abandon()
          else this.releaseReplies()
          return first
            ? Effect.as(
              Effect.logError(`effect-jobs: the job store cannot be written, new jobs are refused: ${error.message}`),
              false
            )
            : Effect.succeed(false)
        })
    }))
  }))

  /** Retention: the store keeps the newest `retained` events; the numbering is unaffected. */
  private readonly trim: Effect.Effect<void> = Effect.suspend(() => {
    this.sinceTrim = 0
    return Effect.catch(
      Effect.asVoid(this.owned.trimEvents(this.retained)),
      (error) => Effect.logWarning(`effect-jobs: the job store's event log could not be trimmed: ${error.message}`)
    )
  })

  private readonly awaitWork: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (!this.idle) return resume(Effect.void)
    this.wakeWriter = () => resume(Effect.void)
    return Effect.sync(() => {
      this.wakeWriter = undefined
    })
  })

  /**
   * The writer: waits for work, lets the rest of the tick add to it, commits;
   * after a failure, waits longer each time (up to five seconds) and tries again.
   */
  readonly writer: Effect.Effect<never> = Effect.suspend(() => {
    let delay = firstRetry
    const step: Effect.Effect<void> = Effect.flatMap(
      Effect.andThen(Effect.andThen(this.awaitWork, Effect.yieldNow), this.commitPending),
      (ok) => {
        if (ok) {
          delay = firstRetry
          return Effect.void
        }
        const wait = delay
        delay = Duration.min(Duration.times(delay, 2), lastRetry)
        return Effect.sleep(wait)
      }
    )
    return Effect.forever(step)
  })

  /** Commits what is pending now, once (the engine is closing): a failure is reported, not retried. */
  readonly flush: Effect.Effect<void> = Effect.asVoid(this.commitPending)
}
