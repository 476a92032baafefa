/**
 * The user verbs: acceptance in every status a job can be held in (the verb table
 * plus each verb's extra checks, in QEMU's order), and the job-level parts of
 * QEMU's iotest 219 (spec §8.3).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import type { Job } from "../src/Job.ts"
import { Jobs } from "../src/Jobs.ts"
import * as JobTxn from "../src/JobTxn.ts"
import * as JobVerb from "../src/JobVerb.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

const forever = { iterations: 1_000_000, sleepMillis: 1 }

/** Brings a fresh job into `status` and returns it. */
const jobIn = (status: string, id: string): Effect.Effect<Job, unknown, Jobs> =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    switch (status) {
      case "created":
        return yield* jobs.create({ type: "test", id, params: forever })
      case "running":
        return yield* jobs.run({ type: "test", id, params: forever })
      case "paused": {
        const job = yield* jobs.run({ type: "test", id, params: forever })
        yield* jobs.pause(job)
        yield* jobs.awaitStatus(job, "paused")
        return job
      }
      case "ready":
        return yield* jobs.run({ type: "test", id, params: { iterations: 0, converge: true } })
      case "standby": {
        const job = yield* jobs.run({ type: "test", id, params: { iterations: 0, converge: true } })
        yield* jobs.pause(job)
        yield* jobs.awaitStatus(job, "standby")
        return job
      }
      case "waiting": {
        const txn = yield* JobTxn.make
        const blocker = yield* jobs.run({ type: "test", id: `${id}-blocker`, params: forever, txn })
        const job = yield* jobs.run({ type: "test", id, params: { iterations: 0 }, txn })
        assert.strictEqual(blocker.status, "running")
        return job
      }
      case "pending":
        return yield* jobs.run({ type: "test", id, params: { iterations: 0 }, manualFinalize: true })
      case "concluded":
        return yield* jobs.run({ type: "test", id, params: { iterations: 0 }, manualDismiss: true })
    }
    throw new Error(status)
  })

const apply = (jobs: Jobs["Service"], verb: JobVerb.JobVerb, job: Job): Effect.Effect<void, { readonly message: string }> => {
  switch (verb) {
    case "cancel":
      return jobs.cancel(job, { force: true })
    case "pause":
      return jobs.pause(job)
    case "resume":
      return jobs.resume(job)
    case "set-speed":
      return jobs.setSpeed(job, 1024)
    case "complete":
      return jobs.complete(job)
    case "dismiss":
      return jobs.dismiss(job)
    case "finalize":
      return jobs.finalize(job)
    case "change":
      return jobs.change(job, { mode: "x" })
  }
}

const holdable = ["created", "running", "paused", "ready", "standby", "waiting", "pending", "concluded"] as const

describe("verb acceptance in every status", () => {
  for (const status of holdable) {
    for (const verb of JobVerb.all) {
      it.effect(`${verb} in ${status}`, () =>
        Effect.gen(function*() {
          const jobs = yield* Jobs
          const job = yield* jobIn(status, "job0")
          assert.strictEqual(job.status, status)
          const exit = yield* Effect.exit(apply(jobs, verb, job))
          const error = Exit.isFailure(exit) ? exit.cause.reasons[0] : undefined
          const message = error?._tag === "Fail" ? (error.error as Error).message : undefined
          if (verb === "resume" && !job.userPaused && status !== "paused" && status !== "standby") {
            // QEMU checks "was it paused" before the verb table.
            assert.strictEqual(message, "Can't resume a job that was not paused")
          } else if (!JobVerb.isAllowed(verb, status)) {
            assert.strictEqual(message, `Job 'job0' in state '${status}' cannot accept command verb '${verb}'`)
          } else if (verb === "pause" && (status === "paused" || status === "standby")) {
            assert.strictEqual(message, "Job is already paused")
          } else {
            assert.isTrue(Exit.isSuccess(exit), `${verb} in ${status}: ${message}`)
          }
        }).pipe(Effect.provide(Testing.layer)))
    }
  }
})

