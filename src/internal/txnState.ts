/**
 * The bookkeeping of one transaction. The numbers every decision reads —
 * members not yet completed, the phase — live in `TxRef`s and are only changed
 * inside `Effect.tx`, so "the last member finished" and "the first failure"
 * are each decided exactly once, whatever finishes at the same moment.
 *
 * A job's private one-job transaction is all-or-nothing trivially: no other
 * member can decide anything, and each of its decisions is one synchronous
 * step. It keeps its phase in a plain field and decides without `Effect.tx`
 * (`decide`), which is most of the cost of a short job.
 * @internal
 */
import { Deferred, Effect, Exit, TxRef } from "effect"
import type { JobRecord } from "./jobRecord.ts"

/**
 * running → pending (every member succeeded) → finalizing (prepares) → committing → committed;
 * running | pending | finalizing → aborting → aborted.
 */
export const txnPhases = ["running", "pending", "finalizing", "committing", "committed", "aborting", "aborted"] as const

export type TxnPhase = typeof txnPhases[number]

export type TxnOutcome = { readonly _tag: "Committed" } | { readonly _tag: "Aborted"; readonly error: string }

/** A read-only value, shared. */
export const committed: TxnOutcome = Object.freeze({ _tag: "Committed" })

const noMembers = Object.freeze([]) as unknown as Array<JobRecord>

export class TxnState {
  /** In creation order; members join only when they are created. */
  members: Array<JobRecord> = noMembers
  private remainingRef: TxRef.TxRef<number> | undefined = undefined
  private phaseRef: TxRef.TxRef<TxnPhase> | undefined = undefined
  /** The phase of a private transaction (`explicit` false), which has no `TxRef`s. */
  private soloPhase: TxnPhase = "running"
  private joined = 0
  /** Members created with manual finalize: while any exists, the transaction waits in PENDING. */
  manualFinalize = 0
  /**
   * The deciding fiber has begun finalizing the members (prepares and commits,
   * or the abort routine's aborts): see `locked`.
   */
  finalizationBegun = false
  /** The error of the member whose failure aborted the transaction. */
  firstError: string | undefined = undefined
  /** Set once, when every member has concluded. */
  outcome: TxnOutcome | undefined = undefined
  private settledWaiters: Deferred.Deferred<TxnOutcome> | undefined = undefined

  /** Created by the user (not a job's private one-job transaction). */
  readonly explicit: boolean
  constructor(explicit: boolean) {
    this.explicit = explicit
  }

  /** A job's private transaction, with the job as its one member. */
  static alone(job: JobRecord): TxnState {
    const txn = new TxnState(false)
    txn.join(job)
    return txn
  }

  /**
   * Members whose `run` has not returned yet. The refs are made when first read,
   * which is when the first member finishes: a transaction whose jobs are still
   * running (or parked) costs no `TxRef`s.
   */
  get remaining(): TxRef.TxRef<number> {
    return (this.remainingRef ??= TxRef.makeUnsafe(this.joined))
  }

  get phase(): TxRef.TxRef<TxnPhase> {
    return (this.phaseRef ??= TxRef.makeUnsafe<TxnPhase>("running"))
  }

  /** The phase, read without a transaction (a snapshot). */
  get currentPhase(): TxnPhase {
    if (!this.explicit) return this.soloPhase
    return this.phaseRef === undefined ? "running" : this.phaseRef.value
  }

  /**
   * Moves the phase by `f` and returns its answer, atomically: in `Effect.tx`
   * for a shared transaction; in one synchronous step for a private one.
   */
  decide<A>(f: (phase: TxnPhase) => readonly [A, TxnPhase]): Effect.Effect<A> {
    if (this.explicit) return Effect.tx(TxRef.modify(this.phase, f as (phase: TxnPhase) => [A, TxnPhase]))
    return Effect.sync(() => {
      const [answer, next] = f(this.soloPhase)
      this.soloPhase = next
      return answer
    })
  }

  /** Moves a private transaction's phase, in a step that has already decided (see `memberCompletedInlineUnsafe`). */
  moveSoloUnsafe(phase: TxnPhase): void {
    this.soloPhase = phase
  }

  /**
   * One member's `run` has returned: counts it off and moves the phase by `f`
   * (given the members still running), atomically, as `decide` does.
   */
  memberDone<A>(f: (phase: TxnPhase, remaining: number) => readonly [A, TxnPhase]): Effect.Effect<A> {
    if (!this.explicit) return this.decide((phase) => f(phase, 0))
    return Effect.tx(Effect.flatMap(
      TxRef.modify(this.remaining, (n) => [n - 1, n - 1]),
      (remaining) => TxRef.modify(this.phase, (phase) => f(phase, remaining) as [A, TxnPhase])
    ))
  }

  /**
   * Finalization is under way (QEMU runs it under its lock): from the decision
   * to finalize until every member has concluded. Verbs naming a member wait for
   * the end and are then checked against what it left; members report busy.
   * The phase covers the moment between the decision and the deciding fiber's
   * next step, `finalizationBegun` the rest.
   */
  get locked(): boolean {
    if (this.outcome !== undefined) return false
    if (this.finalizationBegun) return true
    const phase = this.currentPhase
    return phase === "finalizing" || phase === "committing"
  }

  /** The members, newest first: the order in which QEMU applies a transaction's steps. */
  newestFirst(): ReadonlyArray<JobRecord> {
    return this.members.length <= 1 ? this.members : this.members.slice().reverse()
  }

  join(job: JobRecord): void {
    // A push onto an empty array reserves room for 17: most transactions are one job's own.
    if (this.members.length === 0) this.members = [job]
    else this.members.push(job)
    this.joined++
    if (this.remainingRef !== undefined) {
      // Members join at creation, before any of them can finish; the version bump
      // makes any transaction that read the old count run again.
      this.remainingRef.value = this.remainingRef.value + 1
      this.remainingRef.version++
    }
    if (!job.autoFinalize) this.manualFinalize++
  }

  /**
   * A member brought back after a restart (a resumable driver's): counted among
   * those still running only if its `run` had not returned.
   */
  rejoin(job: JobRecord, returned: boolean): void {
    if (this.members.length === 0) this.members = [job]
    else this.members.push(job)
    if (!returned) this.joined++
    if (!job.autoFinalize) this.manualFinalize++
  }

  /** The phase a restored transaction had (RUNNING or PENDING: nothing was decided beyond). */
  restorePhase(phase: TxnPhase): void {
    if (this.explicit) this.phase.value = phase
    else this.soloPhase = phase
  }

  /** Waits until every member has concluded: committed, or aborted. */
  awaitSettled(): Effect.Effect<TxnOutcome> {
    return Effect.suspend(() => {
      if (this.outcome !== undefined) return Effect.succeed(this.outcome)
      return Deferred.await(this.settledWaiters ??= Deferred.makeUnsafe<TxnOutcome>())
    })
  }

  /**
   * Records the final phase and outcome. The phase is written outside `Effect.tx`
   * (with its version bumped, so a transaction that read it reruns): no decision
   * waits for a terminal phase, and this saves a transaction per job.
   */
  settleUnsafe(outcome: TxnOutcome): void {
    const final = outcome._tag === "Committed" ? "committed" : "aborted"
    if (this.explicit) {
      const phase = this.phase
      phase.value = final
      phase.version++
    } else {
      this.soloPhase = final
    }
    this.outcome = outcome
    if (this.settledWaiters !== undefined) Deferred.doneUnsafe(this.settledWaiters, Exit.succeed(outcome))
  }
}
