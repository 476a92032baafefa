/**
 * The job store in process memory: what `Jobs.layer` has always done, behind
 * the store's interface. Nothing survives the process, but within one store
 * instance the semantics are the SQL stores': a lease on the `Clock` (so two
 * owners in one process still exclude each other), atomic commits, strictly
 * increasing sequence numbers, event retention, and a snapshot for the next
 * owner. Values are kept as given, not copied: they are read-only.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import type { JobEvent } from "../JobEvent.ts"
import { type LeaseHolder, type SeqNotIncreasing, seqRefusal, StoreLeaseLost, StoreOwned } from "./errors.ts"
import { heartbeats, timing } from "./lease.ts"
import type { Checkpoint, StoredJob, StoredTxn } from "./records.ts"
import type { CommitBatch, JobStoreService, OwnedStore } from "./service.ts"

const location = "memory"

/** A new, empty store. */
export const make = (): JobStoreService => {
  // Maps keep insertion order: a job's place is where it was first stored.
  const jobs = new Map<string, StoredJob>()
  const txns = new Map<string, StoredTxn>()
  const checkpoints = new Map<string, Checkpoint>()
  /** Kept events, oldest first, from `eventsStart`. */
  let events: Array<JobEvent> = []
  let eventsStart = 0
  let lastSeq = 0
  let lease: LeaseHolder | undefined = undefined

  const keptEvents = () => events.length - eventsStart
  const oldestSeq = () => keptEvents() === 0 ? lastSeq + 1 : events[eventsStart]!.seq

  /** Checks that `owner` still holds the lease, and renews it. */
  const renew = (owner: string, ttl: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (lease === undefined || lease.owner !== owner) {
        return Effect.fail(
          new StoreLeaseLost({ store: location, owner, ...(lease === undefined ? {} : { holder: lease }) })
        )
      }
      lease = { ...lease, heartbeatAt: now, expiresAt: now + ttl }
      return Effect.void
    })

  const refusal = (batch: CommitBatch): SeqNotIncreasing | undefined => seqRefusal(location, batch.events ?? [], lastSeq)

  /** Applies a batch that passed every check: nothing here can fail half-way. */
  const apply = (batch: CommitBatch) => {
    for (const id of batch.removedJobs ?? []) {
      jobs.delete(id)
      checkpoints.delete(id)
    }
    for (const id of batch.removedTxns ?? []) txns.delete(id)
    for (const id of batch.removedCheckpoints ?? []) checkpoints.delete(id)
    for (const job of batch.jobs ?? []) jobs.set(job.id, job)
    for (const txn of batch.txns ?? []) txns.set(txn.id, txn)
    for (const checkpoint of batch.checkpoints ?? []) checkpoints.set(checkpoint.job, checkpoint)
    for (const event of batch.events ?? []) events.push(event)
    if (events.length > eventsStart) lastSeq = Math.max(lastSeq, events[events.length - 1]!.seq)
  }

  const trim = (keep: number) => {
    eventsStart += Math.max(0, keptEvents() - Math.max(0, Math.floor(keep)))
    // Compact once the dropped head outgrows what is kept.
    if (eventsStart > keptEvents()) {
      events = events.slice(eventsStart)
      eventsStart = 0
    }
    return oldestSeq()
  }

  return {
    location,
    acquire: (owner, options) =>
      Effect.gen(function*() {
        const every = timing(options)
        const now = yield* Clock.currentTimeMillis
        const previous = lease
        if (previous !== undefined && previous.owner !== owner.id && previous.expiresAt > now) {
          return yield* new StoreOwned({ store: location, holder: previous })
        }
        lease = {
          owner: owner.id,
          pid: owner.pid,
          host: owner.host,
          since: now,
          heartbeatAt: now,
          expiresAt: now + every.ttl
        }
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (lease?.owner === owner.id) lease = undefined
          })
        )
        yield* Effect.forkScoped(heartbeats(renew(owner.id, every.ttl), every))
        const owned: OwnedStore = {
          owner,
          snapshot: {
            jobs: Array.from(jobs.values()),
            txns: Array.from(txns.values()),
            checkpoints: Array.from(checkpoints.values()),
            lastSeq,
            oldestSeq: oldestSeq(),
            takenOver: previous !== undefined && previous.owner !== owner.id ? previous : undefined
          },
          commit: (batch) =>
            Effect.flatMap(renew(owner.id, every.ttl), () => {
              const refused = refusal(batch)
              if (refused !== undefined) return Effect.fail(refused)
              apply(batch)
              return Effect.void
            }),
          trimEvents: (keep) => Effect.map(renew(owner.id, every.ttl), () => trim(keep))
        }
        return owned
      }),
    readEvents: (afterSeq, limit) =>
      Effect.sync(() => {
        // Sequence numbers increase: the first event after `afterSeq` is found by bisection.
        let low = eventsStart
        let high = events.length
        while (low < high) {
          const middle = (low + high) >>> 1
          if (events[middle]!.seq > afterSeq) high = middle
          else low = middle + 1
        }
        return events.slice(low, low + Math.max(0, Math.floor(limit)))
      })
  }
}
