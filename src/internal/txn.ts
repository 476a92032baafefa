/**
 * What happens to a transaction when its members finish (QEMU: job_completed,
 * job_completed_txn_success/abort, job_do_finalize), without QEMU's rescans:
 * one O(1) `Effect.tx` decision per member, O(N) work per transaction, and no
 * member waiting on shared refs. The fiber that takes a decision carries it out
 * for every member; members that wait simply have nothing left to run.
 *
 * A transaction takes two `Effect.tx` decisions besides one per member: whether
 * to finalize (taken with the last member's) and whether to commit (after the
 * prepares). A job's private transaction takes the same decisions as plain
 * synchronous steps (`TxnState.decide`). Steps that apply to every member run newest member first, as
 * QEMU's do.
 *
 * Whoever takes a decision carries it out in the same uninterruptible region
 * (the job's own fiber, or a verb's act, which the verbs run uninterruptibly):
 * a decision is never left half carried out.
 *
 * From the decision to finalize until every member has concluded the
 * transaction is `locked`: verbs naming a member wait for the end, members
 * report busy, and no driver gets a `cancel` call.
 * @internal
 */
import { Effect, Exit } from "effect"
import { traceCallback } from "../observability/tracing.ts"
import { markCancelled, requestCancel } from "./cancelRequest.ts"
import { finalizeInlineUnsafe, finalizeJob, settleOutcomeUnsafe } from "./conclude.ts"
import { causeMessage, type JobRecord } from "./jobRecord.ts"
import { committed, type TxnPhase, type TxnState } from "./txnState.ts"

type MemberDecision = "wait" | "allPending" | "finalize" | "abort"

/** What a member's completion decides, given the phase and the members still running: the rule both paths follow. */
const memberDecision = (
  txn: TxnState,
  failed: boolean,
  phase: TxnPhase,
  remaining: number
): [MemberDecision, TxnPhase] => {
  if (failed) return phase === "running" || phase === "pending" ? ["abort", "aborting"] : ["wait", phase]
  if (phase !== "running" || remaining > 0) return ["wait", phase]
  // Nobody wants manual finalize: finalizing starts now, in the same decision.
  return txn.manualFinalize === 0 ? ["finalize", "finalizing"] : ["allPending", "pending"]
}

const decideMemberCompleted = (txn: TxnState, failed: boolean): Effect.Effect<MemberDecision> =>
  txn.memberDone((phase, remaining) => memberDecision(txn, failed, phase, remaining))

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
        return Effect.andThen(
          Effect.sync(() => {
            job.txn.finalizationBegun = true
            allPendingUnsafe(job.txn)
          }),
          runFinalization(job.txn)
        )
    }
  })

/**
 * `memberCompleted` for a job alone in its transaction that `endsInline`: the
 * same decisions, transitions, events and wake-ups, in the one synchronous step
 * that records the outcome. Returns false (nothing done) when the general path
 * must run.
 */
export const memberCompletedInlineUnsafe = (job: JobRecord, failed: boolean): boolean => {
  if (!job.endsInline) return false
  if (!job.hasTxn && job.autoFinalize && job.dismissesItself) {
    // Alone, finalized and dismissed in this step: nobody can ask for its transaction
    // afterwards, so it is not made. Busy from the decision to the end, as a locked one reports.
    job.busy = true
    if (!failed) {
      job.setStatusUnsafe("pending")
      job.notifyStatusUnsafe("pending")
    }
    finalizeInlineUnsafe(job)
    return true
  }
  const txn = job.txn
  if (txn.explicit) return false
  const [decision, phase] = memberDecision(txn, failed, txn.currentPhase, 0)
  switch (decision) {
    case "wait":
      return false
    case "allPending":
      txn.moveSoloUnsafe(phase)
      allPendingUnsafe(txn)
      return true
    case "finalize":
    case "abort":
      // No prepare to run: the commit (or abort) decision follows at once.
      txn.moveSoloUnsafe(decision === "abort" ? "aborting" : "committing")
      txn.finalizationBegun = true
      if (decision === "abort") txn.firstError ??= job.error
      else allPendingUnsafe(txn)
      finalizeInlineUnsafe(job)
      txn.settleUnsafe(decision === "abort" ? { _tag: "Aborted", error: txn.firstError ?? "Operation canceled" } : committed)
      return true
  }
}

