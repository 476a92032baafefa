/**
 * The durable job store: where the engine keeps its jobs, transactions,
 * driver checkpoints and event log, so that they outlive the process.
 *
 * One owner at a time: `acquire` takes the store's lease (refused, naming the
 * owner, while another process holds it; taken over once it has expired),
 * renews it on the `Clock` while its scope is open, and returns what the
 * store holds. The owner then writes one atomic `commit` per tick, and reads
 * and trims the event log.
 *
 * Three layers, with the same semantics:
 *
 * - `memory`: in process memory; nothing survives the process.
 * - `sqlite({ filename })`: a SQLite file in WAL mode, on `node:sqlite`.
 * - `postgres({ url })`: a Postgres database, on `@effect/sql-pg` (an
 *   optional peer dependency, installed beside effect-jobs by the programs
 *   that use it, and loaded when the layer is built).
 *
 * The engine writes to it when built with `Jobs.layerDurable` (see
 * docs/durability.md).
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { StoreCorrupt, StoreUnavailable } from "./store/errors.ts"
import * as MemoryStore from "./store/memoryStore.ts"
import * as PostgresStore from "./store/postgresStore.ts"
import type { JobStoreService } from "./store/service.ts"
import * as SqliteStore from "./store/sqliteStore.ts"

export {
  /** @since 0.1.0 */
  LeaseHolder,
  /** @since 0.1.0 */
  SeqNotIncreasing,
  /** @since 0.1.0 */
  StoreCorrupt,
  /** @since 0.1.0 */
  StoreLeaseLost,
  /** @since 0.1.0 */
  StoreOwned,
  /** @since 0.1.0 */
  StoreTooNew,
  /** @since 0.1.0 */
  StoreUnavailable,
  /** @since 0.1.0 */
  StoreWriteFailed
} from "./store/errors.ts"
export {
  /** @since 0.1.0 */
  type LeaseOptions,
  /** @since 0.1.0 */
  type LeaseOwner,
  /** @since 0.1.0 */
  processOwner
} from "./store/lease.ts"
export type {
  /** @since 0.1.0 */
  PostgresStoreOptions
} from "./store/postgresStore.ts"
export {
  /** @since 0.1.0 */
  Checkpoint,
  /** @since 0.1.0 */
  StoredJob,
  /** @since 0.1.0 */
  StoredTxn,
  /** @since 0.1.0 */
  TxnPhase
} from "./store/records.ts"
export type {
  /** @since 0.1.0 */
  CommitBatch,
  /** @since 0.1.0 */
  JobStoreService,
  /** @since 0.1.0 */
  OwnedStore,
  /** @since 0.1.0 */
  StoreSnapshot
} from "./store/service.ts"
export type {
  /** @since 0.1.0 */
  SqliteStoreOptions
} from "./store/sqliteStore.ts"

/**
 * @since 0.1.0
 * @category services
 */
export class JobStore extends Context.Service<JobStore, JobStoreService>()("effect-jobs/JobStore") {}

/**
 * A store in process memory, empty when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const memory: Layer.Layer<JobStore> = Layer.sync(JobStore, MemoryStore.make)

/**
 * A store in the SQLite file `filename` (created if missing), open for the
 * layer's life. Fails with `StoreCorrupt` for a file that is not a database,
 * `StoreUnavailable` for one that cannot be opened.
 *
 * @since 0.1.0
 * @category layers
 */
export const sqlite = (
  options: SqliteStore.SqliteStoreOptions
): Layer.Layer<JobStore, StoreCorrupt | StoreUnavailable> => Layer.effect(JobStore, SqliteStore.make(options))

/**
 * A store in the Postgres database at `url`, connected for the layer's life
 * (the first connection opens at `acquire`).
 *
 * @since 0.1.0
 * @category layers
 */
export const postgres = (options: PostgresStore.PostgresStoreOptions): Layer.Layer<JobStore, StoreUnavailable> =>
  Layer.effect(JobStore, PostgresStore.make(options))

