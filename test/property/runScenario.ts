/**
 * Runs one scenario against a fresh `Jobs` (with the test driver) under a fresh
 * `TestClock`, and records everything the invariants need: each job's statuses
 * as seen between steps, every engine event, every driver callback call, the
 * logs, and — checked on the spot — whether each verb's result matched the model.
 *
 * Scheduler-driven yields are turned off (`PreventSchedulerYield`), so that no
 * other fiber can run between reading a job's state and calling the verb: the
 * model's expectation is computed from exactly the state the verb sees.
 */
import { Cause, Context, Data, Effect, Exit, Fiber, Layer, Logger, Option, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { Job } from "../../src/Job.ts"
import type { JobEvent } from "../../src/JobEvent.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import * as JobVerb from "../../src/JobVerb.ts"
import { type JobRef, Jobs } from "../../src/Jobs.ts"
import * as Testing from "../../src/testing.ts"
import { type Ending, jobId, type JobSpec, type Scenario, type Step, type Target, type VerbCall } from "./scenario.ts"
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

export interface RunRecord {
  readonly jobs: ReadonlyArray<JobRun>
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

/** An operation that did not finish within `stuckAfterMillis` of real time: the engine is stuck. */
class Stuck extends Data.TaggedError("Stuck")<{ readonly what: string }> {}

const stuckAfterMillis = 2_000

/**
 * Runs `effect` in its own fiber and returns its exit. Almost every operation
 * finishes before the fiber first suspends; the real-time watchdog only matters
 * for one that never would (it is a deadlock, and the run fails with `Stuck`).
 */
const guarded = <A, E>(what: string, effect: Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, E>, Stuck> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(effect, { startImmediately: true })
    const done = fiber.pollUnsafe()
    if (done !== undefined) return done
    const exit = yield* TestClock.withLive(Effect.timeoutOption(Fiber.await(fiber), stuckAfterMillis))
    if (Option.isNone(exit)) return yield* new Stuck({ what })
    return exit.value
  })

/** The result of a call: success, the tag of its typed error, or a defect (always a violation). */
const classify = (exit: Exit.Exit<unknown, unknown>): { readonly result: string; readonly defect?: string } => {
  if (Exit.isSuccess(exit)) return { result: "Success" }
  const fail = exit.cause.reasons.find(Cause.isFailReason)
  if (fail !== undefined) {
    const error = fail.error as { readonly _tag?: unknown }
    return { result: typeof error?._tag === "string" ? error._tag : String(fail.error) }
  }
  return { result: "Defect", defect: Cause.pretty(exit.cause) }
}

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

export const runScenario = (scenario: Scenario): Effect.Effect<RunRecord> =>
  Effect.suspend(() => {
    const logs: Array<LogEntry> = []
    const logger = Logger.make((options) => {
      logs.push({ level: options.logLevel, message: String(options.message) })
    })
    return run(scenario, logs).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(TestClock.layer(), Logger.layer([logger]))),
      Effect.provideService(Scheduler.PreventSchedulerYield, true)
    )
  })

const run = (scenario: Scenario, logs: Array<LogEntry>) =>
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
      events,
      calls: log.calls,
      logs,
      violations,
      trace,
      finished
    })

    const body = Effect.gen(function*() {
      // Create every job (subscribed already), then start those that start at once.
      const txn = scenario.jobs.some((spec) => spec.sharedTxn) ? yield* JobTxn.make : undefined
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
        sample(jr)
      }
      for (const jr of runs) {
        if (jr.spec.startAtOnce) yield* step({ _tag: "Start", target: { _tag: "Job", index: jr.index, via: "id" } }, -1)
      }
      for (let i = 0; i < scenario.steps.length; i++) yield* step(scenario.steps[i]!, i)
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

    const check = (label: string, expected: Result, exit: Exit.Exit<unknown, unknown>, before?: Snapshot) => {
      const { result, defect } = classify(exit)
      const state = before === undefined
        ? "not found"
        : `${before.status}${before.userPaused ? ",userPaused" : ""} pauseCount=${before.pauseCount}${
          before.cancelRequested ? ",cancelRequested" : ""
        }`
      trace.push(`${label} [${state}] -> ${result}   | ${statuses()}`)
      if (defect !== undefined) violations.push(`${label} died: ${defect}`)
      else if (result !== expected) violations.push(`${label} [${state}]: expected ${expected}, got ${result}`)
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
    const checkStillParked = (s: Step, at: string, parked: ReadonlyArray<JobStatus.JobStatus | undefined>) => {
      runs.forEach((jr, index) => {
        const was = parked[index]
        if (was === undefined || jr.job === undefined || jr.job.status === was || jr.job.cancelRequested) return
        const targeted = s._tag === "Verb" && s.target._tag === "Job" && s.target.index % runs.length === index &&
          (s.call.verb === "resume" || s.call.verb === "cancel")
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

    const step = (s: Step, i: number): Effect.Effect<void, Stuck> =>
      Effect.gen(function*() {
        const at = i < 0 ? "setup" : `#${i}`
        const parked = parkedBefore()
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
            const expected = expectedStart(before, jr?.started ?? false)
            const exit = yield* guarded(`${at} start`, jobs.start(ref))
            if (Exit.isSuccess(exit) && jr !== undefined) jr.started = true
            check(`${at} start ${describeTarget(s.target, runs)}`, expected, exit, before)
            break
          }
          case "Verb": {
            const { before, jr, ref } = resolve(s.target)
            const driver = jr?.driver ?? { completable: true, failing: new Set() }
            const expected = expectedVerb(s.call, before, driver)
            const exit = yield* guarded(`${at} ${describeCall(s.call)}`, callVerb(s.call, ref))
            check(`${at} ${describeCall(s.call)} ${describeTarget(s.target, runs)}`, expected, exit, before)
            if (
              s.call.verb === "cancel" && Exit.isSuccess(exit) && jr !== undefined && before !== undefined &&
              jr.hardCancelledIn === undefined && isHardCancel(jr.spec, s.call.force, before.status)
            ) jr.hardCancelledIn = before.status
            break
          }
        }
        sampleAll()
        checkStillParked(s, at, parked)
        yield* checkList(at)
      })

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

    const ending = (how: Ending): Effect.Effect<void, Stuck> =>
      Effect.gen(function*() {
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
        if (Exit.isFailure(collected)) violations.push(`event stream failed: ${Cause.pretty(collected.cause)}`)
      })

    return yield* body.pipe(
      Effect.catchTag("Stuck", (stuck) =>
        Effect.sync(() => {
          violations.push(`stuck: ${stuck.what} did not finish (deadlock)`)
          return record(false)
        }))
    )
  })
