/**
 * Runs one crash scenario: a durable engine on a memory store whose commits
 * fail from a chosen one on (the power cut: nothing after it reaches the
 * store, as when the process dies), then — once that engine is closed, as a
 * dead process would be — a second engine on the same store that recovers.
 * Records what the client was told before the cut, what the store held, and
 * what the second engine shows.
 *
 * Only what happened before the cut counts from the first engine: its driver
 * callbacks are kept up to the moment the first failing commit began, and its
 * subscriber only ever sees committed events. What it does afterwards (its
 * shutdown cancels the jobs it still had) is no part of a crashed process's
 * history.
 */
import { Cause, Context, Deferred, Effect, Exit, Fiber, Layer, Logger, Scheduler, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { JobInfo } from "../../src/Job.ts"
import * as JobDriver from "../../src/JobDriver.ts"
import type { JobEvent } from "../../src/JobEvent.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as JobStore from "../../src/JobStore.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import { classify, guarded as guardedCall, type Stuck } from "./guardedCall.ts"
import * as Testing from "../../src/testing.ts"
import { type CrashJobSpec, type CrashScenario, type CrashStep, type CrashVerb, maxGroups } from "./crashScenario.ts"

/** A job whose `create` returned it. */
export interface CreatedJob {
  readonly id: string
  readonly spec: CrashJobSpec
  /** Its transaction: `group:<n>` for an explicit one, `solo:<id>` for its own. */
  readonly txn: string
  /** `create` returned before the cut. */
  readonly beforeCut: boolean
}

export interface CrashRun {
  /** One line per step, for the failure report. */
  readonly trace: ReadonlyArray<string>
  /** Problems found while running (defects, a call that never finished, an engine that did not open). */
  readonly violations: ReadonlyArray<string>
  /** Every job `create` returned, in creation order. */
  readonly created: ReadonlyArray<CreatedJob>
  /** Jobs whose `create` returned, and a later `Jobs.durable` returned, before the cut. */
  readonly durablyCreated: ReadonlySet<string>
  /** Where the cut came: at which commit, or after the last step. */
  readonly cut: string
  /** The events the first engine's subscriber saw (copies, taken as they arrived). */
  readonly seenBefore: ReadonlyArray<JobEvent>
  /** What the store held when the second engine started. */
  readonly stored: JobStore.StoreSnapshot | undefined
  readonly report: Jobs.RecoveryReport | undefined
  /** What the second engine's subscriber saw, subscribed with `since: 0` before `recover`, up to its last event. */
  readonly replay: ReadonlyArray<JobEvent>
  /** The second engine's `list` once recovery is durable. */
  readonly listAfter: ReadonlyArray<JobInfo>
  /** The driver callbacks: the first engine's up to the cut, then the second engine's. */
  readonly calls: ReadonlyArray<Testing.CallbackCall>
  /** The error logs of both engines (the failed commits among them). */
  readonly logs: ReadonlyArray<string>
  /** False when the run could not get as far as the recovery's results. */
  readonly finished: boolean
}

const stuckAfterMillis = 5_000

const guarded = <A, E>(what: string, effect: Effect.Effect<A, E>, giveUp?: Deferred.Deferred<void>) =>
  guardedCall(what, effect, { stuckAfterMillis, giveUp })

/**
 * The power switch of the first engine's store: commits are counted as they
 * are asked for, and from number `at` on every one fails without reaching the
 * store. `trip` marks the moment of the cut.
 */
class PowerCut {
  commits = 0
  cut = false
  /** How many driver callbacks the first engine had made when the cut came. */
  callsAtCut = 0
  where = ""
  readonly signal = Deferred.makeUnsafe<void>()
  log: Testing.CallbackLog["Service"] | undefined = undefined
  readonly at: number
  constructor(at: number) {
    this.at = at
  }

  trip(where: string): void {
    if (this.cut) return
    this.cut = true
    this.where = where
    this.callsAtCut = this.log?.calls.length ?? 0
    Deferred.doneUnsafe(this.signal, Effect.void)
  }
}

const powerCutFailure = (store: string, operation: string) =>
  new JobStore.StoreWriteFailed({ store, operation, reason: "power cut" })

/** `store` as the first engine sees it: the same data, behind the power switch. */
const behindSwitch = (store: JobStore.JobStoreService, power: PowerCut): JobStore.JobStoreService => ({
  ...store,
  acquire: (owner, options) =>
    Effect.map(store.acquire(owner, options), (owned): JobStore.OwnedStore => ({
      ...owned,
      commit: (batch) =>
        Effect.suspend(() => {
          power.commits++
          if (power.commits >= power.at) power.trip(`at commit ${power.commits}`)
          return power.cut ? Effect.fail(powerCutFailure(store.location, "commit")) : owned.commit(batch)
        }),
      trimEvents: (keep) =>
        Effect.suspend(() => power.cut ? Effect.fail(powerCutFailure(store.location, "trim")) : owned.trimEvents(keep))
    }))
})

/** The durable engine with the test driver (and a callback log of its own) on `store`. */
const engineOn = (store: JobStore.JobStoreService) =>
  JobDriver.layer(Testing.TestDriver).pipe(
    Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable(), Testing.CallbackLog.layer)),
    Layer.provide(Layer.succeed(JobStore.JobStore, store))
  )

