/**
 * QEMU's rate limiter on the Effect Clock: the slice arithmetic, the throttle
 * loop in a job, and the exact schedule of a rate-limited backup under
 * `TestClock` — including `setSpeed` in the middle of the job.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { join } from "node:path"
import * as JobDriver from "../src/JobDriver.ts"
import { Jobs } from "../src/Jobs.ts"
import * as JobsModule from "../src/Jobs.ts"
import * as RateLimit from "../src/RateLimit.ts"
import { bytes, chunk, hashBytes, hashOf, layerOver, syncFs, tempDir, writeFile } from "./drivers/helpers.ts"

const ms = 1_000_000 // nanoseconds

describe("RateLimit arithmetic (QEMU's ratelimit.h)", () => {
  it("the quota of a 100 ms slice: speed / 10, at least 1, whole units; 0 is unlimited", () => {
    assert.strictEqual(RateLimit.quota(0), 0)
    assert.strictEqual(RateLimit.quota(1), 1)
    assert.strictEqual(RateLimit.quota(15), 1)
    assert.strictEqual(RateLimit.quota(1000), 100)
    assert.strictEqual(RateLimit.quota(1_048_576), 104_857)
    assert.strictEqual(RateLimit.quota(50 * 1_048_576), 5_242_880)
  })

  it("unlimited: never a delay, and the accounting is left alone", () => {
    const [delay, state] = RateLimit.calculateDelay(RateLimit.initial, 0, 5 * ms, 1e12)
    assert.strictEqual(delay, 0)
    assert.strictEqual(state, RateLimit.initial)
  })

  it("below the quota no delay; reaching it stretches the slice in proportion (overshoot paid back)", () => {
    let [delay, state] = RateLimit.calculateDelay(RateLimit.initial, 1000, 0, 40) // quota 100
    assert.deepStrictEqual([delay, state], [0, { sliceStart: 0, sliceEnd: 100 * ms, dispatched: 40 }])
    ;[delay, state] = RateLimit.calculateDelay(state, 1000, 10 * ms, 59)
    assert.deepStrictEqual([delay, state.dispatched], [0, 99])
    ;[delay, state] = RateLimit.calculateDelay(state, 1000, 20 * ms, 151) // 250 units: 2.5 slices
    assert.deepStrictEqual([delay, state], [230 * ms, { sliceStart: 0, sliceEnd: 250 * ms, dispatched: 250 }])
  })

  it("a new slice starts only once the clock is strictly past the slice's end", () => {
    const stretched: RateLimit.State = { sliceStart: 0, sliceEnd: 250 * ms, dispatched: 250 }
    // At the end exactly: still the same slice, and the quota is still used up.
    assert.deepStrictEqual(RateLimit.calculateDelay(stretched, 1000, 250 * ms, 0), [0, stretched])
    assert.deepStrictEqual(RateLimit.calculateDelay(stretched, 1000, 250 * ms, 10), [10 * ms, { ...stretched, sliceEnd: 260 * ms, dispatched: 260 }])
    // One nanosecond later: a fresh slice.
    assert.deepStrictEqual(RateLimit.calculateDelay(stretched, 1000, 250 * ms + 1, 10), [
      0,
      { sliceStart: 250 * ms + 1, sliceEnd: 350 * ms + 1, dispatched: 10 }
    ])
  })

  it("a speed change re-prices the current slice at the next computation", () => {
    const state: RateLimit.State = { sliceStart: 0, sliceEnd: 300 * ms, dispatched: 300 }
    assert.deepStrictEqual(RateLimit.calculateDelay(state, 500, 250 * ms, 0)[0], 350 * ms) // 300 units at 500/s: 600 ms
    assert.deepStrictEqual(RateLimit.calculateDelay(state, 2000, 250 * ms, 0)[0], 0) // at 2000/s they were due by 150 ms
  })
})

/** A job that processes `chunks` × `size` units with the limiter, logging the Clock time of each chunk. */
const PacedDriver = (times: Array<number>) =>
  JobDriver.make({
    type: "paced",
    params: Schema.Struct({ chunks: Schema.Int, size: Schema.Int }),
    make: (params, job) =>
      Effect.gen(function*() {
        const limiter = yield* RateLimit.make(job)
        return {
          run: Effect.gen(function*() {
            for (let i = 0; i < params.chunks; i++) {
              times.push(yield* Clock.currentTimeMillis)
              yield* job.update(params.size)
              yield* limiter.processed(params.size)
              yield* limiter.throttle
            }
          })
        }
      })
  })

