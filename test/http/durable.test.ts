/**
 * The HTTP API on a durable engine: a POST's reply comes once what it did is
 * in the store, so a client never hears of a job the store could lose.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Ref } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import * as JobDriver from "../../src/JobDriver.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as JobStore from "../../src/JobStore.ts"
import * as Testing from "../../src/testing.ts"
import { failingStore } from "../helpers/failingStore.ts"
import { slowStore } from "../helpers/slowStore.ts"
import { eventOf, events, jobEvents, post, serve } from "./harness.ts"

describe("HTTP API on a durable store", () => {
  it.live("replies to a POST once the job it created is stored", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-http-durable-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const storeLayer = JobStore.sqlite({ filename: join(dir, "jobs.db") })
      const slow = slowStore(storeLayer)
      const engine = JobDriver.layer(Testing.TestDriver).pipe(
        Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable().pipe(Layer.provide(slow)), Testing.CallbackLog.layer)),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const store = yield* JobStore.JobStore
        yield* jobs.recover
        const server = yield* serve()
        for (let i = 0; i < 3; i++) {
          const created = yield* post(server, "/api/jobs", { type: "test", id: `h${i}`, params: { iterations: 1000, sleepMillis: 1000 } })
          assert.strictEqual(created.status, 201, created.text)
          // Read straight from the store, which the reply waited for: the job's events are there.
          const stored = yield* store.readEvents(0, 10_000)
          assert.isTrue(
            stored.some((event) => event._tag === "StatusChange" && event.id === `h${i}` && event.status === "running"),
            `h${i} was not stored when the reply came`
          )
        }
      }).pipe(Effect.provide(Layer.merge(engine, storeLayer)))
    }))
  it.live("an event stream is told when the store cannot be written (at its start, during an outage) and when it can again, with no id", () =>
    Effect.gen(function*() {
      const failing = yield* Ref.make(false)
      const engine = JobDriver.layer(Testing.TestDriver).pipe(
        Layer.provideMerge(
          Layer.mergeAll(Jobs.layerDurable().pipe(Layer.provide(failingStore(JobStore.memory, failing))), Testing.CallbackLog.layer)
        ),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        const server = yield* serve()
        const stream = yield* events(server)
        yield* Ref.set(failing, true)
        const job = yield* jobs.run({ type: "test", id: "j1", params: { iterations: 1 } })
        const upToFailure = yield* stream.takeUntil((m) => m._tag === "Event" && m.event === "StoreUnwritable")
        const unwritable = upToFailure.at(-1)!
        assert.isTrue(unwritable._tag === "Event" && unwritable.id === undefined)
        assert.include(eventOf(unwritable).data.error, "no space left on device")
        // Nothing of the job was sent while its events could not be stored.
        assert.deepStrictEqual(jobEvents(upToFailure), [])
        // A stream opened during the outage is told of it first.
        const late = yield* events(server)
        const lateFirst = (yield* late.takeUntil((m) => m._tag === "Event")).at(-1)!
        assert.strictEqual(eventOf(lateFirst).event, "StoreUnwritable")
        yield* Ref.set(failing, false)
        yield* jobs.awaitOutcome(job)
        const rest = yield* stream.takeUntil((m) => m._tag === "Event" && m.event === "StatusChange" && eventOf(m).data.status === "null")
        const writable = rest.find((m) => m._tag === "Event" && m.event === "StoreWritable")
        assert.isTrue(writable !== undefined && writable._tag === "Event" && writable.id === undefined)
        assert.isAtLeast(eventOf(writable!).data.unwritableMillis, 0)
        yield* late.takeUntil((m) => m._tag === "Event" && m.event === "StoreWritable")
        // The job's events came once stored, numbered from 1 with no gap.
        assert.deepStrictEqual(jobEvents(rest).map((e) => e.id), jobEvents(rest).map((_, i) => i + 1))
      }).pipe(Effect.provide(engine))
    }))
})
