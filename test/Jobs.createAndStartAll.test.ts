/**
 * `createAndStartAll` (and `run`, for one job): the jobs of one request, all
 * started or none created.
 * A creation that fails discards those before it; a caller interrupted while
 * the jobs are being created (a client gone midway) still leaves every job
 * started — never one CREATED and left so.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobTxn from "../src/JobTxn.ts"

/** A job whose `make` may wait for `release` (after saying so on `entered`), or fail. */
const gates = { entered: Deferred.makeUnsafe<void>(), release: Deferred.makeUnsafe<void>() }
const GatedDriver = JobDriver.make({
  type: "gated",
  params: Schema.Struct({ wait: Schema.optional(Schema.Boolean), fail: Schema.optional(Schema.Boolean) }),
  make: (params) =>
    Effect.gen(function*() {
      if (params.fail === true) return yield* Effect.fail("cannot set this job up")
      if (params.wait === true) {
        yield* Deferred.succeed(gates.entered, undefined)
        yield* Deferred.await(gates.release)
      }
      return { run: Effect.never }
    })
})

const setUp = Effect.gen(function*() {
  gates.entered = Deferred.makeUnsafe<void>()
  gates.release = Deferred.makeUnsafe<void>()
  const jobs = yield* Jobs.Jobs
  yield* Effect.orDie(jobs.register(GatedDriver))
  return jobs
})

const statuses = (jobs: Jobs.JobsService) => Effect.map(jobs.list, (rows) => rows.map((row) => `${row.id}:${row.status}`))

describe("createAndStartAll", () => {
  it.effect("creates every job, then starts every one", () =>
    Effect.gen(function*() {
      const jobs = yield* setUp
      const seen: Array<string> = []
      const created = yield* Jobs.createAndStartAll(
        jobs,
        [{ type: "gated", id: "a" }, { type: "gated", id: "b" }],
        (job, i) => seen.push(`${i}:${job.id}:${job.status}`)
      )
      assert.deepStrictEqual(created.map((job) => job.id), ["a", "b"])
      // Each was seen as it was created, before any was started.
      assert.deepStrictEqual(seen, ["0:a:created", "1:b:created"])
      assert.deepStrictEqual(yield* statuses(jobs), ["a:running", "b:running"])
    }).pipe(Effect.provide(Jobs.layer)))

  it.effect("a creation that fails discards the jobs created before it, and fails with its error", () =>
    Effect.gen(function*() {
      const jobs = yield* setUp
      const txn = yield* JobTxn.make
      const exit = yield* Effect.exit(Jobs.createAndStartAll(jobs, [
        { type: "gated", id: "a", txn },
        { type: "gated", id: "b", txn },
        { type: "gated", id: "c", txn, params: { fail: true } }
      ]))
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const reason = exit.cause.reasons[0]!
        assert.strictEqual(reason._tag, "Fail")
        if (reason._tag === "Fail") assert.strictEqual(reason.error._tag, "JobSetupFailed")
      }
      assert.deepStrictEqual(yield* statuses(jobs), [])
    }).pipe(Effect.provide(Jobs.layer)))

  it.effect("interrupted while a job is being created: every job is still created and started", () =>
    Effect.gen(function*() {
      const jobs = yield* setUp
      const txn = yield* JobTxn.make
      const fiber = yield* Effect.forkChild(
        Jobs.createAndStartAll(jobs, [
          { type: "gated", id: "a", txn },
          { type: "gated", id: "b", txn, params: { wait: true } }
        ]),
        { startImmediately: true }
      )
      // "a" is CREATED and "b"'s driver is building it: the caller goes away now.
      yield* Deferred.await(gates.entered)
      assert.deepStrictEqual(yield* statuses(jobs), ["a:created"])
      const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber), { startImmediately: true })
      yield* Deferred.succeed(gates.release, undefined)
      yield* Fiber.join(interrupting)
      assert.deepStrictEqual(yield* statuses(jobs), ["a:running", "b:running"])
    }).pipe(Effect.provide(Jobs.layer)))

  it.effect("run, interrupted while the driver builds the job, still starts it", () =>
    Effect.gen(function*() {
      const jobs = yield* setUp
      const fiber = yield* Effect.forkChild(jobs.run({ type: "gated", id: "r", params: { wait: true } }), {
        startImmediately: true
      })
      yield* Deferred.await(gates.entered)
      const interrupting = yield* Effect.forkChild(Fiber.interrupt(fiber), { startImmediately: true })
      yield* Deferred.succeed(gates.release, undefined)
      yield* Fiber.join(interrupting)
      assert.deepStrictEqual(yield* statuses(jobs), ["r:running"])
    }).pipe(Effect.provide(Jobs.layer)))
})
