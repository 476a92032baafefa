/**
 * What happens to a transaction when its members finish (QEMU: job_completed,
 * job_completed_txn_success/abort, job_do_finalize), without QEMU's rescans:
 * one O(1) `Effect.tx` decision per member, O(N) work per transaction, and no
 * member waiting on shared refs. The fiber that takes a decision carries it out
 * for every member; members that wait simply have nothing left to run.
 * @internal
 */
import { Deferred, Effect, Exit, TxRef } from "effect"
import { markCancelled, requestCancel } from "./cancelRequest.ts"
import { finalizeJob, settleOutcomeUnsafe } from "./conclude.ts"
import { causeMessage, type JobRecord } from "./jobRecord.ts"
import type { TxnPhase, TxnState } from "./txnState.ts"

type MemberDecision = "wait" | "allSucceeded" | "abort"

const decideMemberCompleted = (txn: TxnState, failed: boolean): Effect.Effect<MemberDecision> =>
  Effect.tx(Effect.gen(function*() {
    const remaining = (yield* TxRef.get(txn.remaining)) - 1
    yield* TxRef.set(txn.remaining, remaining)
    const phase = yield* TxRef.get(txn.phase)
    if (failed) {
      if (phase === "running" || phase === "pending") {
        yield* TxRef.set(txn.phase, "aborting")
        return "abort"
      }
      return "wait"
    }
    if (phase === "running" && remaining === 0) {
      yield* TxRef.set(txn.phase, "pending")
      return "allSucceeded"
    }
    return "wait"
  }))

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
      case "allSucceeded":
        return Effect.andThen(
          Effect.sync(() => allPendingUnsafe(job.txn)),
          Effect.suspend(() => job.txn.manualFinalize === 0 ? finalizeTxn(job.txn) : Effect.void)
        )
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
    Effect.tx(Effect.gen(function*() {
      const phase = yield* TxRef.get(job.txn.phase)
      if (phase === "running" || phase === "pending") {
        yield* TxRef.set(job.txn.phase, "aborting")
        return "abort" as const
      }
      if (phase === "finalizing") {
        // The finalizing fiber sees the phase after its current prepare and aborts.
        yield* TxRef.set(job.txn.phase, "aborting")
        return "mark" as const
      }
      return "ignore" as const
    })),
    (decision) => {
      if (decision === "ignore") return Effect.void
      markCancelled(job, true)
      return decision === "abort" ? abortTxn(job.txn, job) : Effect.void
    }
  )

const settle = (txn: TxnState, phase: TxnPhase & ("committed" | "aborted")): Effect.Effect<void> =>
  Effect.andThen(
    TxRef.set(txn.phase, phase),
    Effect.sync(() => {
      Deferred.doneUnsafe(
        txn.settled,
        Exit.succeed(
          phase === "committed"
            ? { _tag: "Committed" as const }
            : { _tag: "Aborted" as const, error: txn.firstError ?? "Operation canceled" }
        )
      )
    })
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
      if (member === cause || member.status === "concluded" || member.status === "null") continue
      yield* requestCancel(member, true, "mark")
      if (member.started && !member.runReturned) member.runFiber?.interruptUnsafe()
    }
    for (const member of txn.members) {
      if (member.status === "concluded" || member.status === "null") continue
      if (!member.started) yield* Effect.sync(() => settleOutcomeUnsafe(member))
      yield* member.awaitCompleted
      yield* finalizeJob(member)
    }
    yield* settle(txn, "aborted")
  }).pipe(Effect.uninterruptible)

/**
 * Finalizes a transaction whose members all succeeded: every `prepare` (creation
 * order) before any `commit`; a failing prepare, or a hard cancel arriving
 * meanwhile, aborts every member. A second caller waits for the first.
 */
export const finalizeTxn = (txn: TxnState): Effect.Effect<void> =>
  Effect.gen(function*() {
    const start = yield* Effect.tx(Effect.gen(function*() {
      const phase = yield* TxRef.get(txn.phase)
      if (phase === "pending") {
        yield* TxRef.set(txn.phase, "finalizing")
        return "go" as const
      }
      return phase === "finalizing" || phase === "committing" ? "wait" as const : "none" as const
    }))
    if (start === "wait") return yield* Effect.asVoid(Deferred.await(txn.settled))
    if (start === "none") return
    let failing: JobRecord | undefined
    for (const member of txn.members) {
      if ((yield* TxRef.get(txn.phase)) !== "finalizing") break
      const prepare = member.callbacks?.prepare
      if (prepare === undefined || member.error !== undefined || member.isCancelled) continue
      const exit = yield* Effect.exit(prepare)
      if (Exit.isFailure(exit)) {
        member.recordError(causeMessage(exit.cause))
        failing = member
        break
      }
    }
    const commit = yield* Effect.tx(Effect.gen(function*() {
      if (failing === undefined && (yield* TxRef.get(txn.phase)) === "finalizing") {
        yield* TxRef.set(txn.phase, "committing")
        return true
      }
      yield* TxRef.set(txn.phase, "aborting")
      return false
    }))
    if (commit) {
      for (const member of txn.members) yield* finalizeJob(member)
      return yield* settle(txn, "committed")
    }
    const cause = failing ?? txn.members.find((m) => m.isCancelled) ?? txn.members[0]!
    if (failing !== undefined) yield* Effect.sync(() => settleOutcomeUnsafe(failing))
    yield* abortTxn(txn, cause)
  }).pipe(Effect.uninterruptible)
