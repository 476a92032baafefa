/**
 * Finalization over QMP with the real backup driver, as QEMU shows it: while a
 * backup's `prepare` (its fsyncs) runs, `query-block-jobs` reports it busy, and
 * a `job-cancel` or `job-dismiss` sent meanwhile is answered only once
 * finalization has ended, with QEMU's answer for the state it left (`Job not
 * found` after auto-dismiss) — the copy is committed, never removed. The
 * directory fsync of `prepare` is held on a gate so the test can act in the
 * middle of it.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, FileSystem, Layer, Path } from "effect"
import * as fs from "node:fs"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"
import { nodeFsWith } from "../drivers/helpers.ts"

/** Node's file system, except that an fsync of `directory` (opened for reading) waits for `gate`, after `entered`. */
const gatedDirectorySync = (
  directory: () => string | undefined,
  entered: Deferred.Deferred<void>,
  gate: Deferred.Deferred<void>
) =>
  nodeFsWith((real) => ({
    open: (path, options) =>
      Effect.map(real.open(path, options), (file) =>
        path === directory() && options?.flag === "r"
          ? { ...file, sync: Effect.andThen(Deferred.succeed(entered, undefined), Effect.andThen(Deferred.await(gate), file.sync)) }
          : file)
  }))

describe("QMP: finalization is atomic to observers (file drivers)", () => {
  it.live("job-cancel and job-dismiss sent during a backup's prepare wait, then get 'Job not found'; the copy is committed", () => {
    let watched: string | undefined
    const entered = Deferred.makeUnsafe<void>()
    const gate = Deferred.makeUnsafe<void>()
    const services = FileDrivers.layer.pipe(
      Layer.provideMerge(Jobs.layer),
      Layer.provideMerge(Layer.merge(gatedDirectorySync(() => watched, entered, gate), Path.layer)),
      Layer.provideMerge(NodeServices.layer)
    )
    return Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-final-" })
      const data = Buffer.alloc(1_000_000, 5)
      fs.mkdirSync(`${dir}/out`)
      fs.writeFileSync(`${dir}/src`, data)
      yield* Qmp.make({ socket: `${dir}/qmp.sock` })
      const actor = yield* Qmp.connect({ path: `${dir}/qmp.sock` })
      const watcher = yield* Qmp.connect({ path: `${dir}/qmp.sock` })
      watched = `${dir}/out`
      yield* actor.execute("backup", { "job-id": "b", source: `${dir}/src`, target: `${dir}/out/dst` })
      yield* Deferred.await(entered)

      // Queries answer at once, mid-finalization.
      const [job] = (yield* watcher.execute("query-block-jobs", {})) as ReadonlyArray<Record<string, unknown>>
      assert.strictEqual(job?.device, "b")
      assert.strictEqual(job?.status, "pending")
      assert.strictEqual(job?.busy, true)
      const listed = (yield* watcher.execute("query-jobs", {})) as ReadonlyArray<Record<string, unknown>>
      assert.deepStrictEqual(listed.map((j) => [j.id, j.status]), [["b", "pending"]])

      // Verbs wait for the end of finalization.
      const cancel = yield* Effect.forkChild(Effect.flip(actor.execute("job-cancel", { id: "b" })), { startImmediately: true })
      const dismiss = yield* Effect.forkChild(Effect.flip(watcher.execute("job-dismiss", { id: "b" })), { startImmediately: true })
      const later = yield* Effect.forkChild(watcher.execute("query-jobs", {}), { startImmediately: true })
      yield* watcher.awaitEvent(() => false).pipe(Effect.timeoutOption("200 millis"))
      assert.isUndefined(cancel.pollUnsafe(), "job-cancel is answered only after finalization")
      assert.isUndefined(dismiss.pollUnsafe(), "job-dismiss is answered only after finalization")
      assert.isUndefined(later.pollUnsafe(), "commands after it, from the same client, wait their turn")

      yield* Deferred.succeed(gate, undefined)
      const cancelled = yield* Fiber.join(cancel)
      const dismissed = yield* Fiber.join(dismiss)
      assert.strictEqual(cancelled._tag === "QmpCommandError" ? cancelled.desc : cancelled.message, "Job not found")
      assert.strictEqual(dismissed._tag === "QmpCommandError" ? dismissed.desc : dismissed.message, "Job not found")
      assert.deepStrictEqual(yield* Fiber.join(later), [])
      assert.deepStrictEqual(fs.readFileSync(`${dir}/out/dst`), data)
      assert.deepStrictEqual(fs.readdirSync(`${dir}/out`), ["dst"])
      const statuses = actor.events.filter((e) => e.data?.id === "b").map((e) => e.data?.status)
      assert.deepStrictEqual(statuses, ["created", "running", "waiting", "pending", "concluded", "null"])
      assert.isTrue(actor.events.some((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data?.device === "b"))
    }).pipe(Effect.scoped, Effect.provide(services))
  })
})
