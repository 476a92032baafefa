/**
 * A client that writes as QEMU's own Python library does — each message with
 * no newline after it — driving the real backup driver over a real Unix
 * socket: a grouped transaction with manual finalize and dismiss, each
 * command's events arriving before its reply (QEMU emits them while the
 * command runs), finalization newest member first.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer } from "effect"
import * as fs from "node:fs"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"
import { type WireMessage, wireClient } from "./harness.ts"

const services = FileDrivers.layer.pipe(Layer.provideMerge(Jobs.layer), Layer.provideMerge(NodeServices.layer))

/** `job:status` for a status change, `job:EVENT` for a block-job event. */
const short = (m: WireMessage): string | undefined => {
  if (m.event === undefined) return undefined
  const job = m.data?.id ?? m.data?.device
  return m.event === "JOB_STATUS_CHANGE" ? `${job}:${m.data?.status}` : `${job}:${m.event}`
}

/** The events between two indices of the message list. */
const eventsBetween = (messages: ReadonlyArray<WireMessage>, from: number, to: number) =>
  messages.slice(from, to).flatMap((m) => {
    const s = short(m)
    return s === undefined ? [] : [s]
  })

describe("QMP with a client that sends no newlines (as QEMU's qemu.qmp does)", () => {
  it.effect("a grouped transaction of backups: manual finalize and dismiss, events before every reply", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-qemu-client-" })
      fs.writeFileSync(`${dir}/a`, Buffer.alloc(700_000, 1))
      fs.writeFileSync(`${dir}/b`, Buffer.alloc(300_000, 2))
      yield* Qmp.make({ socket: `${dir}/qmp.sock` })
      const c = yield* wireClient({ path: `${dir}/qmp.sock` }, { newline: false })

      const data = (id: string) => ({
        "job-id": id,
        source: `${dir}/${id}`,
        target: `${dir}/${id}.bak`,
        "auto-finalize": false,
        "auto-dismiss": false
      })
      const created = yield* c.execute("transaction", {
        actions: [{ type: "backup", data: data("a") }, { type: "backup", data: data("b") }],
        properties: { "completion-mode": "grouped" }
      })
      assert.deepStrictEqual(c.messages[created]!.return, {})
      const beforeReply = eventsBetween(c.messages, 0, created)
      for (const e of ["a:created", "b:created", "a:running", "b:running"]) assert.include(beforeReply, e)

      // Both wait in PENDING for job-finalize; they moved there together, newest first.
      const pendingA = yield* c.awaitMessage((m) => short(m) === "a:BLOCK_JOB_PENDING")
      const firstPending = c.messages.findIndex((m) => short(m) === "b:pending")
      assert.deepStrictEqual(eventsBetween(c.messages, firstPending, pendingA + 1), [
        "b:pending",
        "b:BLOCK_JOB_PENDING",
        "a:pending",
        "a:BLOCK_JOB_PENDING"
      ])

      const finalized = yield* c.execute("job-finalize", { id: "a" })
      assert.deepStrictEqual(c.messages[finalized]!.return, {})
      // Finalization runs under QEMU's lock, newest member first, all of it before the reply.
      assert.deepStrictEqual(eventsBetween(c.messages, pendingA + 1, finalized), [
        "b:BLOCK_JOB_COMPLETED",
        "b:concluded",
        "a:BLOCK_JOB_COMPLETED",
        "a:concluded"
      ])
      assert.deepStrictEqual(fs.readFileSync(`${dir}/a.bak`), fs.readFileSync(`${dir}/a`))
      assert.deepStrictEqual(fs.readFileSync(`${dir}/b.bak`), fs.readFileSync(`${dir}/b`))

      const dismissedB = yield* c.execute("job-dismiss", { id: "b" })
      assert.deepStrictEqual(eventsBetween(c.messages, finalized + 1, dismissedB), ["b:null"])
      const dismissedA = yield* c.execute("job-dismiss", { id: "a" })
      assert.deepStrictEqual(eventsBetween(c.messages, dismissedB + 1, dismissedA), ["a:null"])
      const listed = yield* c.execute("query-jobs")
      assert.deepStrictEqual(c.messages[listed]!.return, [])
    }).pipe(Effect.scoped, Effect.provide(services)))
})