const jobId = (index: number) => `j${index}`

/** Each verb a crash scenario uses, as a call on the engine: one line per verb. */
const crashVerb: Record<CrashVerb, (jobs: Jobs.JobsService, id: string) => Effect.Effect<unknown, unknown>> = {
  start: (jobs, id) => jobs.start(id),
  pause: (jobs, id) => jobs.pause(id),
  resume: (jobs, id) => jobs.resume(id),
  softCancel: (jobs, id) => jobs.cancel(id, { force: false }),
  forceCancel: (jobs, id) => jobs.cancel(id, { force: true }),
  complete: (jobs, id) => jobs.complete(id),
  finalize: (jobs, id) => jobs.finalize(id),
  dismiss: (jobs, id) => jobs.dismiss(id),
  enter: (jobs, id) => jobs.enter(id)
}

export const runCrash = (scenario: CrashScenario): Effect.Effect<CrashRun> =>
  Effect.suspend(() => {
    const logs: Array<string> = []
    const logger = Logger.make((options) => {
      if (options.logLevel === "Error" || options.logLevel === "Warn") logs.push(String(options.message))
    })
    return run(scenario, logs).pipe(
      Effect.scoped,
      Effect.provide(Layer.mergeAll(TestClock.layer(), Logger.layer([logger]))),
      Effect.provideService(Scheduler.MaxOpsBeforeYield, scenario.opsPerYield ?? 2048)
    )
  })

