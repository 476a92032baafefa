/**
 * The driver contract: the order of callbacks in every row of the spec's
 * table (§3.12), and what a failing (or dying) callback means for the job.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../src/Jobs.ts"
import * as JobTxn from "../src/JobTxn.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

const callbacksOf = (id: string) => Testing.CallbackLog.useSync((log) => log.of(id))

describe("callback order (spec §3.12)", () => {
  it.effect("success, single job: run → prepare → commit → clean → COMPLETED", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 2 } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      yield* rec.until("j", "null")
      assert.deepStrictEqual(yield* callbacksOf("j"), ["make", "run", "prepare", "commit", "clean", "free"])
      yield* rec.until("j", "null")
      assert.deepStrictEqual(rec.trace("j"), ["created", "running", "waiting", "pending", "COMPLETED", "concluded", "null"])
    }).pipe(Effect.provide(Testing.layer)))

  for (const result of ["fail", "die"] as const) {
    it.effect(`run ${result}s: run → abort → clean → COMPLETED with the error`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const rec = yield* recordEvents
        const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 2, result } })
        const error = result === "fail" ? "test job: run failed" : "test job: run died"
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error })
        yield* rec.until("j", "null")
        assert.deepStrictEqual(yield* callbacksOf("j"), ["make", "run", "abort", "clean", "free"])
        assert.deepStrictEqual(rec.trace("j"), ["created", "running", "aborting", `COMPLETED:${error}`, "concluded", "null"])
        const exit = yield* Effect.exit(jobs.join(job))
        assert.isTrue(Exit.isFailure(exit))
      }).pipe(Effect.provide(Testing.layer)))
  }

  it.effect("hard-cancelled while running: run → abort → clean → CANCELLED", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 100, sleepMillis: 10 } })
      yield* TestClock.adjust("55 millis")
      yield* jobs.cancel(job, { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.strictEqual(job.error, "Operation canceled")
      yield* rec.until("j", "null")
      assert.deepStrictEqual(yield* callbacksOf("j"), ["make", "run", "abort", "clean", "free"])
      assert.deepStrictEqual(rec.trace("j"), ["created", "running", "aborting", "CANCELLED", "concluded", "null"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("prepare failed: run → prepare → abort → clean → COMPLETED with the error", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 1, fail: ["prepare"] } })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: "test job: prepare failed" })
      yield* rec.until("j", "null")
      assert.deepStrictEqual(yield* callbacksOf("j"), ["make", "run", "prepare", "abort", "clean", "free"])
      assert.deepStrictEqual(rec.trace("j"), [
        "created",
        "running",
        "waiting",
        "pending",
        "aborting",
        "COMPLETED:test job: prepare failed",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancelled in CREATED: abort → clean, no COMPLETED/CANCELLED event", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.create({ type: "test", id: "j", manualDismiss: true })
      yield* jobs.cancel(job)
      assert.strictEqual(job.status, "null")
      assert.deepStrictEqual(yield* callbacksOf("j"), ["make", "abort", "clean", "free"])
      yield* rec.until("j", "null")
      assert.deepStrictEqual(rec.trace("j"), ["created", "aborting", "concluded", "null"])
    }).pipe(Effect.provide(Testing.layer)))
})

describe("failing callbacks", () => {
  for (const kind of ["fail", "die"] as const) {
    const message = (callback: string) => `test job: ${callback} ${kind === "fail" ? "failed" : "died"}`
    const script = (callback: string) => (kind === "fail" ? { fail: [callback] } : { die: [callback] })

    it.effect(`complete that ${kind}s: the caller gets the error, the job stays READY`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({
          type: "test",
          id: "j",
          params: { iterations: 0, converge: true, ...script("complete") }
        })
        const exit = yield* Effect.exit(jobs.complete(job))
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
          const error = exit.cause.reasons[0].error
          assert.strictEqual(error._tag, "CallbackFailed")
          assert.strictEqual(error.message, message("complete"))
        }
        assert.strictEqual(job.status, "ready")
        assert.strictEqual(job.error, undefined)
      }).pipe(Effect.provide(Testing.layer)))

    it.effect(`setSpeed and change that ${kind}: the caller gets the error, the speed is unchanged`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({
          type: "test",
          id: "j",
          params: { iterations: 5, sleepMillis: 10, ...script("setSpeed"), ...(kind === "fail" ? {} : {}) }
        })
        const speed = yield* Effect.exit(jobs.setSpeed(job, 100))
        assert.isTrue(Exit.isFailure(speed))
        assert.strictEqual(job.speed, 0)
        assert.strictEqual(job.status, "running")
        const job2 = yield* jobs.run({ type: "test", id: "k", params: { iterations: 5, sleepMillis: 10, ...script("change") } })
        const change = yield* Effect.exit(jobs.change(job2, {}))
        assert.isTrue(Exit.isFailure(change))
        assert.strictEqual(job2.status, "running")
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job2), { _tag: "Succeeded" })
      }).pipe(Effect.provide(Testing.layer)))

    for (const callback of ["pause", "resume"] as const) {
      it.effect(`${callback} that ${kind}s: the job fails as if run had failed`, () =>
        Effect.gen(function*() {
          const jobs = yield* Jobs
          const rec = yield* recordEvents
          const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 5, sleepMillis: 10, ...script(callback) } })
          yield* jobs.pause(job)
          if (callback === "resume") {
            yield* jobs.awaitStatus(job, "paused")
            yield* jobs.resume(job)
          }
          assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: message(callback) })
          const calls = yield* callbacksOf("j")
          assert.deepStrictEqual(calls.filter((c) => c === "commit" || c === "abort"), ["abort"])
          yield* rec.until("j", "null")
          assert.include(rec.trace("j"), `COMPLETED:${message(callback)}`)
        }).pipe(Effect.provide(Testing.layer)))
    }

    it.effect(`userResume that ${kind}s: the job fails`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 5, sleepMillis: 10, ...script("userResume") } })
        yield* jobs.pause(job)
        yield* jobs.awaitStatus(job, "paused")
        yield* jobs.resume(job)
        assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Failed", error: message("userResume") })
      }).pipe(Effect.provide(Testing.layer)))

    it.effect(`cancel callback that ${kind}s: the job fails with its error`, () =>
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({
          type: "test",
          id: "j",
          params: { iterations: 0, converge: true, softCancel: true, ...script("cancel") }
        })
        yield* jobs.cancel(job)
        const outcome = yield* jobs.awaitOutcome(job)
        assert.deepStrictEqual(outcome, { _tag: "Failed", error: message("cancel") })
        const calls = yield* callbacksOf("j")
        assert.deepStrictEqual(calls.filter((c) => c === "commit" || c === "abort"), ["abort"])
      }).pipe(Effect.provide(Testing.layer)))

    for (const callback of ["commit", "abort", "clean", "free"] as const) {
      it.effect(`${callback} that ${kind}s: logged, kept as the error if none, the job still concludes once`, () =>
        Effect.gen(function*() {
          const jobs = yield* Jobs
          const rec = yield* recordEvents
          const result = callback === "abort" ? "fail" : "succeed"
          const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 1, result, ...script(callback) } })
          const outcome = yield* jobs.awaitOutcome(job)
          yield* rec.until("j", "null")
          const calls = yield* callbacksOf("j")
          assert.strictEqual(calls.filter((c) => c === "commit" || c === "abort").length, 1)
          assert.strictEqual(calls.filter((c) => c === "clean").length, 1)
          assert.strictEqual(calls.filter((c) => c === "free").length, 1)
          if (callback === "abort") assert.deepStrictEqual(outcome, { _tag: "Failed", error: "test job: run failed" })
          else if (callback === "free") assert.deepStrictEqual(outcome, { _tag: "Succeeded" })
          else assert.deepStrictEqual(outcome, { _tag: "Failed", error: message(callback) })
        }).pipe(Effect.provide(Testing.layer)))
    }
  }

  describe("failing cancel callback of a job whose run has returned", () => {
  it.effect("a failing cancel callback on a waiting job fails it with the callback's error", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const a = yield* jobs.create({
        type: "test",
        id: "a",
        txn,
        params: { iterations: 1, wait: "yield", softCancel: true, fail: ["cancel"] }
      })
      yield* jobs.create({ type: "test", id: "b", txn, params: { iterations: 5, wait: "yield" } })
      yield* jobs.start("a")
      yield* jobs.start("b")
      yield* jobs.enter("a") // a's run returns; b keeps the transaction running
      assert.strictEqual(a.status, "waiting")
      yield* jobs.cancel("a")
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), { _tag: "Failed", error: "test job: cancel failed" })
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "test job: cancel failed" })
    }).pipe(Effect.provide(Testing.layer)))
  })
})
