/**
 * What the job store keeps, as schemas: a job's record, a transaction, a
 * driver's checkpoint. Events are the engine's own `JobEvent`s, kept as they
 * were published. These are the values the engine writes in a commit and gets
 * back when it acquires the store; the SQL store keeps each as JSON text, with
 * the fields it queries (ids, status, transaction) in columns of their own.
 *
 * @since 0.1.0
 */
import { Schema, SchemaTransformation } from "effect"
import { txnPhases } from "../internal/txnState.ts"
import { JobStatus } from "../JobStatus.ts"

/**
 * A job as the store keeps it: enough to bring it back after a restart.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StoredJob = Schema.Struct({
  id: Schema.String,
  type: Schema.String,
  /** The parameters as the job was created with them (before the driver's schema decoded them). */
  params: Schema.Json,
  /** The id of its transaction (see `StoredTxn`). */
  txn: Schema.String,
  status: JobStatus,
  manualFinalize: Schema.Boolean,
  manualDismiss: Schema.Boolean,
  progress: Schema.Struct({ current: Schema.Number, total: Schema.Number }),
  speed: Schema.Number,
  error: Schema.optionalKey(Schema.String),
  userPaused: Schema.Boolean,
  /** The reasons of the pause holds in place, oldest first. */
  pauseHolds: Schema.Array(Schema.String),
  /** Milliseconds of the engine's clock. */
  createdAt: Schema.Number,
  startedAt: Schema.optionalKey(Schema.Number),
  updatedAt: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type StoredJob = typeof StoredJob.Type

/**
 * A transaction's phase, as the engine tracks it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TxnPhase = Schema.Literals(txnPhases)

/**
 * @since 0.1.0
 * @category models
 */
export type TxnPhase = typeof TxnPhase.Type

/**
 * A transaction. Its members are the stored jobs whose `txn` is its id, in
 * the order they were first stored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StoredTxn = Schema.Struct({
  id: Schema.String,
  /** Made with `JobTxn.make`, rather than a job's own one-job transaction. */
  explicit: Schema.Boolean,
  phase: TxnPhase,
  /** The error of the member whose failure aborted it. */
  error: Schema.optionalKey(Schema.String)
})

/**
 * @since 0.1.0
 * @category models
 */
export type StoredTxn = typeof StoredTxn.Type

/**
 * Where a job's driver can resume from (a backup's temp file, offset and the
 * source's identity, …): the driver's own JSON, one per job.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Checkpoint = Schema.Struct({
  job: Schema.String,
  data: Schema.Json
})

/**
 * @since 0.1.0
 * @category models
 */
export type Checkpoint = typeof Checkpoint.Type

/**
 * A 64-bit integer column as a number: Postgres returns `BIGINT` as a
 * `bigint`, SQLite as a number. Sequence numbers and milliseconds stay far
 * below 2^53.
 *
 * @internal
 */
export const Int64 = Schema.Union([Schema.Number, Schema.BigInt]).pipe(
  Schema.decodeTo(
    Schema.Number,
    SchemaTransformation.transform<number, number | bigint>({ decode: (n) => Number(n), encode: (n) => n })
  )
)
