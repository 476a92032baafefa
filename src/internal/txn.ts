/**
 * What happens to a transaction when its members finish (QEMU: job_completed,
 * job_completed_txn_success/abort, job_do_finalize), without QEMU's rescans:
 * one O(1) `Effect.tx` decision per member, O(N) work per transaction, and no
 * member waiting on shared refs. The fiber that takes a decision carries it out
 * for every member; members that wait simply have nothing left to run.
 *
 * A transaction takes two `Effect.tx` decisions besides one per member: whether
 * to finalize (taken with the last member's) and whether to commit (after the
 * prepares, which a cancel may interleave with).
 * @internal
 */
import { Effect, Exit, TxRef } from "effect"
import { markCancelled, requestCancel } from "./cancelRequest.ts"
import { finalizeJob, settleOutcomeUnsafe } from "./conclude.ts"
import { causeMessage, type JobRecord } from "./jobRecord.ts"
import type { TxnPhase, TxnState } from "./txnState.ts"

type MemberDecision = "wait" | "allPending" | "finalize" | "abort"

const decideMemberCompleted = (txn: TxnState, failed: boolean): Effect.Effect<MemberDecision> =>
  Effect.tx(Effect.flatMap(
    TxRef.modify(txn.remaining, (n) => [n - 1, n - 1]),
    (remaining) =>
      TxRef.modify(txn.phase, (phase): [MemberDecision, TxnPhase] => {
        if (failed) return phase === "running" || phase === "pending" ? ["abort", "aborting"] : ["wait", phase]
        if (phase !== "running" || remaining > 0) return ["wait", phase]
        // Nobody wants manual finalize: finalizing starts now, in the same decision.
        return txn.manualFinalize === 0 ? ["finalize", "finalizing"] : ["allPending", "pending"]
      })
  ))

/**
 * A member's `run` has returned and its status is WAITING (success) or ABORTING.
 * The last member to succeed moves everyone to PENDING and, unless a member
 * wants manual finalize, finalizes the transaction; the first to fail aborts it.
 */
export const memberCompleted = (job: JobRecord, failed: boolean): Effect.Effect<void> =>
  Effect.flatMap(decideMemberCompleted(job.txn, failed), (decision) => {
    switch (decision) {
      case "wait":
        return Effect.void
      case "abort":
        return abortTxn(job.txn, job)
      case "allPending":
        return Effect.sync(() => allPendingUnsafe(job.txn))
      case "finalize":
        return Effect.andThen(Effect.sync(() => allPendingUnsafe(job.txn)), runFinalization(job.txn))
    }
  })

const allPendingUnsafe = (txn: TxnState): void => {
  // Every member is PENDING before anyone waiting for PENDING hears of it.
  for (const member of txn.members) {
    member.setStatusUnsafe(
      "pending",
      member.autoFinalize ? undefined : (id) => ({ _tag: "Pending", id, type: member.type })
    )
  }
  for (const member of txn.members) member.notifyStatusUnsafe("pending")
}

/**
 * A hard cancel of a member whose `run` has returned (WAITING or PENDING): it
 * aborts the transaction — unless the transaction is already committing, when
 * the decision stands and the cancel is ignored.
 */
export const cancelCompletedMember = (job: JobRecord): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.tx(TxRef.modify(job.txn.phase, (phase): ["abort" | "mark" | "ignore", TxnPhase] => {
      if (phase === "running" || phase === "pending") return ["abort", "aborting"]
      // The finalizing fiber sees the phase after its current prepare and aborts.
      if (phase === "finalizing") return ["mark", "aborting"]
      return ["ignore", phase]
    })),
    (decision) => {
      if (decision === "ignore") return Effect.void
      // A failing `cancel` callback fails the job: its error, not `Operation canceled`.
      if (job.callbackFailure !== undefined) job.recordError(job.callbackFailure.message)
      markCancelled(job, true)
      return decision === "abort" ? abortTxn(job.txn, job) : Effect.void
    }
  )

