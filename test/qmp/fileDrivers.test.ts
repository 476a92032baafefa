/**
 * The QMP commands with the real file drivers (src/drivers/): a grouped
 * transaction of two backups, the drivers' own refusals as QMP errors, and a
 * mirror taken to READY and completed — over a real Unix socket, on real files.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import * as fs from "node:fs"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"

const services = FileDrivers.layer.pipe(Layer.provideMerge(Jobs.layer), Layer.provideMerge(NodeServices.layer))

describe("QMP with the file drivers", () => {
  it.effect("backup transaction, refusals, mirror to READY and complete", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-files-" })
      fs.writeFileSync(`${dir}/a`, Buffer.alloc(3_000_000, 7))
      fs.writeFileSync(`${dir}/b`, Buffer.alloc(1_000_001, 9))
      yield* Qmp.make({ socket: `${dir}/qmp.sock` })
      const c = yield* Qmp.connect({ path: `${dir}/qmp.sock` })
      const statuses = (id: string) =>
        c.events.filter((e) => (e.data?.id ?? e.data?.device) === id).map((e) => String(e.data?.status ?? e.event))

      assert.deepStrictEqual(
        yield* c.execute("transaction", {
          actions: [
            { type: "backup", data: { "job-id": "a", source: `${dir}/a`, target: `${dir}/a.bak` } },
            { type: "backup", data: { "job-id": "b", source: `${dir}/b`, target: `${dir}/b.bak` } }
          ],
          properties: { "completion-mode": "grouped" }
        }),
        {}
      )
      for (const id of ["a", "b"]) {
        yield* c.awaitEvent((e) => e.data?.id === id && e.data?.status === "null")
        assert.deepStrictEqual(statuses(id), ["created", "running", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"])
        assert.isTrue(fs.readFileSync(`${dir}/${id}.bak`).equals(fs.readFileSync(`${dir}/${id}`)))
      }

      const refused = yield* Effect.flip(c.execute("backup", { "job-id": "x", source: `${dir}/a`, target: `${dir}/a.bak` }))
      assert.strictEqual(refused._tag === "QmpCommandError" ? refused.errorClass : refused._tag, "GenericError")
      assert.include(refused.message, `${dir}/a.bak`)

      yield* c.execute("mirror", { "job-id": "m", source: `${dir}/a`, target: `${dir}/m` })
      yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_READY")
      yield* c.execute("job-complete", { id: "m" })
      yield* c.awaitEvent((e) => e.data?.id === "m" && e.data?.status === "null")
      assert.deepStrictEqual(statuses("m"), ["created", "running", "ready", "BLOCK_JOB_READY", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"])
      assert.isTrue(fs.readFileSync(`${dir}/m`).equals(fs.readFileSync(`${dir}/a`)))
    }).pipe(Effect.scoped, Effect.provide(services)))
})
