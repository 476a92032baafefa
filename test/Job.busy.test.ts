/**
 * `Job.busy` once `run` has returned. QEMU clears `busy` when the job's
 * coroutine has finished (job_exit, before the completion path), so
 * `query-block-jobs` shows `"busy": false` in WAITING, PENDING and CONCLUDED
 * (see the recorded sessions in test/qmp/qemu-traces/); so does the engine.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
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
})
