/**
 * The scenarios of docs/pause-holds.md, run against examples/pauseHolds.ts with
 * the test kit's jobs as the writers. The doc shows the example and the region
 * below verbatim (up to the import paths); test/docs/sourceLabels.test.ts checks
 * that it still does.
 */
// #region doc
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { Jobs, JobTxn } from "../../src/index.ts"
import * as Testing from "../../src/testing.ts"
import { whileVolumeQuiet, type Writer } from "../../examples/pauseHolds.ts"

describe("a snapshot that holds the writers of its volume", () => {
  it.effect("holds them while it runs, apart from their user's pause", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const log = yield* Testing.CallbackLog
      // Test jobs stand in for the writers: one unit of work every 10 ms; "mirror" is READY after one.
      const copy = yield* jobs.run({ type: "test", id: "copy", params: { iterations: 100, sleepMillis: 10 } })
      const mirror = yield* jobs.run({ type: "test", id: "mirror", params: { sleepMillis: 10, converge: true } })
      const logger = yield* jobs.run({ type: "test", id: "logger", params: { iterations: 100, sleepMillis: 10 } })
      const writers: Array<Writer> = [
        { job: copy, volume: "data" },
        { job: mirror, volume: "data" },
        { job: logger, volume: "logs" }
      ]
      yield* TestClock.adjust("25 millis")
      yield* jobs.pause(copy) // its user's own pause, before the snapshot

      const image = yield* whileVolumeQuiet(
        writers,
        "data",
        Effect.gen(function*() {
          assert.strictEqual(copy.status, "paused")
          assert.strictEqual(mirror.status, "standby") // a READY job parks in STANDBY
          assert.deepStrictEqual(mirror.pauseHolds, ["snapshot of data"])
          const before = { copy: copy.progress.current, logger: logger.progress.current }
          yield* TestClock.adjust("100 millis") // "data" stands still, "logs" does not
          assert.strictEqual(copy.progress.current, before.copy)
          assert.strictEqual(logger.progress.current, before.logger + 10)

          yield* jobs.resume(copy) // lifts the user's pause; the hold stays
          assert.isFalse(copy.userPaused)
          assert.strictEqual(copy.status, "paused")
          // "mirror" is held, but its user never paused it: there is nothing to resume.
          const refused = yield* Effect.flip(jobs.resume(mirror))
          assert.strictEqual(refused._tag, "JobNotPaused")
          yield* jobs.pause(mirror) // a user's pause, taken during the snapshot
          return `data: copy at ${copy.progress.current}, mirror at ${mirror.progress.current}`
        })
      )
      assert.strictEqual(image, "data: copy at 2, mirror at 1")

      // The scope has closed: the holds are gone. "copy" goes on; "mirror" stays paused by its user.
      assert.deepStrictEqual(copy.pauseHolds, [])
      yield* jobs.awaitStatus(copy, "running")
      assert.strictEqual(mirror.status, "standby")
      yield* jobs.resume(mirror)
      yield* jobs.awaitStatus(mirror, "ready")
      // One stay at a pause point each, however the pauses overlapped.
      assert.deepStrictEqual(log.of("copy"), ["make", "run", "pause", "userResume", "resume"])
      assert.deepStrictEqual(log.of("mirror"), ["make", "run", "pause", "userResume", "resume"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("does not wait for writers that are not writing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const log = yield* Testing.CallbackLog
      const idle = yield* jobs.create({ type: "test", id: "idle", params: {} }) // not started
      const txn = yield* JobTxn.make
      const done = yield* jobs.run({ type: "test", id: "done", txn, params: {} })
      yield* jobs.run({ type: "test", id: "partner", txn, params: { sleepMillis: 1000 } })
      yield* jobs.awaitStatus(done, "waiting") // its `run` is over: it waits for its partner
      const writers: Array<Writer> = [{ job: idle, volume: "data" }, { job: done, volume: "data" }]

      const snapshot = yield* Effect.forkChild(
        whileVolumeQuiet(
          writers,
          "data",
          Effect.gen(function*() {
            yield* jobs.start(idle) // started while held: it parks before its first step
            assert.strictEqual(idle.status, "paused")
            assert.deepStrictEqual(log.of("idle"), ["make", "pause"])
          })
        ),
        { startImmediately: true }
      )
      assert.isDefined(snapshot.pollUnsafe()) // over, and no time has passed
      yield* Fiber.join(snapshot)
      // Released, "idle" leaves its pause point and only then runs.
      assert.deepStrictEqual(yield* jobs.awaitOutcome(idle), { _tag: "Succeeded" })
      assert.deepStrictEqual(log.of("idle").slice(0, 4), ["make", "pause", "resume", "run"])
    }).pipe(Effect.provide(Testing.layer)))
})
// #endregion doc
