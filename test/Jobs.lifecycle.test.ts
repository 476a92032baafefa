/**
 * Jobs as fibers: force cancel interrupts at once, soft cancel follows the
 * driver, pause requests are counted (user pause, holds), sync helpers and
 * awaits need no polling, and closing the layer finishes every job.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Effect, Exit, Fiber, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as JobDriver from "../src/JobDriver.ts"
import { Jobs } from "../src/Jobs.ts"
import * as JobsModule from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

describe("force cancel", () => {
  it.effect("a job sleeping one hour is force-cancelled and concludes without the clock moving", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "sleeper", params: { iterations: 1, sleepMillis: 3_600_000 } })
      const before = yield* Clock.currentTimeMillis
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" })
      assert.strictEqual(yield* Clock.currentTimeMillis, before)
      assert.strictEqual(job.status, "null")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a job yielded until entered is force-cancelled at once", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "y", params: { iterations: 3, wait: "yield" } })
      yield* jobs.enter(job)
      assert.strictEqual(job.progress.current, 1)
      assert.deepStrictEqual(yield* jobs.cancelSync(job, { force: true }), { _tag: "Cancelled" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a force-cancelled job never parks, even while a pause hold is in place", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 3, sleepMillis: 10 } })
      yield* jobs.hold(job, "maintenance")
      yield* jobs.awaitStatus(job, "paused")
      assert.strictEqual(job.pauseCount, 1)
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      // Un-parked with its resume hook before it aborted.
      assert.deepStrictEqual(log.of("j").slice(1, 4), ["run", "pause", "resume"])
    }).pipe(Effect.scoped, Effect.provide(Testing.layer)))

  it.effect("a force cancel of a user-paused job stops it: the job never runs on to its end first", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      // Un-parked, this job would finish at once (its last wait is behind it).
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 1, wait: "yield" } })
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.deepStrictEqual(log.of("j").filter((c) => c === "commit" || c === "abort"), ["abort"])
      assert.strictEqual(job.progress.current, 0)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a soft cancel of a user-paused job wakes it with its cancel flag set", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({
        type: "test",
        id: "j",
        manualFinalize: true,
        params: { iterations: 3, wait: "yield", softCancelAlways: true }
      })
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      yield* jobs.cancel(job)
      // The test driver stops its loop when a cancel was requested, and succeeds.
      assert.strictEqual(job.status, "pending")
      assert.strictEqual(job.progress.current, 1)
      assert.isTrue(job.cancelRequested)
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a force cancel arriving before the job's fiber runs is honoured", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.create({ type: "test", id: "j", params: { iterations: 1 } })
      // React to RUNNING synchronously: the cancel lands before `run` starts.
      const canceller = yield* Effect.forkChild(
        Effect.andThen(jobs.awaitStatus(job, "running"), jobs.cancel(job, { force: true })),
        { startImmediately: true }
      )
      yield* jobs.start(job)
      yield* Fiber.await(canceller)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      const log = yield* Testing.CallbackLog
      assert.notInclude(log.of("j"), "run")
    }).pipe(Effect.provide(Testing.layer)))
})

describe("soft cancel (spec §3.8)", () => {
  it.effect("soft cancel of a READY job whose driver says so: COMPLETED, not CANCELLED", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({
        type: "test",
        id: "mirror",
        params: { iterations: 2, sleepMillis: 10, converge: true, softCancel: true }
      })
      yield* TestClock.adjust("20 millis")
      assert.strictEqual(job.status, "ready")
      yield* jobs.cancel(job)
      assert.isTrue(job.cancelRequested)
      assert.isFalse(job.isCancelled)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      yield* rec.until("mirror", "null")
      assert.deepStrictEqual(rec.trace("mirror"), [
        "created",
        "running",
        "ready",
        "READY",
        "waiting",
        "pending",
        "COMPLETED",
        "concluded",
        "null"
      ])
      const log = yield* Testing.CallbackLog
      assert.include(log.of("mirror"), "commit")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("soft cancel before READY is hard for such a driver; complete after a soft cancel is refused", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const early = yield* jobs.run({
        type: "test",
        id: "early",
        params: { iterations: 5, sleepMillis: 10, converge: true, softCancel: true }
      })
      yield* jobs.cancel(early)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(early), { _tag: "Cancelled" })

      const ready = yield* jobs.run({
        type: "test",
        id: "ready",
        manualFinalize: true,
        params: { iterations: 0, wait: "yield", converge: true, softCancel: true }
      })
      // Pause first so the soft-cancelled job stays in STANDBY while we try to complete it.
      yield* jobs.hold(ready, "test")
      yield* jobs.awaitStatus(ready, "standby")
      yield* jobs.cancel(ready)
      const exit = yield* Effect.exit(jobs.complete(ready))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(exit.cause.reasons[0].error.message, "The active block job 'ready' cannot be completed")
      }
    }).pipe(Effect.scoped, Effect.provide(Testing.layer)))

  it.effect("a soft cancel after run returned is ignored; a later hard cancel still aborts", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({
        type: "test",
        id: "j",
        manualFinalize: true,
        params: { iterations: 0, softCancelAlways: true }
      })
      assert.strictEqual(job.status, "pending")
      yield* jobs.cancel(job)
      assert.isFalse(job.cancelRequested)
      assert.strictEqual(job.status, "pending")
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
    }).pipe(Effect.provide(Testing.layer)))
})

describe("pause counting (spec §3.6–3.7)", () => {
  it.effect("a job paused while CREATED parks at its first pause point when started", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.create({ type: "test", id: "j", params: { iterations: 1 } })
      assert.strictEqual(job.pauseCount, 1)
      yield* jobs.pause(job)
      assert.strictEqual(job.pauseCount, 2)
      yield* jobs.start(job)
      assert.strictEqual(job.status, "paused")
      assert.strictEqual(job.pauseCount, 1)
      yield* jobs.resume(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      yield* rec.until("j", "concluded")
      assert.deepStrictEqual(rec.statuses("j").slice(0, 4), ["created", "running", "paused", "running"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("holds and the user pause add up; the job runs again only when all are gone", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 100, sleepMillis: 10 } })
      yield* Effect.scoped(Effect.gen(function*() {
        yield* jobs.hold(job, "backup window")
        yield* jobs.pause(job)
        yield* Effect.scoped(jobs.hold(job, "drain"))
        yield* jobs.awaitStatus(job, "paused")
        assert.deepStrictEqual(job.pauseHolds, ["backup window"])
        assert.strictEqual(job.pauseCount, 2)
        yield* jobs.resume(job)
        assert.strictEqual(job.status, "paused")
        assert.strictEqual(job.pauseCount, 1)
      }))
      assert.strictEqual(job.pauseCount, 0)
      yield* jobs.awaitStatus(job, "running")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("a waiter that reacts to PAUSED at once can resume the job (no lost wake-up)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 3, wait: "yield" } })
      const resumer = yield* Effect.forkChild(
        Effect.andThen(jobs.awaitStatus(job, "paused"), jobs.resume(job)),
        { startImmediately: true }
      )
      yield* jobs.pause(job)
      yield* Fiber.await(resumer)
      assert.strictEqual(job.pauseCount, 0)
      yield* jobs.enter(job)
      yield* jobs.enter(job)
      yield* jobs.enter(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
    }).pipe(Effect.provide(Testing.layer)))
})

describe("awaits and sync helpers (spec §3.17)", () => {
  it.effect("finishSync returns at PENDING with manual finalize; awaitOutcome at CONCLUDED", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", manualFinalize: true, params: { iterations: 3, sleepMillis: 10 } })
      const finish = yield* Effect.forkChild(jobs.finishSync(job), { startImmediately: true })
      yield* TestClock.adjust("30 millis")
      assert.deepStrictEqual(yield* Fiber.join(finish), { _tag: "Succeeded" })
      assert.strictEqual(job.status, "pending")
      const outcome = yield* Effect.forkChild(jobs.awaitOutcome(job), { startImmediately: true })
      yield* jobs.finalize(job)
      assert.deepStrictEqual(yield* Fiber.join(outcome), { _tag: "Succeeded" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("completeSync completes a READY job and returns its result; a verb error comes back typed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 0, converge: true, result: "fail" } })
      assert.deepStrictEqual(yield* jobs.completeSync(job), { _tag: "Failed", error: "test job: run failed" })
      const running = yield* jobs.run({ type: "test", id: "k", params: { iterations: 10, sleepMillis: 10 } })
      const exit = yield* Effect.exit(jobs.completeSync(running))
      assert.isTrue(Exit.isFailure(exit))
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("awaitStatus fails with StatusNotReached when the job is dismissed first", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 2, sleepMillis: 10 } })
      const waiter = yield* Effect.forkChild(jobs.awaitStatus(job, "ready"), { startImmediately: true })
      yield* TestClock.adjust("20 millis")
      const exit = yield* Fiber.await(waiter)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(exit.cause.reasons[0].error._tag, "StatusNotReached")
      }
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("join fails with JobFailed / JobCancelled", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const failed = yield* jobs.run({ type: "test", id: "f", params: { iterations: 0, result: "fail" } })
      const cancelled = yield* jobs.run({ type: "test", id: "c", params: { iterations: 5, sleepMillis: 10 } })
      yield* jobs.cancel(cancelled, { force: true })
      const a = yield* Effect.exit(jobs.join(failed))
      const b = yield* Effect.exit(jobs.join(cancelled))
      const tag = (e: Exit.Exit<void, { readonly _tag: string }>) =>
        Exit.isFailure(e) && e.cause.reasons[0]?._tag === "Fail" ? e.cause.reasons[0].error._tag : "none"
      assert.strictEqual(tag(a), "JobFailed")
      assert.strictEqual(tag(b), "JobCancelled")
    }).pipe(Effect.provide(Testing.layer)))
})

describe("set-speed (spec §7, §9.17)", () => {
  it.effect("a negative speed is refused after the verb check; a faster speed wakes a sleeping job, a slower one does not", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 3, sleepMillis: 1000 } })
      const negative = yield* Effect.exit(jobs.setSpeed(job, -1))
      assert.isTrue(Exit.isFailure(negative))
      if (Exit.isFailure(negative) && negative.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(negative.cause.reasons[0].error.message, "Parameter 'speed' expects a non-negative value")
      }
      yield* jobs.setSpeed(job, 100)
      assert.strictEqual(job.progress.current, 1, "speed up from unlimited... 0 → 100 is faster by the rule: wakes")
      yield* jobs.setSpeed(job, 50)
      assert.strictEqual(job.progress.current, 1, "a slower speed lets the job sleep on")
      yield* jobs.setSpeed(job, 0)
      assert.strictEqual(job.progress.current, 2, "unlimited wakes it")
      const done = yield* jobs.run({ type: "test", id: "k", manualDismiss: true, params: { iterations: 0 } })
      const refused = yield* Effect.exit(jobs.setSpeed(done, -1))
      if (Exit.isFailure(refused) && refused.cause.reasons[0]?._tag === "Fail") {
        assert.strictEqual(refused.cause.reasons[0].error._tag, "VerbNotAllowed")
      } else assert.fail("expected the verb check first")
    }).pipe(Effect.provide(Testing.layer)))
})

describe("closing the Jobs layer", () => {
  it.effect("force-cancels and finishes every job: abort and clean run, nothing outlives the scope", () =>
    Effect.gen(function*() {
      const log = yield* Testing.CallbackLog
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* jobs.run({ type: "test", id: "running", params: { iterations: 1000, sleepMillis: 1000 } })
        yield* jobs.run({ type: "test", id: "paused", params: { iterations: 1000, sleepMillis: 1000 } })
        yield* jobs.pause("paused")
        yield* jobs.awaitStatus("paused", "paused")
        yield* jobs.run({ type: "test", id: "pending", manualFinalize: true, params: { iterations: 0 } })
        yield* jobs.run({ type: "test", id: "concluded", manualDismiss: true, params: { iterations: 0 } })
        yield* jobs.create({ type: "test", id: "created" })
        yield* jobs.run({ type: "test", internal: true, params: { iterations: 1000, sleepMillis: 1000 } })
      }).pipe(Effect.provide(JobDriver.layer(Testing.TestDriver).pipe(Layer.provideMerge(JobsModule.layer))))
      for (const id of ["running", "paused", "pending", "created", "<internal>"]) {
        const calls = log.of(id)
        assert.include(calls, "abort", id)
        assert.notInclude(calls, "commit", id)
        assert.include(calls, "clean", id)
        assert.include(calls, "free", id)
      }
      assert.include(log.of("concluded"), "commit")
      assert.include(log.of("concluded"), "free")
    }).pipe(Effect.provide(Testing.CallbackLog.layer)))
})

describe("closing the Jobs layer, new work", () => {
  it.effect("creating or starting a job while the layer closes fails with EngineClosing", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const created = yield* jobs.create({ type: "test", id: "late-start" })
        const driver = JobDriver.make({
          type: "reentrant",
          params: Schema.Struct({}),
          make: (_params, job) =>
            Effect.succeed({
              run: Effect.forever(job.sleep("1 hour")),
              // Runs while the layer force-cancels everything.
              abort: Effect.gen(function*() {
                const create = yield* Effect.exit(Effect.asVoid(jobs.create({ type: "test", id: "too-late" })))
                const start = yield* Effect.exit(jobs.start(created))
                for (const exit of [create, start] as Array<Exit.Exit<void, { readonly message: string }>>) {
                  if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
                    seen.push(exit.cause.reasons[0].error.message)
                  }
                }
              })
            })
        })
        yield* jobs.register(driver)
        yield* jobs.run({ type: "reentrant", id: "r" })
      }).pipe(Effect.provide(Testing.layer))
      assert.deepStrictEqual(seen, ["The job engine is shutting down", "The job engine is shutting down"])
    }))
})

class Greeting extends Context.Service<Greeting, { readonly text: string }>()("test/Greeting") {}

describe("drivers", () => {
  it.effect("a driver's requirements are captured when its layer registers it; a type registers once", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const driver = JobDriver.make({
        type: "greet",
        params: Schema.Struct({ name: Schema.String }),
        make: (params, _job) =>
          Effect.gen(function*() {
            const greeting = yield* Greeting
            return { run: Effect.sync(() => void seen.push(`${greeting.text}, ${params.name}`)) }
          })
      })
      const layer = JobDriver.layer(driver).pipe(
        Layer.provideMerge(JobsModule.layer),
        Layer.provide(Layer.succeed(Greeting, { text: "hello" }))
      )
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({ type: "greet", id: "g", params: { name: "world" } })
        yield* jobs.join(job)
        const again = yield* Effect.exit(Effect.provideService(jobs.register(driver), Greeting, { text: "hi" }))
        assert.isTrue(Exit.isFailure(again))
      }).pipe(Effect.provide(layer))
      assert.deepStrictEqual(seen, ["hello, world"])
    }))
})
