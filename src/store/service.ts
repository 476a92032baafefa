/**
 * The job store's shape: what an owner gets when it acquires the store (a
 * snapshot to recover from, and the right to write), what it writes once per
 * engine tick (a batch, in one atomic commit), and how the event log is read
 * back and trimmed. The
 * memory, SQLite and Postgres stores all have this shape and the same
 * semantics.
 *
 * @since 0.1.0
 */
import type { Effect, Scope } from "effect"
import type { JobEvent } from "../JobEvent.ts"
import type {
  LeaseHolder,
  SeqNotIncreasing,
  StoreCorrupt,
  StoreLeaseLost,
  StoreOwned,
  StoreTooNew,
  StoreUnavailable,
  StoreWriteFailed
} from "./errors.ts"
import type { LeaseOptions, LeaseOwner } from "./lease.ts"
import type { Checkpoint, StoredJob, StoredTxn } from "./records.ts"

/**
 * What the store holds, as `acquire` finds it.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreSnapshot {
  /** Every stored job, in the order each was first stored (a replaced one counts from its replacement). */
  readonly jobs: ReadonlyArray<StoredJob>
  /** Every stored transaction, in the order each was first stored. */
  readonly txns: ReadonlyArray<StoredTxn>
  readonly checkpoints: ReadonlyArray<Checkpoint>
  /** The sequence number of the last event ever committed (0: none); the next event's must be greater. */
  readonly lastSeq: number
  /** The oldest event still kept (`lastSeq + 1` when none is). */
  readonly oldestSeq: number
  /** The previous owner whose expired lease this one replaced (it crashed or stalled); none after a clean release. */
  readonly takenOver: LeaseHolder | undefined
}

/**
 * One atomic write: all of it is stored, or none of it. Removals are applied
 * before writes, so an id both removed and written is replaced (a dismissed
 * job whose id a new job took in the same tick).
 *
 * @since 0.1.0
 * @category models
 */
export interface CommitBatch {
  /** Jobs created or changed: stored whole, replacing the stored record with the same id. */
  readonly jobs?: ReadonlyArray<StoredJob> | undefined
  /** Ids of dismissed jobs: their records and their checkpoints go. */
  readonly removedJobs?: ReadonlyArray<string> | undefined
  readonly txns?: ReadonlyArray<StoredTxn> | undefined
  readonly removedTxns?: ReadonlyArray<string> | undefined
  /** Events in publication order: sequence numbers strictly increasing, and above every one committed before. */
  readonly events?: ReadonlyArray<JobEvent> | undefined
  readonly checkpoints?: ReadonlyArray<Checkpoint> | undefined
  /** Ids of jobs whose checkpoint goes. */
  readonly removedCheckpoints?: ReadonlyArray<string> | undefined
}

/**
 * The store as its owner holds it: what it found, and the writes only an
 * owner may make. Each write checks the lease in its own database
 * transaction; once the lease is released (the scope closed) or lost (it
 * expired and another owner took the store), writes fail with
 * `StoreLeaseLost`.
 *
 * @since 0.1.0
 * @category models
 */
export interface OwnedStore {
  readonly owner: LeaseOwner
  /** What the store held when it was acquired. */
  readonly snapshot: StoreSnapshot
  /**
   * Writes `batch` in one database transaction, after checking (and renewing)
   * the lease in it. Commits run one at a time, in the order they are called.
   */
  readonly commit: (
    batch: CommitBatch
  ) => Effect.Effect<void, StoreWriteFailed | StoreLeaseLost | SeqNotIncreasing>
  /**
   * Event retention: keeps the newest `keep` events committed (by sequence
   * number) and removes the older ones; `lastSeq` is unaffected. Returns the
   * oldest sequence number kept (`lastSeq + 1` when none is).
   */
  readonly trimEvents: (keep: number) => Effect.Effect<number, StoreWriteFailed | StoreLeaseLost>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JobStoreService {
  /** Where the store is, as messages name it: `memory`, `sqlite:PATH`, or a Postgres URL without its password. */
  readonly location: string
  /**
   * Takes the store's lease for `owner` for the life of the scope: migrates
   * the database to this version's schema, refuses a store another owner holds
   * (`StoreOwned`, naming it) or a newer version wrote (`StoreTooNew`), takes
   * over an expired lease, renews the lease on the `Clock` while the scope is
   * open, and releases it when the scope closes.
   */
  readonly acquire: (
    owner: LeaseOwner,
    options?: LeaseOptions
  ) => Effect.Effect<
    OwnedStore,
    StoreOwned | StoreTooNew | StoreUnavailable | StoreCorrupt | StoreWriteFailed,
    Scope.Scope
  >
  /** Up to `limit` kept events with a sequence number above `afterSeq`, oldest first. Needs no lease. */
  readonly readEvents: (
    afterSeq: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<JobEvent>, StoreUnavailable | StoreCorrupt>
}
