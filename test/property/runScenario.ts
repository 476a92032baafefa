/**
 * Runs one scenario against a fresh `Jobs` (with the test driver) under a fresh
 * `TestClock`, and records everything the invariants need: each job's statuses
 * as seen between steps, every engine event, every driver callback call, the
 * logs, and — checked on the spot — whether each verb's result matched the model;
 * and, when jobs share a transaction, what `JobTxn.awaitOutcome` and
 * `JobTxn.cancel` returned.
 *
 * Scheduler-driven yields are turned off (`PreventSchedulerYield`), so that no
 * other fiber can run between reading a job's state and calling the verb: the
 * model's expectation is computed from exactly the state the verb sees. With
 * `schedulerYields` they are on instead, every that many operations, so fibers
 * interleave as they do in production; verb results are then only traced, as
 * the state a verb meets may have moved since it was read.
 *
 * An `Interrupt` step's call yields every few operations in either mode (so
 * that its caller can be interrupted in the middle of the call's work; the
 * fibers it forks keep the run's scheduling): its result is only traced, and
 * the run goes on from whatever the call left.
 */
import { Cause, Context, Effect, Exit, Fiber, Layer, Logger, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { Job } from "../../src/Job.ts"
import type { TxnEmpty } from "../../src/JobError.ts"
import type { JobEvent } from "../../src/JobEvent.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import * as JobVerb from "../../src/JobVerb.ts"
import { type JobRef, Jobs } from "../../src/Jobs.ts"
import { classify, guarded as guardedCall, type Stuck } from "./guardedCall.ts"
import * as Testing from "../../src/testing.ts"
import { interruptAfter, yieldingCaller } from "../helpers/interrupt.ts"
import {
  type CallerCall,
  type Ending,
  jobId,
  type JobSpec,
  type Leftovers,
  type Scenario,
  type SettleCancel,
  type Step,
  type Target,
  type TrapAction,
  type VerbCall
} from "./scenario.ts"
import {
  type DriverFacts,
  expectedEnter,
  expectedStart,
  expectedVerb,
  type Result,
  type Snapshot,
  snapshot
} from "./verbModel.ts"

/** One job of a run, as the test saw it. */
export interface JobRun {
  readonly index: number
  readonly id: string
  readonly spec: JobSpec
  readonly driver: DriverFacts
  /** The driver's `make` was told to fail or die: creation must fail early. */
  readonly makeFails: boolean
  job: Job | undefined
  /** `start` succeeded for it. */
  started: boolean
  /** The statuses read from the `Job` object between steps, consecutive repeats removed. */
  readonly seen: Array<JobStatus.JobStatus>
  /** A `cancel` the driver had to treat as hard was accepted (with the status it was sent in). */
  hardCancelledIn: JobStatus.JobStatus | undefined
}

export interface LogEntry {
  readonly level: string
  readonly message: string
}

/** The scenario's shared transaction, as the test saw it. */
export interface TxnRun {
  /** The scenario says it must commit (see `Scenario.mustCommit`). */
  readonly mustCommit: boolean
  /** The ids of `txn.members`, read at the end. */
  members: ReadonlyArray<string | undefined>
  /** What `JobTxn.awaitOutcome`, called before any job was created, returned (undefined if it had not). */
  earlyOutcome: JobTxn.TxnOutcome | undefined
  /** What `JobTxn.awaitOutcome` returns once the `Jobs` scope has closed. */
  outcome: JobTxn.TxnOutcome | undefined
  /** `JobTxn.cancel` was called, or a trap cancelled a member. */
  cancelled: boolean
  /** The jobs a `Settle` ending had to cancel because they did not finish by themselves. */
  leftovers: ReadonlyArray<string>
}

export interface RunRecord {
  readonly jobs: ReadonlyArray<JobRun>
  /** Undefined when no job joined a shared transaction. */
  readonly txn: TxnRun | undefined
  readonly events: ReadonlyArray<JobEvent>
  readonly calls: ReadonlyArray<Testing.CallbackCall>
  readonly logs: ReadonlyArray<LogEntry>
  /** Problems found while running (model mismatches, defects, a run that got stuck). */
  readonly violations: ReadonlyArray<string>
  /** One line per step, for the failure report. */
  readonly trace: ReadonlyArray<string>
  /** False when the run got stuck and the end-of-run invariants cannot be checked. */
  readonly finished: boolean
}

const stuckAfterMillis = 2_000

const guarded = <A, E>(what: string, effect: Effect.Effect<A, E>) => guardedCall(what, effect, { stuckAfterMillis })

/**
 * Whether the test driver makes this cancel hard: without a `cancel` callback every
 * cancel is; with one (`softCancel`), only a forced one or one outside READY/STANDBY
 * (or one whose callback fails).
 */
const isHardCancel = (spec: JobSpec, force: boolean, status: JobStatus.JobStatus): boolean =>
  force || !spec.params.softCancel || (spec.params.fail ?? []).includes("cancel") ||
  (spec.params.die ?? []).includes("cancel") || !JobStatus.isReady(status)

const describeTarget = (target: Target, jobs: ReadonlyArray<JobRun>): string =>
  target._tag === "Unknown" ? `'${target.id}'` : `${jobs[target.index % jobs.length]!.id}(${target.via})`

/** Operations per scheduler turn for a call whose caller an `Interrupt` step interrupts. */
const interruptedOpsPerTurn = 4

const describeCaller = (call: CallerCall): string => {
  switch (call.verb) {
    case "cancelSync":
      return call.force ? "cancelSync(force)" : "cancelSync(soft)"
    case "start":
    case "completeSync":
    case "finishSync":
    case "awaitOutcome":
      return call.verb
    case "txnCancel":
      return "JobTxn.cancel"
    default:
      return describeCall(call)
  }
}

const describeCall = (call: VerbCall): string => {
  switch (call.verb) {
    case "cancel":
      return call.force ? "cancel(force)" : "cancel(soft)"
    case "setSpeed":
      return `setSpeed(${call.speed})`
    default:
      return call.verb
  }
}

export interface RunOptions {
  /** Let the scheduler yield every this many operations (default: never). */
  readonly schedulerYields?: number | undefined
}

export const runScenario = (scenario: Scenario, options: RunOptions = {}): Effect.Effect<RunRecord> =>
  Effect.suspend(() => {
    const logs: Array<LogEntry> = []
    const logger = Logger.make((options) => {
      logs.push({ level: options.logLevel, message: String(options.message) })
    })
    const yields = options.schedulerYields
    return run(scenario, logs, yields === undefined).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(TestClock.layer(), Logger.layer([logger]))),
      Effect.provideService(Scheduler.PreventSchedulerYield, yields === undefined),
      Effect.provideService(Scheduler.MaxOpsBeforeYield, yields ?? 2048)
    )
  })