const allPendingUnsafe = (txn: TxnState): void => {
  const members = txn.newestFirst()
  // Every member is PENDING before anyone waiting for PENDING hears of it.
  for (const member of members) {
    member.setStatusUnsafe(
      "pending",
      member.autoFinalize ? undefined : (id) => ({ _tag: "Pending", id, type: member.type })
    )
  }
  for (const member of members) member.notifyStatusUnsafe("pending")
}

/**
 * A hard cancel of a member whose `run` has returned (WAITING or PENDING): it
 * aborts the transaction — unless the transaction is already committing, when
 * the decision stands and the cancel is ignored.
 */
export const cancelCompletedMember = (job: JobRecord): Effect.Effect<void> =>
  Effect.flatMap(
    job.txn.decide((phase): ["abort" | "mark" | "ignore", TxnPhase] => {
      if (phase === "running" || phase === "pending") return ["abort", "aborting"]
      // The finalizing fiber sees the phase after its current prepare and aborts.
      if (phase === "finalizing") return ["mark", "aborting"]
      return ["ignore", phase]
    }),
    (decision) => {
      if (decision === "ignore") return Effect.void
      // A failing `cancel` callback fails the job: its error, not `Operation canceled`.
      if (job.callbackFailure !== undefined) job.recordError(job.callbackFailure.message)
      markCancelled(job, true)
      return decision === "abort" ? abortTxn(job.txn, job) : Effect.void
    }
  )

const live = (member: JobRecord): boolean => member.status !== "concluded" && member.status !== "null"

/**
 * The abort routine, run once per transaction by whoever decided it (QEMU:
 * job_completed_txn_abort): every member other than `cause` is force-cancelled,
 * every member is awaited until its `run` has returned, then — under the
 * transaction's lock — each is finalized with `abort`, newest first. Once
 * finalization has begun (a prepare failed) the members are only marked
 * cancelled: their drivers get no `cancel` call any more.
 */
export const abortTxn = (txn: TxnState, cause: JobRecord): Effect.Effect<void> =>
  Effect.gen(function*() {
    txn.firstError ??= cause.error
    const members = txn.newestFirst()
    for (const member of members) {
      if (!live(member)) continue
      // The cause keeps its own error; a cause with neither an error nor a cancel of its
      // own (a decision taken before its flag was set) is cancelled like everyone else.
      if (member === cause && (member.error !== undefined || member.isCancelled)) continue
      if (txn.finalizationBegun) markCancelled(member, true)
      else yield* requestCancel(member, true, "mark")
      if (member.started && !member.runReturned) member.runFiber?.interruptUnsafe()
    }
    for (const member of members) {
      if (!live(member)) continue
      if (!member.started) yield* Effect.sync(() => settleOutcomeUnsafe(member))
      yield* member.awaitCompleted()
    }
    txn.finalizationBegun = true
    for (const member of members) {
      if (live(member)) yield* finalizeJob(member)
    }
    txn.settleUnsafe({ _tag: "Aborted", error: txn.firstError ?? "Operation canceled" })
  }).pipe(Effect.uninterruptible)

/**
 * The `finalize` verb: finalizes the transaction of a PENDING member. A caller
 * that finds finalization already under way waits for its end.
 */
export const finalizeTxn = (txn: TxnState): Effect.Effect<void> =>
  Effect.flatMap(
    txn.decide((phase): ["go" | "wait" | "none", TxnPhase] => {
      if (phase === "pending") return ["go", "finalizing"]
      return [phase === "finalizing" || phase === "committing" ? "wait" : "none", phase]
    }),
    (start) =>
      start === "go"
        ? runFinalization(txn)
        : start === "wait"
        ? Effect.interruptible(Effect.asVoid(txn.awaitSettled()))
        : Effect.void
  )

