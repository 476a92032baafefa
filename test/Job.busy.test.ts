/**
 * `Job.busy` once `run` has returned. QEMU clears `busy` when the job's
 * coroutine has finished (job_exit, before the completion path), so
 * `query-block-jobs` shows `"busy": false` in WAITING, PENDING and CONCLUDED
 * (see the recorded sessions in test/qmp/qemu-traces/); so does the engine.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as JobDriver from "../src/JobDriver.ts"
import { Jobs } from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"

describe("Job.busy after run", () => {
  it.effect("is false once run has returned (PENDING with manual finalize)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({
        type: "test",
        id: "j",
        manualFinalize: true,
        params: { iterations: 1, sleepMillis: 10 }
      })
      yield* TestClock.adjust("10 millis")
      yield* jobs.awaitStatus(job, "pending")
      assert.isFalse(job.busy)
    }).pipe(Effect.provide(Testing.layer)))

  // A job alone whose driver has nothing after `run` is finalized, concluded and dismissed in the
  // step its `run` returns in; waiters resumed inside that step see it as finalization shows it.
  const Noop = JobDriver.make({
    type: "noop",
    params: Schema.Struct({}),
    make: () => Effect.succeed({ run: Effect.void })
  })

  it.effect("is true while a job alone is finalized in one step (PENDING, CONCLUDED)", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.register(Noop)
      const job = yield* jobs.create({ type: "noop", id: "n" })
      const seen: Array<string> = []
      const watch = (status: "pending" | "concluded") =>
        Effect.forkChild(
          Effect.andThen(jobs.awaitStatus(job, status), Effect.sync(() => seen.push(`${status}:${job.busy}`))),
          { startImmediately: true }
        )
      const pending = yield* watch("pending")
      const concluded = yield* watch("concluded")
      yield* jobs.start(job)
      yield* Fiber.join(pending)
      yield* Fiber.join(concluded)
      assert.deepStrictEqual(seen, ["pending:true", "concluded:true"])
      assert.strictEqual(job.status, "null")
      assert.isFalse(job.busy)
    }).pipe(Effect.provide(Testing.layer)))
})
