/**
 * The HTTP API on a durable engine: a POST's reply comes once what it did is
 * in the store, so a client never hears of a job the store could lose.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import * as JobDriver from "../../src/JobDriver.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as JobStore from "../../src/JobStore.ts"
import * as Testing from "../../src/testing.ts"
import { slowStore } from "../helpers/slowStore.ts"
import { post, serve } from "./harness.ts"

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
})