const run = (scenario: CrashScenario, logs: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const trace: Array<string> = []
    const violations: Array<string> = []
    const created: Array<CreatedJob> = []
    const durablyCreated = new Set<string>()
    const seenBefore: Array<JobEvent> = []
    let calls: Array<Testing.CallbackCall> = []
    let stored: JobStore.StoreSnapshot | undefined = undefined
    let report: Jobs.RecoveryReport | undefined = undefined
    let replay: ReadonlyArray<JobEvent> = []
    let listAfter: ReadonlyArray<JobInfo> = []
    /** The second engine is running: the cut is behind us. */
    let restarted = false

    // One store for both engines: what the first one managed to write is what the second one finds.
    const store = Context.get(yield* Layer.build(JobStore.memory), JobStore.JobStore)
    const power = new PowerCut(scenario.cutAt)

    const record = (finished: boolean): CrashRun => ({
      trace,
      violations,
      created,
      durablyCreated,
      cut: power.where,
      seenBefore,
      stored,
      report,
      replay,
      listAfter,
      calls,
      logs,
      finished
    })

    /** A call: a defect is a violation, a typed error only goes into the trace. */
    const call = <A, E>(label: string, effect: Effect.Effect<A, E>) =>
      Effect.map(guarded(label, effect, restarted ? undefined : power.signal), (exit) => {
        const { defect, result } = classify(exit)
        const late = power.cut && !restarted ? " (returned after the cut)" : ""
        trace.push(`${label} -> ${result}${late}`)
        if (defect !== undefined) violations.push(`${label} died: ${defect}`)
        return exit
      })

    const body = Effect.gen(function*() {
      // The first engine, in a scope of its own: closing it is the process dying.
      const firstScope = yield* Scope.make()
      const first = yield* guarded(
        "opening the first engine",
        Layer.buildWithScope(engineOn(behindSwitch(store, power)), firstScope)
      )
      if (Exit.isFailure(first)) {
        violations.push(`the first engine did not open: ${Cause.pretty(first.cause)}`)
        return record(false)
      }
      const jobs = Context.get(first.value, Jobs.Jobs)
      const firstLog = Context.get(first.value, Testing.CallbackLog)
      power.log = firstLog
      yield* jobs.recover
      const events = yield* jobs.subscribe({ capacity: 100_000 })
      const collector = yield* Effect.forkChild(
        Stream.runForEach(events, (event) => Effect.sync(() => seenBefore.push(structuredClone(event)))),
        { startImmediately: true }
      )

      const txns: Array<JobTxn.JobTxn> = []
      for (let i = 0; i < maxGroups; i++) txns.push(yield* JobTxn.make)
      let nextJob = 0
      /** Jobs whose `create` returned before the cut and no `durable` has covered yet. */
      let notYetDurable: Array<string> = []

      const step = (s: CrashStep, at: string): Effect.Effect<void, Stuck> =>
        Effect.gen(function*() {
          switch (s._tag) {
            case "Create": {
              if (nextJob >= scenario.jobs.length) return
              const index = nextJob++
              const spec = scenario.jobs[index]!
              const id = jobId(index)
              const exit = yield* call(
                `${at} create ${id}${spec.group === undefined ? "" : ` in group ${spec.group}`}`,
                jobs.create({
                  type: "test",
                  id,
                  params: spec.params,
                  manualFinalize: spec.manualFinalize,
                  manualDismiss: spec.manualDismiss,
                  txn: spec.group === undefined ? undefined : txns[spec.group]
                })
              )
              if (Exit.isSuccess(exit)) {
                const txn = spec.group === undefined ? `solo:${id}` : `group:${spec.group}`
                created.push({ id, spec, txn, beforeCut: !power.cut })
                if (!power.cut) notYetDurable.push(id)
                if (spec.startAtOnce && !power.cut) yield* call(`${at} start ${id}`, jobs.start(id))
              }
              return
            }
            case "Verb": {
              if (created.length === 0) return
              const id = created[s.job % created.length]!.id
              yield* call(`${at} ${s.verb} ${id}`, crashVerb[s.verb](jobs, id))
              return
            }
            case "Adjust": {
              yield* call(`${at} adjust ${s.millis}ms`, TestClock.adjust(s.millis))
              return
            }
            case "Yield": {
              yield* call(`${at} yield x${s.times}`, Effect.repeat(Effect.yieldNow, { times: s.times - 1 }))
              return
            }
            case "Durable": {
              const covered = notYetDurable
              // Once the power is cut no commit succeeds: the wait would never end.
              const exit = yield* call(
                `${at} durable`,
                Effect.raceFirst(Effect.as(jobs.durable, true), Effect.as(Deferred.await(power.signal), false))
              )
              // While the store cannot be written `durable` does not wait (the server goes on answering):
              // only a wait that ended with the power on proves the creations stored.
              if (Exit.isSuccess(exit) && exit.value && !power.cut) {
                for (const id of covered) durablyCreated.add(id)
                notYetDurable = notYetDurable.filter((id) => !covered.includes(id))
              }
              return
            }
          }
        })

      for (let i = 0; i < scenario.steps.length && !power.cut; i++) yield* step(scenario.steps[i]!, `#${i}`)
      power.trip(`after the last step (${power.commits} commits)`)
      trace.push(`power cut ${power.where}`)

      const closed = yield* guarded("closing the first engine", Scope.close(firstScope, Exit.void))
      if (Exit.isFailure(closed)) violations.push(`closing the first engine failed: ${Cause.pretty(closed.cause)}`)
      const collected = yield* guarded("the first engine's event stream ending", Fiber.join(collector))
      if (Exit.isFailure(collected)) {
        violations.push(`the first engine's event stream failed: ${Cause.pretty(collected.cause)}`)
      }
      calls = firstLog.calls.slice(0, power.callsAtCut)

      // What the store holds, read as the next owner finds it.
      stored = yield* Effect.scoped(
        Effect.map(store.acquire(JobStore.processOwner()), (owned) => owned.snapshot)
      ).pipe(Effect.orDie)

      // The restart: a second engine on the store itself.
      restarted = true
      const secondScope = yield* Scope.make()
      const second = yield* guarded("opening the second engine", Layer.buildWithScope(engineOn(store), secondScope))
      if (Exit.isFailure(second)) {
        violations.push(`the second engine did not open: ${Cause.pretty(second.cause)}`)
        return record(false)
      }
      const again = Context.get(second.value, Jobs.Jobs)
      const secondLog = Context.get(second.value, Testing.CallbackLog)
      const fromStart = yield* again.subscribe({ since: 0, capacity: 100_000 }).pipe(Effect.orDie)
      const recovered = yield* call("recover", again.recover)
      if (Exit.isFailure(recovered)) return record(false)
      report = recovered.value
      yield* call("durable after the recovery", again.durable)
      listAfter = yield* again.list
      const { seq } = yield* again.snapshot
      if (seq > 0) {
        const replayed = yield* guarded(
          "the second engine's events up to its last one",
          Stream.runCollect(Stream.takeUntil(fromStart, (event) => event.seq >= seq))
        )
        if (Exit.isSuccess(replayed)) replay = replayed.value
        else violations.push(`the second engine's event stream failed: ${Cause.pretty(replayed.cause)}`)
      }
      calls = calls.concat(secondLog.calls)
      const closedSecond = yield* guarded("closing the second engine", Scope.close(secondScope, Exit.void))
      if (Exit.isFailure(closedSecond)) {
        violations.push(`closing the second engine failed: ${Cause.pretty(closedSecond.cause)}`)
      }
      return record(true)
    })

    return yield* body.pipe(
      Effect.catchTag("Stuck", (stuck) =>
        Effect.sync(() => {
          violations.push(`stuck: ${stuck.what} did not finish`)
          return record(false)
        }))
    )
  })