describe("RateLimit.throttle in a job (TestClock)", () => {
  it.effect("chunks below the quota run at once until the slice is used up, then at the set pace", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.create({ type: "paced", id: "p", params: { chunks: 8, size: 40 } })
      yield* jobs.setSpeed(job, 1000) // quota 100 per 100 ms
      yield* jobs.start(job)
      yield* TestClock.adjust("1 second")
      // 40 + 40 < 100; the third chunk makes 120 (1.2 slices): wait until 120 ms, then 40 per 40 ms.
      assert.deepStrictEqual(times, [0, 0, 0, 120, 160, 200, 240, 280])
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
    }).pipe(Effect.provide(JobDriver.layer(PacedDriver(times)).pipe(Layer.provideMerge(JobsModule.layer))))
  })

  it.effect("a pause during a throttle sleep parks the job; after the resume the delay is computed again", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.create({ type: "paced", id: "p", params: { chunks: 3, size: 100 } })
      yield* jobs.setSpeed(job, 1000)
      yield* jobs.start(job)
      yield* TestClock.adjust("50 millis")
      yield* jobs.pause(job)
      yield* jobs.awaitStatus(job, "paused")
      yield* TestClock.adjust("1 second") // t = 1050: the slice ended long ago
      yield* jobs.resume(job)
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(times, [0, 1050, 1150])
    }).pipe(Effect.provide(JobDriver.layer(PacedDriver(times)).pipe(Layer.provideMerge(JobsModule.layer))))
  })
})

describe("setSpeed", () => {
  it.effect("a negative speed is refused after the job lookup and the verb check, and changes nothing", () => {
    const times: Array<number> = []
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      assert.strictEqual((yield* Effect.flip(jobs.setSpeed("nope", -1)))._tag, "JobNotFound")
      const job = yield* jobs.run({ type: "paced", id: "p", params: { chunks: 2, size: 100 }, manualDismiss: true })
      const refused = yield* Effect.flip(jobs.setSpeed(job, -1))
      assert.strictEqual(refused.message, "Parameter 'speed' expects a non-negative value")
      assert.strictEqual(job.speed, 0)
      yield* jobs.awaitStatus(job, "concluded")
      assert.strictEqual((yield* Effect.flip(jobs.setSpeed(job, -1)))._tag, "VerbNotAllowed")
    }).pipe(Effect.provide(JobDriver.layer(PacedDriver(times)).pipe(Layer.provideMerge(JobsModule.layer))))
  })
})

describe("a rate-limited backup (synchronous file system, TestClock)", () => {
  const speed = 10 * chunk // one chunk per 100 ms slice
  const size = 10 * chunk + 7

  const scenario = (change?: { readonly at: number; readonly speed: number }) => {
    const files = syncFs(/\.effect-jobs-\d+-[0-9a-z]+\.tmp$/)
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const dir = yield* tempDir
      const data = bytes(size)
      writeFile(join(dir, "src"), data)
      const job = yield* jobs.run({ type: "backup", id: "b", params: { source: join(dir, "src"), target: join(dir, "dst") }, speed })
      if (change !== undefined) {
        // From a fiber the TestClock wakes, so `adjust` also waits for what the speed change sets off.
        yield* Effect.forkChild(Effect.andThen(Effect.sleep(change.at), jobs.setSpeed(job, change.speed)))
      }
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(yield* jobs.awaitOutcome(job), { _tag: "Succeeded" })
      assert.strictEqual(hashOf(join(dir, "dst")), hashBytes(data))
      assert.deepStrictEqual(files.log.writes.map((w) => w.offset), Array.from({ length: 11 }, (_, i) => i * chunk))
      return files.log.writes.map((w) => w.at)
    }).pipe(Effect.scoped, Effect.provide(layerOver(files.layer)))
  }

  it.effect("the exact schedule: one chunk per slice at 10 chunks per second", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* scenario(), [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000])
    }))

  it.effect("setSpeed(0) mid-job wakes the sleeping job: the rest is copied at once", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* scenario({ at: 250, speed: 0 }), [0, 100, 200, 250, 250, 250, 250, 250, 250, 250, 250])
    }))

  it.effect("a higher speed mid-job wakes the job, which goes on at once at the new speed", () =>
    Effect.gen(function*() {
      // At 20 chunks/s the 3 chunks sent since t = 0 were due by 150 ms: no wait. That slice is over,
      // so a new one starts at 250 ms: two chunks fill its quota, then one chunk per 50 ms.
      assert.deepStrictEqual(yield* scenario({ at: 250, speed: 2 * speed }), [0, 100, 200, 250, 250, 350, 400, 450, 500, 550, 600])
    }))

  it.effect("a lower speed applies when the job next computes its delay: the current slice is re-priced", () =>
    Effect.gen(function*() {
      // At 5 chunks/s the 3 chunks sent since t = 0 take until 600 ms; then one chunk per 200 ms.
      assert.deepStrictEqual(yield* scenario({ at: 250, speed: speed / 2 }), [0, 100, 200, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000])
    }))
})