/**
 * Finalization of a transaction whose members all succeeded (phase `finalizing`):
 * cancel requests already calling a driver are waited for (they were accepted
 * before finalization began, and a hard one aborts it), then every `prepare`
 * (newest first) before any `commit`; a failing prepare aborts every member.
 */
const runFinalization = (txn: TxnState): Effect.Effect<void> =>
  Effect.suspend(() => {
    txn.finalizationBegun = true
    const members = txn.newestFirst()
    const rest = members.some(needsPrepare) ? prepareAll(txn, members) : commitOrAbort(txn, members, undefined)
    return Effect.andThen(Effect.forEach(members, (m) => m.beginFinalization(), { discard: true }), rest)
  }).pipe(Effect.uninterruptible)

const needsPrepare = (member: JobRecord): boolean =>
  member.callbacks?.prepare !== undefined && member.error === undefined && !member.isCancelled

/** Every `prepare`, newest first, until one fails or the transaction is told to abort. */
const prepareAll = (txn: TxnState, members: ReadonlyArray<JobRecord>): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (const member of members) {
      // A snapshot is enough here: the commit decision re-reads the phase in a transaction.
      if (txn.currentPhase !== "finalizing") break
      if (!needsPrepare(member)) continue
      const exit = yield* Effect.exit(traceCallback(member, "prepare", member.callbacks!.prepare!))
      if (Exit.isFailure(exit)) {
        member.recordError(causeMessage(exit.cause))
        return yield* commitOrAbort(txn, members, member)
      }
    }
    return yield* commitOrAbort(txn, members, undefined)
  })

/**
 * With a durable store, the decision to commit is in the store before any
 * driver commits: a server that dies in between commits the transaction when
 * it comes back (see `recovery.ts`), never aborts one whose drivers committed.
 */
const decisionStored = (members: ReadonlyArray<JobRecord>): Effect.Effect<boolean> =>
  Effect.suspend(() => {
    const persistence = members[0]?.engine.persistence
    if (persistence === undefined) return Effect.succeed(true)
    // The members' records carry their transaction's phase, now `committing`.
    for (const member of members) persistence.touch(member)
    return persistence.stored
  })

export const unstoredCommitMessage = "the commit could not be stored (the job store cannot be written): aborted"

/** The engine closes and the commit decision will never be stored: no driver commits, every member aborts. */
const abortUnstored = (txn: TxnState, members: ReadonlyArray<JobRecord>): Effect.Effect<void> =>
  Effect.suspend(() => {
    for (const member of members) member.recordError(unstoredCommitMessage)
    return abortTxn(txn, members[0]!)
  })

/** The commit decision, then every member's commit (newest first) — or the abort routine. */
const commitOrAbort = (
  txn: TxnState,
  members: ReadonlyArray<JobRecord>,
  failing: JobRecord | undefined
): Effect.Effect<void> =>
  Effect.flatMap(
    txn.decide((phase): [boolean, TxnPhase] =>
      failing === undefined && phase === "finalizing" ? [true, "committing"] : [false, "aborting"]
    ),
    (commit) => {
      if (commit) {
        return Effect.flatMap(decisionStored(members), (stored) => {
          if (!stored) return abortUnstored(txn, members)
          return Effect.andThen(
            Effect.forEach(members, finalizeJob, { discard: true }),
            Effect.sync(() => txn.settleUnsafe(committed))
          )
        })
      }
      const cause = failing ?? members.find((m) => m.isCancelled) ?? members[0]!
      return Effect.andThen(
        failing === undefined ? Effect.void : Effect.sync(() => settleOutcomeUnsafe(failing)),
        abortTxn(txn, cause)
      )
    }
  )
