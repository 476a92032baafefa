/**
 * The scenarios of docs/writing-a-driver.md, run against the driver in
 * examples/countdown.ts; and a check that the doc shows that driver and these
 * scenarios verbatim (up to the import paths), so the doc's code is the code
 * that compiles and passes here.
 */
import { expect } from "vitest"
import { asPublished, labelledSource, readRepoFile, shownBlock } from "../helpers/docBlock.ts"
// #region doc
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import { type Job, type JobEvent, Jobs, JobTxn } from "../../src/index.ts"
import * as Testing from "../../src/testing.ts"
import { Announcer, AnnounceError, layer as countdownLayer } from "../../examples/countdown.ts"

/** An announcer that keeps every line, and refuses the lines `refuse` picks. */
const recordingAnnouncer = (refuse: (line: string) => boolean = () => false) => {
  const lines: Array<string> = []
  const layer = Layer.succeed(
    Announcer,
    Announcer.of({
      announce: (line) =>
        refuse(line) ? Effect.fail(new AnnounceError({ line })) : Effect.sync(() => void lines.push(line))
    })
  )
  return { lines, layer }
}

/**
 * `Jobs` with the countdown driver and the test kit's scriptable `test` driver.
 * The countdown driver's requirements (`Jobs`, `Announcer`) are met here.
 */
const testLayer = (announcer: Layer.Layer<Announcer>) =>
  countdownLayer.pipe(Layer.provideMerge(Layer.mergeAll(Testing.layer, announcer)))

/**
 * Keeps the events of one job as short strings (status names, or the other
 * events' tags), read in a fiber of its own. Read the array after
 * `jobs.awaitDelivered`: then that fiber has caught up with the engine.
 */
const record = (events: Stream.Stream<JobEvent.JobEvent, unknown>, job: string) => {
  const seen: Array<string> = []
  const keep = (event: JobEvent.JobEvent) =>
    Effect.sync(() => {
      if (event.id === job) seen.push(event._tag === "StatusChange" ? event.status : event._tag)
    })
  return Effect.as(Effect.forkScoped(Stream.runForEach(events, keep), { startImmediately: true }), seen)
}

const progressOf = (job: Job.Job) => ({ ...job.progress })