describe("iotest 219, job level (spec §8.3)", () => {
  it.effect("pause/resume in RUNNING advance by exactly one step per cycle; verbs refused in RUNNING and READY", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const job = yield* jobs.run({ type: "test", id: "job0", params: { iterations: 16, sleepMillis: 100, converge: true } })
      assert.deepStrictEqual(job.progress, { current: 0, total: 16 })
      for (let k = 1; k <= 4; k++) {
        yield* jobs.pause(job)
        yield* jobs.awaitStatus(job, "paused")
        assert.strictEqual(job.progress.current, k - 1)
        yield* jobs.resume(job)
        yield* jobs.awaitStatus(job, "running")
        // The pause cut a sleep short; on resume the job does one unit of work and sleeps again.
        assert.strictEqual(job.progress.current, k)
      }
      for (const verb of ["complete", "finalize", "dismiss"] as const) {
        const exit = yield* Effect.exit(apply(jobs, verb, job))
        assert.deepStrictEqual(
          Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail" ? exit.cause.reasons[0].error.message : "",
          `Job 'job0' in state 'running' cannot accept command verb '${verb}'`
        )
      }
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(job.status, "ready")
      assert.deepStrictEqual(job.progress, { current: 16, total: 16 })
      for (let k = 0; k < 2; k++) {
        yield* jobs.pause(job)
        yield* jobs.awaitStatus(job, "standby")
        yield* jobs.resume(job)
        yield* jobs.awaitStatus(job, "ready")
        assert.deepStrictEqual(job.progress, { current: 16, total: 16 })
      }
      for (const verb of ["finalize", "dismiss"] as const) {
        const exit = yield* Effect.exit(apply(jobs, verb, job))
        assert.isTrue(Exit.isFailure(exit))
      }
      yield* jobs.complete(job)
      yield* jobs.awaitStatus(job, "null")
      yield* rec.until("job0", "null")
      assert.deepStrictEqual(rec.statuses("job0"), [
        "created",
        "running",
        ...Array.from({ length: 4 }, () => ["paused", "running"]).flat(),
        "ready",
        "standby",
        "ready",
        "standby",
        "ready",
        "waiting",
        "pending",
        "concluded",
        "null"
      ])
      assert.deepStrictEqual(yield* jobs.list, [])
    }).pipe(Effect.provide(Testing.layer)))

  for (const manualFinalize of [false, true]) {
    for (const manualDismiss of [false, true]) {
      it.effect(`auto-finalize=${!manualFinalize} auto-dismiss=${!manualDismiss}`, () =>
        Effect.gen(function*() {
          const jobs = yield* Jobs
          const rec = yield* recordEvents
          const job = yield* jobs.run({
            type: "test",
            id: "job0",
            manualFinalize,
            manualDismiss,
            params: { iterations: 4, sleepMillis: 100 }
          })
          yield* TestClock.adjust("1 second")
          const refused = (verbs: ReadonlyArray<JobVerb.JobVerb>, status: string) =>
            Effect.gen(function*() {
              for (const verb of verbs) {
                const exit = yield* Effect.exit(apply(jobs, verb, job))
                assert.isTrue(Exit.isFailure(exit))
                if (Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Fail") {
                  assert.strictEqual(
                    exit.cause.reasons[0].error.message,
                    `Job 'job0' in state '${status}' cannot accept command verb '${verb}'`
                  )
                }
              }
            })
          if (manualFinalize) {
            assert.strictEqual(job.status, "pending")
            yield* refused(["pause", "complete", "dismiss"], "pending")
            yield* jobs.finalize(job)
          }
          if (manualDismiss) {
            assert.strictEqual(job.status, "concluded")
            assert.deepStrictEqual((yield* jobs.list).map((j) => [j.status, j.currentProgress, j.totalProgress]), [[
              "concluded",
              4,
              4
            ]])
            yield* refused(["pause", "complete", "finalize"], "concluded")
            yield* jobs.dismiss(job)
          }
          assert.strictEqual(job.status, "null")
          yield* rec.until("job0", "null")
          assert.deepStrictEqual(rec.trace("job0"), [
            "created",
            "running",
            "waiting",
            "pending",
            ...(manualFinalize ? ["PENDING"] : []),
            "COMPLETED",
            "concluded",
            "null"
          ])
          assert.deepStrictEqual(yield* jobs.list, [])
        }).pipe(Effect.provide(Testing.layer)))
    }
  }
})
