/**
 * A transaction: a group of jobs that all commit or all abort.
 *
 * A job joins exactly one transaction, when it is created; without one it gets
 * a private one-job transaction. Members that succeed wait (WAITING) until the
 * last one does; then all move to PENDING together and are finalized together —
 * every `prepare` before any `commit`. Any failure or force cancel of a member
 * force-cancels the others, and every member ends with `abort`.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type { Job } from "./Job.ts"
import { TxnEmpty } from "./JobError.ts"
import { cancelJob } from "./internal/cancel.ts"
import { TxnState } from "./internal/txnState.ts"

/**
 * @since 0.1.0
 * @category models
 */
export interface JobTxn {
  /** The members, in creation order. */
  readonly members: ReadonlyArray<Job>
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const TxnOutcome = Schema.Union([
  Schema.TaggedStruct("Committed", {}),
  Schema.TaggedStruct("Aborted", { error: Schema.String })
])

/**
 * How a transaction ended: every member committed, or every member aborted
 * (with the error of the member whose failure aborted it).
 *
 * @since 0.1.0
 * @category models
 */
export type TxnOutcome = typeof TxnOutcome.Type

/**
 * A new, empty transaction, to pass to `Jobs.create`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<JobTxn> = Effect.sync(() => new TxnState(true))

/**
 * Waits until the transaction has committed or aborted. A transaction with no
 * members has no outcome to wait for: it fails at once with `TxnEmpty` (a member
 * whose creation failed never joined).
 *
 * @since 0.1.0
 * @category getters
 */
export const awaitOutcome = (txn: JobTxn): Effect.Effect<TxnOutcome, TxnEmpty> =>
  Effect.suspend(() => {
    const state = txn as TxnState
    return state.members.length === 0 ? Effect.fail(new TxnEmpty()) : state.awaitSettled()
  })

/**
 * Aborts the whole transaction: force-cancels one member, which force-cancels
 * the others. Returns once every member has concluded. Does nothing once the
 * transaction has started committing (its outcome is decided) or has ended.
 *
 * @since 0.1.0
 * @category combinators
 */
export const cancel = (txn: JobTxn): Effect.Effect<void> =>
  Effect.gen(function*() {
    const state = txn as TxnState
    const phase = state.currentPhase
    if (phase === "committing" || phase === "committed" || phase === "aborted") return
    const member = state.members.find((m) => m.status !== "concluded" && m.status !== "null")
    if (member === undefined) return
    // Uninterruptible: a request once made is carried out. A transaction being
    // finalized ("locked") is past cancelling: its end is what there is to wait for.
    yield* Effect.uninterruptible(cancelJob(member, true))
    yield* state.awaitSettled()
  })