/**
 * The abort routine, run once per transaction by whoever decided it: every member
 * other than `cause` is force-cancelled (including one that was being finalized:
 * QEMU would commit that one), then each member, in creation order, is awaited
 * and finalized with `abort`.
 */
export const abortTxn = (txn: TxnState, cause: JobRecord): Effect.Effect<void> =>
  Effect.gen(function*() {
    txn.firstError ??= cause.error
    for (const member of txn.members) {
      if (member.status === "concluded" || member.status === "null") continue
      // The cause keeps its own error; a cause with neither an error nor a cancel of its
      // own (a decision taken before its flag was set) is cancelled like everyone else.
      if (member === cause && (member.error !== undefined || member.isCancelled)) continue
      yield* requestCancel(member, true, "mark")
      if (member.started && !member.runReturned) member.runFiber?.interruptUnsafe()
    }
    for (const member of txn.members) {
      if (member.status === "concluded" || member.status === "null") continue
      if (!member.started) yield* Effect.sync(() => settleOutcomeUnsafe(member))
      yield* member.awaitCompleted()
      yield* finalizeJob(member)
    }
    txn.settleUnsafe({ _tag: "Aborted", error: txn.firstError ?? "Operation canceled" })
  }).pipe(Effect.uninterruptible)

/**
 * The `finalize` verb: finalizes the transaction of a PENDING member. A second
 * caller waits for the first.
 */
export const finalizeTxn = (txn: TxnState): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.tx(TxRef.modify(txn.phase, (phase): ["go" | "wait" | "none", TxnPhase] => {
      if (phase === "pending") return ["go", "finalizing"]
      return [phase === "finalizing" || phase === "committing" ? "wait" : "none", phase]
    })),
    (start) => start === "go" ? runFinalization(txn) : start === "wait" ? Effect.asVoid(txn.awaitSettled()) : Effect.void
  )

/**
 * Finalization of a transaction whose members all succeeded (phase `finalizing`):
 * every `prepare` (creation order) before any `commit`; a failing prepare, or a
 * hard cancel arriving meanwhile, aborts every member.
 */
const runFinalization = (txn: TxnState): Effect.Effect<void> =>
  Effect.suspend(() => txn.members.some(needsPrepare) ? prepareAll(txn) : commitOrAbort(txn, undefined)).pipe(
    Effect.uninterruptible
  )

const needsPrepare = (member: JobRecord): boolean =>
  member.callbacks?.prepare !== undefined && member.error === undefined && !member.isCancelled

/** Every `prepare`, in creation order, until one fails or the transaction is told to abort. */
const prepareAll = (txn: TxnState): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (const member of txn.members) {
      // A snapshot is enough here: the commit decision re-reads the phase in a transaction.
      if (txn.currentPhase !== "finalizing") break
      if (!needsPrepare(member)) continue
      const exit = yield* Effect.exit(member.callbacks!.prepare!)
      if (Exit.isFailure(exit)) {
        member.recordError(causeMessage(exit.cause))
        return yield* commitOrAbort(txn, member)
      }
    }
    return yield* commitOrAbort(txn, undefined)
  })

/** The commit decision, then every member's commit — or the abort routine. */
const commitOrAbort = (txn: TxnState, failing: JobRecord | undefined): Effect.Effect<void> =>
  Effect.flatMap(
    Effect.tx(TxRef.modify(txn.phase, (phase): [boolean, TxnPhase] =>
      failing === undefined && phase === "finalizing" ? [true, "committing"] : [false, "aborting"]
    )),
    (commit) => {
      if (commit) {
        return Effect.andThen(
          Effect.forEach(txn.members, finalizeJob, { discard: true }),
          Effect.sync(() => txn.settleUnsafe({ _tag: "Committed" }))
        )
      }
      const cause = failing ?? txn.members.find((m) => m.isCancelled) ?? txn.members[0]!
      return Effect.andThen(
        failing === undefined ? Effect.void : Effect.sync(() => settleOutcomeUnsafe(failing)),
        abortTxn(txn, cause)
      )
    }
  )
