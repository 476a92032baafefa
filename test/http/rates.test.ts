/**
 * The rate and ETA of each job: measured from samples of its progress over
 * the last few seconds (so a job that stops shows 0, not its average), the
 * ETA the work left at that rate, `null` while either is unknown. Checked on
 * the meter alone, and through `GET /api/jobs/:id` under TestClock with a
 * driver whose progress the test moves itself.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import * as JobDriver from "../../src/JobDriver.ts"
import type { JobHandle } from "../../src/JobHandle.ts"
import * as Jobs from "../../src/Jobs.ts"
import { eta } from "../../src/http/rates.ts"
import { RateMeter } from "../../src/RateMeter.ts"
import { post, request, serve } from "./harness.ts"

describe("RateMeter", () => {
  it("no rate until two samples 200 ms apart; then the progress per second between the window's ends", () => {
    const meter = new RateMeter(3000)
    assert.isUndefined(meter.rate)
    meter.add(0, 0)
    assert.isUndefined(meter.rate)
    meter.add(100, 50)
    assert.isUndefined(meter.rate)
    meter.add(1000, 500)
    assert.strictEqual(meter.rate, 500)
    // The window moves on: the old samples go, a stop shows as 0.
    meter.add(2000, 500)
    meter.add(4000, 500)
    meter.add(5000, 500)
    assert.strictEqual(meter.rate, 0)
  })

  it("a counter that goes back starts a new measurement; two samples of one instant, the later stands", () => {
    const meter = new RateMeter(3000)
    meter.add(0, 0)
    meter.add(1000, 1000)
    meter.add(2000, 10)
    assert.isUndefined(meter.rate)
    meter.add(3000, 110)
    assert.strictEqual(meter.rate, 100)
    meter.add(3000, 210)
    assert.strictEqual(meter.rate, 200)
  })

  it("eta: the work left at the rate, undefined without a positive rate", () => {
    assert.strictEqual(eta(100, 1000, 100), 9)
    assert.strictEqual(eta(1000, 1000, 100), 0)
    assert.isUndefined(eta(0, 1000, 0))
    assert.isUndefined(eta(0, 1000, undefined))
  })
})

/** Jobs whose progress the test moves: each parks until cancelled, its handle kept by id. */
const handles = new Map<string, JobHandle>()
const ManualDriver = JobDriver.make({
  type: "manual",
  params: Schema.Struct({ total: Schema.Number }),
  make: (params, job) =>
    Effect.sync(() => {
      handles.set(job.id!, job)
      return {
        run: Effect.gen(function*() {
          yield* job.setRemaining(params.total)
          while (!(yield* job.cancelRequested)) yield* job.yield
        })
      }
    })
})

const manualLayer = JobDriver.layer(ManualDriver).pipe(Layer.provideMerge(Jobs.layer))

describe("rate and eta in GET /api/jobs", () => {
  it.effect("sampled every 250 ms of the engine's clock, over the last 3 s", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const created = yield* post(server, "/api/jobs", { type: "manual", id: "m", params: { total: 1000 } })
      assert.strictEqual(created.status, 201)
      assert.strictEqual(created.json.rate, null)
      assert.strictEqual(created.json.eta, null)
      yield* TestClock.adjust("250 millis") // the first sample: 0 done
      const job = handles.get("m")!
      yield* job.update(100)
      yield* TestClock.adjust("1 second") // four more: 100 done
      const moving = (yield* request(server, "/api/jobs/m")).json
      assert.strictEqual(moving.currentProgress, 100)
      assert.strictEqual(moving.rate, 100)
      assert.strictEqual(moving.eta, 9)
      const listed = (yield* request(server, "/api/jobs")).json.jobs[0]
      assert.deepStrictEqual([listed.rate, listed.eta], [100, 9])
      // Nothing more for 3 s: the rate is what the job does now.
      yield* TestClock.adjust("3 seconds")
      const stopped = (yield* request(server, "/api/jobs/m")).json
      assert.strictEqual(stopped.rate, 0)
      assert.strictEqual(stopped.eta, null)
    }).pipe(Effect.scoped, Effect.provide(manualLayer)))
})