describe("countdown driver", () => {
  it.effect("counts down, pauses, holds at T-0 and launches when completed", () => {
    const announcer = recordingAnnouncer()
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const seen = yield* record(yield* jobs.subscribe(), "apollo")
      const job = yield* jobs.run({ type: "countdown", id: "apollo", params: { label: "apollo", from: 3 } })

      yield* TestClock.adjust("1 second") // t = 1s: first tick over, T-2 announced
      assert.deepStrictEqual(progressOf(job), { current: 1, total: 3 })
      yield* TestClock.adjust("500 millis")
      yield* jobs.pause(job) // kicks the job out of its sleep into the pause point
      yield* jobs.awaitStatus(job, "paused")
      yield* TestClock.adjust("1 minute") // nothing moves while paused
      assert.deepStrictEqual(progressOf(job), { current: 1, total: 3 })

      yield* jobs.resume(job) // the tick is overdue: it ends at once, T-1 is announced
      yield* TestClock.adjust("1 second")
      yield* jobs.awaitStatus(job, "ready")
      assert.deepStrictEqual(progressOf(job), { current: 3, total: 3 })

      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.deepStrictEqual(announcer.lines, [
        "apollo: armed at T-3",
        "apollo: T-3",
        "apollo: T-2",
        "apollo: hold",
        "apollo: resume count",
        "apollo: T-1",
        "apollo: T-0, holding for launch",
        "apollo: go/no-go poll",
        "apollo: liftoff",
        "apollo: pad safed"
      ])
      yield* jobs.awaitDelivered // the reader has caught up: `seen` is complete
      assert.deepStrictEqual(seen, [
        "created",
        "running",
        "paused",
        "running",
        "ready",
        "Ready",
        "waiting",
        "pending",
        "Completed",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })

  it.effect("a soft cancel in READY stands down: the job succeeds without launching", () => {
    const announcer = recordingAnnouncer()
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const job = yield* jobs.run({
        type: "countdown",
        id: "gemini",
        params: { label: "gemini", from: 2, tickMillis: 100 }
      })
      yield* TestClock.adjust("200 millis")
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.cancel(job) // soft: the driver's `cancel` returns false in READY
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.deepStrictEqual(announcer.lines.slice(-3), [
        "gemini: go/no-go poll",
        "gemini: stood down",
        "gemini: pad safed"
      ])
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })

  it.effect("a cancel before READY is hard: run is interrupted, abort and clean run", () => {
    const announcer = recordingAnnouncer()
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const seen = yield* record(yield* jobs.subscribe(), "mercury")
      const job = yield* jobs.run({ type: "countdown", id: "mercury", params: { label: "mercury", from: 10 } })
      yield* TestClock.adjust("2500 millis")
      assert.deepStrictEqual(yield* jobs.cancelSync(job), { _tag: "Cancelled" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Cancelled" })
      assert.deepStrictEqual(announcer.lines.slice(-3), ["mercury: T-8", "mercury: scrubbed", "mercury: pad safed"])
      yield* jobs.awaitDelivered
      assert.deepStrictEqual(seen, [
        "created",
        "running",
        "aborting",
        "Cancelled",
        "concluded",
        "null"
      ])
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })

  it.effect("a failing prepare aborts the job with the prepare's error", () => {
    const announcer = recordingAnnouncer((line) => line.endsWith("go/no-go poll"))
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const job = yield* jobs.run({ type: "countdown", id: "vostok", params: { label: "vostok", from: 1 } })
      yield* TestClock.adjust("1 second")
      yield* jobs.complete(job)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), {
        _tag: "Failed",
        error: "announcer refused: vostok: go/no-go poll"
      })
      assert.deepStrictEqual(announcer.lines.slice(-2), ["vostok: scrubbed", "vostok: pad safed"])
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })

  it.effect("in a transaction, a failing test job scrubs the countdown", () => {
    const announcer = recordingAnnouncer()
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const txn = yield* JobTxn.make
      const countdown = yield* jobs.run({
        type: "countdown",
        id: "soyuz",
        txn,
        params: { label: "soyuz", from: 5 }
      })
      // The test kit's job: two 1-second steps, then `run` fails.
      yield* jobs.run({ type: "test", id: "booster", txn, params: { iterations: 2, sleepMillis: 1000, result: "fail" } })
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), {
        _tag: "Aborted",
        error: "test job: run failed"
      })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(countdown), { _tag: "Cancelled" })
      assert.deepStrictEqual(announcer.lines.slice(-2), ["soyuz: scrubbed", "soyuz: pad safed"])
      const log = yield* Testing.CallbackLog
      assert.deepStrictEqual(log.of("booster"), ["make", "run", "abort", "clean", "free"])
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })

  it.effect("setup and parameter failures are create's errors", () => {
    const announcer = recordingAnnouncer((line) => line === "vanguard: armed at T-3")
    return Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs
      const refused = yield* Effect.flip(
        jobs.create({ type: "countdown", id: "vanguard", params: { label: "vanguard", from: 3 } })
      )
      assert.strictEqual(refused._tag, "JobSetupFailed")
      assert.strictEqual(refused.message, "announcer refused: vanguard: armed at T-3")
      const invalid = yield* Effect.flip(
        jobs.create({ type: "countdown", id: "juno", params: { label: "juno", from: 0 } })
      )
      assert.strictEqual(invalid._tag, "InvalidParameters")
      assert.deepStrictEqual(yield* jobs.list, []) // neither job is left behind
    }).pipe(Effect.provide(testLayer(announcer.layer)))
  })
})
// #endregion doc

describe("docs/writing-a-driver.md", () => {
  const doc = () => readRepoFile("docs/writing-a-driver.md")

  it("shows examples/countdown.ts as it is", () => {
    const source = asPublished(readRepoFile("examples/countdown.ts"))
    expect(shownBlock(doc(), "examples/countdown.ts")).toBe(source)
  })

  it("shows the scenarios of this file as they are", () => {
    const label = "test/docs/writingADriver.test.ts#doc"
    expect(shownBlock(doc(), label)).toBe(labelledSource(label))
  })

  it("would notice a changed line", () => {
    const source = readRepoFile("examples/countdown.ts").replace("liftoff", "lift-off")
    expect(shownBlock(doc(), "examples/countdown.ts")).not.toBe(asPublished(source))
  })
})
