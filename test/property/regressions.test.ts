/**
 * Engine bugs found by the property tests of the verbs (verbs.property.test.ts),
 * each minimised to a concrete scenario. Each test states what the spec requires,
 * so it fails while the bug is there.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { Jobs } from "../../src/Jobs.ts"
import * as Testing from "../../src/testing.ts"

const commitOrAbort = (calls: ReadonlyArray<Testing.CallbackName>) =>
  calls.filter((c) => c === "commit" || c === "abort")

describe("regressions found by the verb properties", () => {
  // A force cancel must win when it lifts the user's pause. QEMU's job_cancel_async
  // drops the pause count without entering the job and sets `force_cancel` before
  // job_cancel enters it, so the job always wakes up cancelled (spec §3.8, §3.10).
  // Here the job wakes up (and runs on) before the cancel flags are set.

  it.effect("force cancel of a job paused before it started: cancelled, never committed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.create({ type: "test", id: "j0", params: { iterations: 0 } })
      yield* jobs.pause(job) // paused while CREATED
      yield* jobs.start(job) // parks at its first pause point
      assert.strictEqual(job.status, "paused")
      yield* jobs.cancel(job, { force: true })
      const outcome = yield* jobs.awaitOutcome(job)
      assert.deepStrictEqual(commitOrAbort(log.of("j0")), ["abort"]) // observed: ["commit"]
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" }) // observed: Succeeded
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("cancelSync(force) of a running job the user paused: Cancelled, never committed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.run({ type: "test", id: "j0", params: { iterations: 1, sleepMillis: 1 } })
      yield* jobs.pause(job)
      yield* TestClock.adjust(1)
      assert.strictEqual(job.status, "paused")
      const outcome = yield* jobs.cancelSync(job, { force: true })
      assert.deepStrictEqual(outcome, { _tag: "Cancelled" }) // observed: Succeeded
      assert.deepStrictEqual(commitOrAbort(log.of("j0")), ["abort"]) // observed: ["commit"]
      assert.isTrue(job.isCancelled) // observed: false
    }).pipe(Effect.provide(Testing.layer)))

  // No driver callback may follow `free` ("last call, when the job is dismissed"),
  // nor any but `free` follow `clean`. When the driver's `cancel` callback fails
  // on a user-paused job, the job fails and concludes (abort, clean, free) inside
  // the cancel, and the cancel then still calls `userResume` on it.
  it.effect("a failing cancel callback on a user-paused job: no userResume after free", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const log = yield* Testing.CallbackLog
      const job = yield* jobs.run({
        type: "test",
        id: "j0",
        params: { iterations: 1, sleepMillis: 10, softCancel: true, fail: ["cancel"] }
      })
      yield* jobs.pause(job)
      assert.strictEqual(job.status, "paused")
      yield* jobs.cancel(job, { force: true })
      yield* jobs.awaitOutcome(job)
      const calls = log.of("j0")
      // observed: [make, run, pause, cancel, resume, abort, clean, free, userResume]
      assert.strictEqual(calls[calls.length - 1], "free")
      assert.isBelow(calls.indexOf("userResume"), calls.indexOf("clean"))
    }).pipe(Effect.provide(Testing.layer)))
})