const run = (scenario: Scenario, logs: Array<LogEntry>, strict: boolean) =>
  Effect.gen(function*() {
    const violations: Array<string> = []
    const trace: Array<string> = []
    const events: Array<JobEvent> = []

    // The Jobs layer lives in its own scope, so that it closes (cancelling every
    // job) while the event subscription, opened in the outer scope, still listens.
    const jobsScope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Testing.layer, jobsScope)
    const jobs = Context.get(context, Jobs)
    const log = Context.get(context, Testing.CallbackLog)
    const stream = yield* jobs.subscribe({ capacity: 100_000 })
    const collector = yield* Effect.forkChild(
      Stream.runForEach(stream, (event) => Effect.sync(() => events.push(event))),
      { startImmediately: true }
    )

    const runs: Array<JobRun> = scenario.jobs.map((spec, index) => {
      const failing = new Set([...(spec.params.fail ?? []), ...(spec.params.die ?? [])])
      return {
        index,
        id: jobId(index),
        spec,
        driver: { completable: spec.params.completable !== false, failing },
        makeFails: failing.has("make"),
        job: undefined,
        started: false,
        seen: [],
        hardCancelledIn: undefined
      }
    })

    const sample = (jr: JobRun) => {
      if (jr.job === undefined) return
      const status = jr.job.status
      if (jr.seen[jr.seen.length - 1] !== status) jr.seen.push(status)
    }
    const sampleAll = () => runs.forEach(sample)
    const statuses = () => runs.map((jr) => `${jr.id}:${jr.job?.status ?? "-"}`).join(" ")

    const record = (finished: boolean): RunRecord => ({
      jobs: runs,
      txn: txnRun,
      events,
      calls: log.calls,
      logs,
      violations,
      trace,
      finished
    })

    // The shared transaction, with a waiter for its outcome from before it has members.
    const txn = scenario.jobs.some((spec) => spec.sharedTxn) ? yield* JobTxn.make : undefined
    const txnRun: TxnRun | undefined = txn === undefined ? undefined : {
      mustCommit: scenario.mustCommit ?? false,
      members: [],
      earlyOutcome: undefined,
      outcome: undefined,
      cancelled: false,
      leftovers: []
    }
    // Forked as soon as the transaction has a member (an empty one has no outcome: TxnEmpty).
    let earlyWaiter: Fiber.Fiber<JobTxn.TxnOutcome, TxnEmpty> | undefined = undefined
    const hasMembers = () => txn !== undefined && txn.members.length > 0
    const txnDone = () => txn !== undefined && txn.members.every((m) => m.status === "concluded" || m.status === "null")
    /** The transaction's outcome if it is known now (without waiting). */
    const outcomeNow = Effect.suspend(() => {
      if (txn === undefined) return Effect.succeed(undefined)
      return Effect.map(
        Effect.forkDetach(JobTxn.awaitOutcome(txn), { startImmediately: true }),
        (fiber) => {
          const exit = fiber.pollUnsafe()
          if (exit === undefined) fiber.interruptUnsafe()
          return exit !== undefined && Exit.isSuccess(exit) ? exit.value : undefined
        }
      )
    })
    const showOutcome = (o: JobTxn.TxnOutcome | undefined) =>
      o === undefined ? "none" : o._tag === "Committed" ? "Committed" : `Aborted(${o.error})`

    const body = Effect.gen(function*() {
      // Create every job (subscribed already), then start those that start at once.
      for (const jr of runs) {
        const exit = yield* guarded(
          `create ${jr.id}`,
          jobs.create({
            type: "test",
            id: jr.id,
            params: jr.spec.params,
            manualFinalize: jr.spec.manualFinalize,
            manualDismiss: jr.spec.manualDismiss,
            txn: jr.spec.sharedTxn ? txn : undefined
          })
        )
        const { result, defect } = classify(exit)
        const expected = jr.makeFails ? "JobSetupFailed" : "Success"
        trace.push(`create ${jr.id} -> ${result}`)
        if (defect !== undefined) violations.push(`create ${jr.id} died: ${defect}`)
        else if (result !== expected) violations.push(`create ${jr.id}: expected ${expected}, got ${result}`)
        if (Exit.isSuccess(exit)) jr.job = exit.value
        if (txn !== undefined && earlyWaiter === undefined && txn.members.length > 0) {
          earlyWaiter = yield* Effect.forkChild(JobTxn.awaitOutcome(txn), { startImmediately: true })
        }
        sample(jr)
      }
      for (const jr of runs) {
        if (jr.spec.startAtOnce) yield* step({ _tag: "Start", target: jobTarget(jr) }, "setup")
      }
      for (let i = 0; i < scenario.steps.length; i++) yield* step(scenario.steps[i]!, `#${i}`)
      yield* ending(scenario.ending)
      return record(true)
    })

    /** The ref a step passes, and the state the model reads right before the call. */
    const resolve = (
      target: Target
    ): { readonly jr?: JobRun | undefined; readonly ref: JobRef; readonly before?: Snapshot | undefined } => {
      if (target._tag === "Unknown") return { ref: target.id }
      const jr = runs[target.index % runs.length]!
      const job = jr.job
      if (job === undefined) return { jr, ref: jr.id } // failed early: its id is unknown
      sample(jr)
      if (target.via === "object") return { jr, ref: job, before: snapshot(job) }
      // By id, a dismissed job is gone.
      return { jr, ref: jr.id, before: job.status === "null" ? undefined : snapshot(job) }
    }

    /** What a verb is judged by: the job before the call, or after it if the call waited for a finalization. */
    const judgedBy = (target: Target, before: Snapshot | undefined): Snapshot | undefined =>
      before?.finalizing === true ? resolve(target).before : before

    const check = (label: string, expected: Result, exit: Exit.Exit<unknown, unknown>, before?: Snapshot) => {
      const { result, defect } = classify(exit)
      const state = before === undefined
        ? "not found"
        : `${before.status}${before.userPaused ? ",userPaused" : ""} pauseCount=${before.pauseCount}${
          before.cancelRequested ? ",cancelRequested" : ""
        }`
      trace.push(`${label} [${state}] -> ${result}   | ${statuses()}`)
      if (defect !== undefined) violations.push(`${label} died: ${defect}`)
      else if (result !== expected && strict) violations.push(`${label} [${state}]: expected ${expected}, got ${result}`)
    }

    /**
     * A job parked by the user's pause (PAUSED or STANDBY) stays parked through a
     * step unless that step resumes or cancels it, or a cancel reaches it some other
     * way (its transaction aborting): no `enter`, clock move or other verb wakes it.
     */
    const parkedBefore = () =>
      runs.map((jr) =>
        jr.job !== undefined && jr.job.userPaused && (jr.job.status === "paused" || jr.job.status === "standby")
          ? jr.job.status
          : undefined
      )
    /** How many times each job has been asked to cancel (its driver's `userResume` or `cancel` called). */
    const cancelCalls = () => {
      const counts = new Map<string, number>()
      for (const c of log.calls) {
        if (c.callback === "userResume" || c.callback === "cancel") counts.set(c.job, (counts.get(c.job) ?? 0) + 1)
      }
      return counts
    }
    /** Jobs whose `start` was interrupted before it ended: whether they started is read from the events at the end. */
    const startUnsure = new Set<number>()
    /** Jobs a trap acted on since the last step ended (`all` after a trap's `JobTxn.cancel`). */
    let sprung: Set<number> | "all" = new Set()
    /**
     * For each job parked by its user: its cancel calls when it was first seen
     * parked. A cancel that reached it in an earlier step (its transaction
     * aborting, one member at a time) may take it out of the park in a later one.
     */
    const cancelsWhenParked = new Map<number, number>()
    const checkStillParked = (
      s: Step,
      at: string,
      parked: ReadonlyArray<JobStatus.JobStatus | undefined>,
      cancelsBefore: ReadonlyMap<string, number>
    ) => {
      const trapped = sprung
      sprung = new Set()
      const cancelsAfter = cancelCalls()
      runs.forEach((jr, index) => {
        const was = parked[index]
        if (was === undefined) {
          cancelsWhenParked.delete(index)
          return
        }
        if (!cancelsWhenParked.has(index)) cancelsWhenParked.set(index, cancelsBefore.get(jr.id) ?? 0)
        if (jr.job === undefined || jr.job.status === was || jr.job.cancelRequested) return
        if (trapped === "all" || trapped.has(index)) return
        // A cancel reached it while parked (its transaction aborting), and a failing callback ended it failed,
        // not cancelled: in this step, or in an earlier one whose consequences are still being carried out.
        if ((cancelsAfter.get(jr.id) ?? 0) > cancelsWhenParked.get(index)!) return
        // `JobTxn.cancel` cancels every member (a failing `userResume` may end one failed, not cancelled).
        const targeted = s._tag === "TxnCancel" || (s._tag === "Interrupt" && s.call.verb === "txnCancel") ||
          ((s._tag === "Verb" || s._tag === "Interrupt") && s.target._tag === "Job" &&
            s.target.index % runs.length === index &&
            (s.call.verb === "resume" || s.call.verb === "cancel" || s.call.verb === "cancelSync"))
        if (!targeted) violations.push(`${at}: ${jr.id} was parked (${was}, user-paused) but is ${jr.job.status} now`)
      })
    }

    /** `list` shows every job with an id that is not dismissed, in creation order, as its `Job` shows it. */
    const checkList = (at: string) =>
      Effect.map(jobs.list, (rows) => {
        const expected = runs.flatMap((jr) =>
          jr.job === undefined || jr.job.status === "null" ? [] : [`${jr.id}:${jr.job.status}`]
        )
        const listed = rows.map((row) => `${row.id}:${row.status}`)
        if (listed.join() !== expected.join()) {
          violations.push(`${at}: list shows [${listed.join(", ")}], the jobs are [${expected.join(", ")}]`)
        }
      })

    const step = (s: Step, at: string): Effect.Effect<void, Stuck> =>
      Effect.gen(function*() {
        const parked = parkedBefore()
        const cancelsBefore = cancelCalls()
        switch (s._tag) {
          case "Adjust": {
            yield* guarded(`${at} adjust`, TestClock.adjust(s.millis))
            trace.push(`${at} adjust ${s.millis}ms   | ${statuses()}`)
            break
          }
          case "Yield": {
            for (let n = 0; n < s.times; n++) yield* Effect.yieldNow
            trace.push(`${at} yield x${s.times}   | ${statuses()}`)
            break
          }
          case "Enter": {
            const { before, ref } = resolve(s.target)
            const exit = yield* guarded(`${at} enter`, jobs.enter(ref))
            check(`${at} enter ${describeTarget(s.target, runs)}`, expectedEnter(before), exit, before)
            break
          }
          case "Start": {
            const { before, jr, ref } = resolve(s.target)
            const exit = yield* guarded(`${at} start`, jobs.start(ref))
            const expected = expectedStart(judgedBy(s.target, before), jr?.started ?? false)
            if (Exit.isSuccess(exit) && jr !== undefined) jr.started = true
            check(`${at} start ${describeTarget(s.target, runs)}`, expected, exit, before)
            break
          }
          case "Verb": {
            const decided = txnDecided()
            const { before, jr, ref } = resolve(s.target)
            const driver = jr?.driver ?? { completable: true, failing: new Set() }
            const exit = yield* guarded(`${at} ${describeCall(s.call)}`, callVerb(s.call, ref))
            const expected = expectedVerb(s.call, judgedBy(s.target, before), driver)
            check(`${at} ${describeCall(s.call)} ${describeTarget(s.target, runs)}`, expected, exit, before)
            if (s.call.verb === "cancel" && Exit.isSuccess(exit) && jr !== undefined && before !== undefined) {
              cancelled(jr, s.call.force, before.status, decided)
            }
            break
          }
          case "Interrupt": {
            const { before, jr, ref } = resolve(s.target)
            const called = `${describeCaller(s.call)} ${describeTarget(s.target, runs)}`
            const label = `${at} ${called}, interrupted after ${s.turns}`
            // Counted before it runs: a cancel may land even though its caller is interrupted.
            const verb = s.call.verb
            if (verb === "txnCancel" || ((verb === "cancel" || verb === "cancelSync") && jr?.spec.sharedTxn)) {
              if (txnRun !== undefined) txnRun.cancelled = true
            }
            const call = yieldingCaller(callCaller(s.call, ref), interruptedOpsPerTurn)
            const guardedExit = yield* guarded(
              label,
              Effect.flatMap(
                interruptAfter(call, s.turns),
                ({ endedFirst, fiber }) => Effect.map(Fiber.await(fiber), (exit) => ({ endedFirst, exit }))
              )
            )
            if (Exit.isFailure(guardedExit)) {
              violations.push(`${label}: ${Cause.pretty(guardedExit.cause)}`)
              break
            }
            const { endedFirst, exit } = guardedExit.value
            const interrupted = Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
            const { result, defect } = interrupted ? { result: "Interrupted", defect: undefined } : classify(exit)
            // Not checked against the verb model: the call yields, so the job may move on under it.
            trace.push(`${label} [${before?.status ?? "not found"}] -> ${result}   | ${statuses()}`)
            if (defect !== undefined) violations.push(`${label} died: ${defect}`)
            if (verb === "start" && jr !== undefined && !jr.started) {
              if (endedFirst && Exit.isSuccess(exit)) jr.started = true
              else if (!endedFirst && jr.job !== undefined) {
                // It may have started: known for sure from the events once the run ends.
                startUnsure.add(jr.index)
                jr.started = jr.job.status !== "created"
              }
            }
            break
          }
          case "Trap": {
            const watched = resolve(s.watch)
            const label = `${at} trap: when ${describeTarget(s.watch, runs)} is ${s.status}, ${s.action} ${
              describeTarget(s.act, runs)
            }`
            trace.push(`${label} (set)`)
            yield* Effect.forkChild(
              Effect.ignore(Effect.andThen(jobs.awaitStatus(watched.ref, s.status), spring(s.act, s.action, label))),
              { startImmediately: true }
            )
            break
          }
          case "TxnCancel": {
            if (txn === undefined || txnRun === undefined) {
              trace.push(`${at} JobTxn.cancel: no shared transaction`)
              break
            }
            const decided = txnDecided()
            txnRun.cancelled = true
            const exit = yield* guarded(`${at} JobTxn.cancel`, JobTxn.cancel(txn))
            const { result, defect } = classify(exit)
            const outcome = yield* outcomeNow
            trace.push(`${at} JobTxn.cancel -> ${result} ${showOutcome(outcome)}   | ${statuses()}`)
            if (defect !== undefined) violations.push(`${at} JobTxn.cancel died: ${defect}`)
            // Once the transaction is committing it does nothing. With scheduler yields,
            // the transaction may decide to commit while the cancel is on its way (as
            // for any cancel), so then only the transaction's checks apply.
            if (!hasMembers() || decided || !strict) break
            // It returns once every member has concluded, with the transaction aborted.
            const unfinished = txn.members.filter((m) => m.status !== "concluded" && m.status !== "null")
            if (unfinished.length > 0) {
              violations.push(
                `${at} JobTxn.cancel returned with members not concluded: ${
                  unfinished.map((m) => `${m.id}:${m.status}`).join(" ")
                }`
              )
            }
            // (With scheduler yields, the aborting fiber may not have recorded the outcome yet.)
            if (outcome === undefined ? strict : outcome._tag !== "Aborted") {
              violations.push(`${at} JobTxn.cancel: outcome ${showOutcome(outcome)}, expected Aborted`)
            }
            break
          }
        }
        sampleAll()
        checkStillParked(s, at, parked, cancelsBefore)
        yield* checkList(at)
      })

    const callCaller = (call: CallerCall, ref: JobRef): Effect.Effect<unknown, unknown> => {
      switch (call.verb) {
        case "start":
          return jobs.start(ref)
        case "cancelSync":
          return jobs.cancelSync(ref, { force: call.force })
        case "completeSync":
          return jobs.completeSync(ref)
        case "finishSync":
          return jobs.finishSync(ref)
        case "awaitOutcome":
          return jobs.awaitOutcome(ref)
        case "txnCancel":
          return txn === undefined ? Effect.void : JobTxn.cancel(txn)
        default:
          return callVerb(call, ref)
      }
    }

    const callVerb = (call: VerbCall, ref: JobRef): Effect.Effect<void, unknown> => {
      switch (call.verb) {
        case "pause":
          return jobs.pause(ref)
        case "resume":
          return jobs.resume(ref)
        case "cancel":
          return jobs.cancel(ref, { force: call.force })
        case "complete":
          return jobs.complete(ref)
        case "finalize":
          return jobs.finalize(ref)
        case "dismiss":
          return jobs.dismiss(ref)
        case "setSpeed":
          return jobs.setSpeed(ref, call.speed)
        case "change":
          return jobs.change(ref, { anything: true })
      }
    }

    const isMember = (id: string) => runs.some((jr) => jr.id === id && jr.spec.sharedTxn)

    /**
     * The shared transaction may have decided to commit: a member got `commit`, or
     * every member got `prepare`. A hard cancel of a member that lands then is
     * ignored, by design. (Without scheduler yields a step never sees the moment
     * between the last `prepare` and the first `commit`, and a cancel lands before
     * the verb returns; with them, the transaction may decide while the driver's
     * `cancel` callback runs.)
     */
    const txnDecided = () => {
      if (txn === undefined) return false
      const members = runs.filter((jr) => jr.spec.sharedTxn && jr.job !== undefined)
      const prepared = new Set(log.calls.filter((c) => c.callback === "prepare").map((c) => c.job))
      return log.calls.some((c) => c.callback === "commit" && isMember(c.job)) ||
        (members.length > 0 && members.every((jr) => prepared.has(jr.id)))
    }

    /**
     * A `cancel` of `jr`, sent in `status` (when the transaction had `decided` or not),
     * was accepted. With scheduler yields, what a cancel of a transaction's member
     * meets is not known (the job may have moved on, the transaction may be
     * committing or aborting already), so only the transaction's checks apply.
     */
    const cancelled = (jr: JobRun, force: boolean, status: JobStatus.JobStatus, decided: boolean) => {
      if (jr.spec.sharedTxn && txnRun !== undefined) txnRun.cancelled = true
      if (jr.hardCancelledIn !== undefined || !isHardCancel(jr.spec, force, status)) return
      if (jr.spec.sharedTxn && (!strict || decided || txnDecided())) return
      jr.hardCancelledIn = status
    }

    /**
     * A trap's action. Its typed errors are expected (the job may have moved on);
     * a defect is a violation. A hard cancel it lands counts as one unless the
     * transaction was already committing (then it is ignored, by design).
     */
    const spring = (act: Target, action: TrapAction, label: string) =>
      Effect.suspend(() => {
        const { jr, ref } = resolve(act)
        const before = jr?.job?.status
        const decided = txnDecided()
        const effect: Effect.Effect<unknown, unknown> = action === "txnCancel"
          ? txn === undefined ? Effect.void : JobTxn.cancel(txn)
          : action === "softCancel" || action === "forceCancel"
          ? jobs.cancel(ref, { force: action === "forceCancel" })
          : action === "complete"
          ? jobs.complete(ref)
          : action === "finalize"
          ? jobs.finalize(ref)
          : jobs.dismiss(ref)
        // Counted before it runs: it may still be on its way when the run ends.
        const cancels = action === "txnCancel" || action === "softCancel" || action === "forceCancel"
        if (cancels && txnRun !== undefined && (action === "txnCancel" || jr?.spec.sharedTxn)) txnRun.cancelled = true
        if (action === "txnCancel") sprung = "all"
        else if (jr !== undefined && sprung !== "all") sprung.add(jr.index)
        return Effect.map(Effect.exit(effect), (exit) => {
          const { result, defect } = classify(exit)
          trace.push(`${label} fired [${before ?? "-"}] -> ${result}   | ${statuses()}`)
          if (defect !== undefined) violations.push(`${label} died: ${defect}`)
          if (!Exit.isSuccess(exit) || jr === undefined || before === undefined) return
          if (action === "softCancel" || action === "forceCancel") cancelled(jr, action === "forceCancel", before, decided)
        })
      })

    const jobTarget = (jr: JobRun): Target => ({ _tag: "Job", index: jr.index, via: "id" })

    /**
     * Lets every job finish: starts unstarted ones, lifts user pauses, completes
     * READY ones (or soft-cancels those whose driver turns that into completion),
     * finalizes PENDING ones, enters the others and moves the clock, round after
     * round. Every verb goes through `step`, so the verb model checks each one.
     * `cancel` cancels the first job met in a given status instead. Then whatever
     * is left is cancelled as `leftovers` says.
     */
    const settle = (
      rounds: number,
      leftovers: Leftovers,
      cancel: SettleCancel | undefined,
      softCancelReady: boolean
    ): Effect.Effect<void, Stuck> =>
      Effect.gen(function*() {
        const live = () =>
          runs.filter((jr) => jr.job !== undefined && jr.job.status !== "concluded" && jr.job.status !== "null")
        let pendingCancel = cancel
        for (let round = 0; round < rounds && live().length > 0; round++) {
          const at = `settle ${round}`
          for (const jr of live()) {
            const job = jr.job!
            const target = jobTarget(jr)
            if (
              pendingCancel !== undefined && JobVerb.isAllowed("cancel", job.status) &&
              (pendingCancel.when === "any" || pendingCancel.when === job.status)
            ) {
              const how = pendingCancel.how
              pendingCancel = undefined
              const cancelStep: Step = how === "txn"
                ? { _tag: "TxnCancel" }
                : { _tag: "Verb", call: { verb: "cancel", force: how === "force" }, target }
              yield* step(cancelStep, `${at} (cancel ${job.status})`)
              continue
            }
            if (job.status === "created" && !jr.started) yield* step({ _tag: "Start", target }, at)
            if (job.userPaused && JobVerb.isAllowed("resume", job.status)) {
              yield* step({ _tag: "Verb", call: { verb: "resume" }, target }, at)
            }
            if (JobStatus.isReady(job.status) && !job.cancelRequested) {
              // The test driver's soft cancel in READY (or STANDBY) completes the job.
              const softCancels = jr.spec.params.softCancel === true && !jr.driver.failing.has("cancel")
              const completes = jr.driver.completable && !jr.driver.failing.has("complete")
              if (softCancels && (softCancelReady || !completes)) {
                yield* step({ _tag: "Verb", call: { verb: "cancel", force: false }, target }, at)
              } else if (completes) {
                yield* step({ _tag: "Verb", call: { verb: "complete" }, target }, at)
              }
            }
            if (job.status === "pending") yield* step({ _tag: "Verb", call: { verb: "finalize" }, target }, at)
            if (job.status === "running" || job.status === "ready") yield* step({ _tag: "Enter", target }, at)
          }
          yield* step({ _tag: "Adjust", millis: 1_000 }, at)
        }
        const left = live()
        if (txnRun !== undefined) txnRun.leftovers = left.map((jr) => jr.id)
        if (left.length === 0) return
        trace.push(`settle: left ${left.map((jr) => `${jr.id}:${jr.job!.status}`).join(" ")}, then ${leftovers}`)
        switch (leftovers) {
          case "txnCancel": {
            yield* step({ _tag: "TxnCancel" }, "leftovers")
            break
          }
          case "forceCancel": {
            const cancellable = left.find((jr) => JobVerb.isAllowed("cancel", jr.job!.status))
            if (cancellable !== undefined) {
              const target = jobTarget(cancellable)
              yield* step({ _tag: "Verb", call: { verb: "cancel", force: true }, target }, "leftovers")
            }
            break
          }
          case "closeScope":
            return
        }
        // A transaction that aborted needs no clock to finish: every member is interrupted.
        if (hasMembers() && txn !== undefined && runs.every((jr) => jr.spec.sharedTxn)) {
          yield* guarded("the transaction's outcome after the leftovers were cancelled", JobTxn.awaitOutcome(txn))
        }
      })

    const ending = (how: Ending): Effect.Effect<void, Stuck> =>
      Effect.gen(function*() {
        if (typeof how === "object") {
          yield* settle(how.rounds, how.leftovers, how.cancel, how.softCancelReady ?? false)
          // A transaction whose members have all finished takes no new member.
          if (txn !== undefined && hasMembers() && txnDone()) {
            const exit = yield* guarded(
              "create in a finished transaction",
              jobs.create({ type: "test", id: "late", params: { iterations: 0 }, txn })
            )
            const { result, defect } = classify(exit)
            trace.push(`end: create 'late' in the finished transaction -> ${result}`)
            if (defect !== undefined) violations.push(`create in a finished transaction died: ${defect}`)
            else if (result !== "TxnClosed") {
              violations.push(`create in a finished transaction: expected TxnClosed, got ${result}`)
            }
          }
        }
        if (how === "cancelSync") {
          // QEMU's cancel-all: a manual-dismiss job is visited twice (cancel, then dismiss).
          for (let pass = 0; pass < 2; pass++) {
            for (const jr of runs) {
              if (jr.job === undefined || jr.job.status === "null") continue
              const before = jr.job.status
              const exit = yield* guarded(`cancelSync ${jr.id}`, jobs.cancelSync(jr.job, { force: true }))
              const { result, defect } = classify(exit)
              const outcome = Exit.isSuccess(exit) ? exit.value._tag : "-"
              trace.push(`end: cancelSync ${jr.id} [${before}] -> ${result} ${outcome}   | ${statuses()}`)
              if (defect !== undefined) violations.push(`cancelSync ${jr.id} died: ${defect}`)
              else if (result !== "Success") violations.push(`cancelSync ${jr.id}: expected Success, got ${result}`)
              else if (JobVerb.isAllowed("cancel", before) && outcome === "Succeeded") {
                // QEMU's job_cancel_sync(force): −ECANCELED unless the job failed on its own.
                violations.push(`cancelSync(force) ${jr.id} in ${before} returned Succeeded`)
              }
              if (jr.hardCancelledIn === undefined && JobVerb.isAllowed("cancel", before)) jr.hardCancelledIn = before
              sampleAll()
            }
          }
        }
        // Closing the scope force-cancels every job (QEMU: job_cancel_sync_all).
        for (const jr of runs) {
          if (jr.job !== undefined && jr.hardCancelledIn === undefined && JobVerb.isAllowed("cancel", jr.job.status)) {
            jr.hardCancelledIn = jr.job.status
          }
        }
        const closed = yield* guarded("closing the Jobs scope", Scope.close(jobsScope, Exit.void))
        if (Exit.isFailure(closed)) violations.push(`closing the Jobs scope failed: ${Cause.pretty(closed.cause)}`)
        sampleAll()
        trace.push(`end: scope closed   | ${statuses()}`)
        const collected = yield* guarded("the event stream ending", Fiber.join(collector))
        // A job whose `start` was interrupted started if it ever was RUNNING.
        for (const index of startUnsure) {
          const jr = runs[index]!
          jr.started = events.some((e) => e._tag === "StatusChange" && e.id === jr.id && e.status === "running")
        }
        if (Exit.isFailure(collected)) violations.push(`event stream failed: ${Cause.pretty(collected.cause)}`)
        if (txn !== undefined && txnRun !== undefined) {
          txnRun.members = txn.members.map((m) => m.id)
          if (hasMembers()) {
            const outcome = yield* guarded("JobTxn.awaitOutcome after the Jobs scope closed", JobTxn.awaitOutcome(txn))
            if (Exit.isSuccess(outcome)) txnRun.outcome = outcome.value
            else violations.push(`JobTxn.awaitOutcome failed: ${Cause.pretty(outcome.cause)}`)
          }
          if (hasMembers() && earlyWaiter !== undefined) {
            const early = yield* guarded("the early JobTxn.awaitOutcome", Fiber.join(earlyWaiter))
            if (Exit.isSuccess(early)) txnRun.earlyOutcome = early.value
          }
          const early = showOutcome(txnRun.earlyOutcome)
          trace.push(`end: transaction ${showOutcome(txnRun.outcome)} (early waiter: ${early})`)
        }
      })

    return yield* body.pipe(
      Effect.catchTag("Stuck", (stuck) =>
        Effect.sync(() => {
          violations.push(`stuck: ${stuck.what} did not finish (deadlock)`)
          return record(false)
        }))
    )
  })
