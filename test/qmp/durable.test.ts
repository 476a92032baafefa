/**
 * The QMP server on a durable engine: a reply is sent once what came before it
 * is in the store, so a client is never told of a job the store could lose.
 */
import { NodeServices } from "@effect/platform-node"
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
import { startServer } from "./harness.ts"

describe("QMP on a durable store", () => {
  it.live("a reply waits until the jobs it shows are stored", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-qmp-durable-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const storeLayer = JobStore.sqlite({ filename: join(dir, "jobs.db") })
      const slow = slowStore(storeLayer)
      const engine = JobDriver.layer(Testing.TestDriver).pipe(
        Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable().pipe(Layer.provide(slow)), Testing.CallbackLog.layer)),
        Layer.provideMerge(NodeServices.layer),
        Layer.orDie
      )
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const store = yield* JobStore.JobStore
        yield* jobs.recover
        const harness = yield* startServer()
        const client = yield* harness.client()
        for (let i = 0; i < 3; i++) {
          yield* jobs.run({ type: "test", id: `q${i}`, params: { iterations: 1000, sleepMillis: 1000 } })
          const listed = (yield* client.execute("query-jobs")) as ReadonlyArray<{ readonly id: string }>
          assert.isTrue(listed.some((job) => job.id === `q${i}`))
          const stored = yield* store.readEvents(0, 10_000)
          assert.isTrue(
            stored.some((event) => event._tag === "StatusChange" && event.id === `q${i}` && event.status === "running"),
            `q${i} was not stored when the reply came`
          )
        }
      }).pipe(Effect.provide(Layer.merge(engine, storeLayer)))
    }))
})
