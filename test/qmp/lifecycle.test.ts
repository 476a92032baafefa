/**
 * Shutting down with jobs running. In-process, with the real file drivers:
 * `quit` sends SHUTDOWN to every client, then every job's cancellation
 * (aborting, BLOCK_JOB_CANCELLED, concluded, null — a job that dismisses by
 * hand is dismissed), then the reply, then closes; no target and no temporary
 * copy is left. As a process (what `effect-jobs serve` runs): SIGTERM, SIGINT
 * and `quit` each send SHUTDOWN and the jobs' cancellation to the clients,
 * close them, remove the socket file and exit with code 0.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, FileSystem, Layer } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"
import { type WireClient, type WireMessage, wireClient } from "./harness.ts"

const fixture = fileURLToPath(new URL("./fixtures/serve.ts", import.meta.url))

/** An event as `<job>:<status>` or `<job>:<EVENT>`, SHUTDOWN as itself, a reply as `reply`. */
const label = (m: WireMessage): string => {
  if (m.event === undefined) return "reply"
  if (m.event === "SHUTDOWN") return "SHUTDOWN"
  const id = String(m.data?.id ?? m.data?.device)
  return m.event === "JOB_STATUS_CHANGE" ? `${id}:${m.data?.status}` : `${id}:${m.event.replace("BLOCK_JOB_", "")}`
}

const labelsFrom = (c: WireClient, from: number) => c.messages.slice(from).map(label)

const cancelled = (id: string) => [`${id}:aborting`, `${id}:CANCELLED`, `${id}:concluded`, `${id}:null`]

/** Waits (without polling) until `dir` holds a file whose name matches `pattern`. */
const awaitFile = (dir: string, pattern: RegExp) =>
  Effect.callback<void>((resume) => {
    const present = () => fs.readdirSync(dir).some((name) => pattern.test(name))
    const watcher = fs.watch(dir, () => {
      if (present()) {
        watcher.close()
        resume(Effect.void)
      }
    })
    if (present()) {
      watcher.close()
      resume(Effect.void)
    }
    return Effect.sync(() => watcher.close())
  })

const fileServices = FileDrivers.layer.pipe(Layer.provideMerge(Jobs.layer), Layer.provideMerge(NodeServices.layer))

describe("quit with jobs running", () => {
  it.effect("SHUTDOWN, then each job's cancellation, to every client; then the reply; no target, no temporary copy", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-quit-" })
      fs.writeFileSync(`${dir}/a`, Buffer.alloc(3_000_000, 7))
      fs.writeFileSync(`${dir}/b`, Buffer.alloc(2_000_000, 9))
      const server = yield* Qmp.make({ socket: `${dir}/qmp.sock` })
      const sender = yield* wireClient({ path: `${dir}/qmp.sock` })
      const watcher = yield* wireClient({ path: `${dir}/qmp.sock` })

      // Slow enough (and on the test clock) never to finish: both are copying when quit arrives.
      const speed = 65_536
      yield* sender.execute("backup", { "job-id": "run", source: `${dir}/a`, target: `${dir}/a.bak`, speed })
      yield* sender.execute("backup", { "job-id": "keep", source: `${dir}/b`, target: `${dir}/b.bak`, speed, "auto-dismiss": false })
      yield* awaitFile(dir, /^\.a\.bak\..*\.tmp$/)
      yield* awaitFile(dir, /^\.b\.bak\..*\.tmp$/)
      for (const c of [sender, watcher]) {
        for (const id of ["run", "keep"]) yield* c.awaitMessage((m) => label(m) === `${id}:running`)
      }

      const senderFrom = sender.messages.length
      const watcherFrom = watcher.messages.length
      const reply = yield* sender.execute("quit")
      assert.deepStrictEqual(sender.messages[reply]!.return, {})
      yield* sender.closed
      yield* watcher.closed
      const sequence = ["SHUTDOWN", ...cancelled("run"), ...cancelled("keep")]
      assert.deepStrictEqual(labelsFrom(sender, senderFrom), [...sequence, "reply"])
      assert.deepStrictEqual(labelsFrom(watcher, watcherFrom), sequence)
      assert.deepStrictEqual(sender.messages[senderFrom]!.data, { guest: false, reason: "host-qmp-quit" })
      assert.strictEqual(yield* server.awaitShutdown, "quit")
      // The copies were removed by `abort`; no target was made; the socket file is gone.
      assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["a", "b"])
      assert.deepStrictEqual(yield* (yield* Jobs.Jobs).list, [])
    }).pipe(Effect.scoped, Effect.provide(fileServices)))
})

interface Server {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly exited: Effect.Effect<number | null>
}

/** Starts the fixture and waits until it listens. */
const spawnServer = (socket: string) =>
  Effect.acquireRelease(
    Effect.callback<Server, Error>((resume) => {
      const child = spawn(process.execPath, [fixture, socket], { stdio: ["ignore", "pipe", "pipe"] })
      let out = ""
      let err = ""
      const exited = Deferred.makeUnsafe<number | null>()
      child.on("exit", (code) => Deferred.doneUnsafe(exited, Exit.succeed(code)))
      child.stderr!.on("data", (b: Buffer) => {
        err += b.toString()
      })
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString()
        if (out.startsWith("listening\n")) resume(Effect.succeed({ child, stdout: () => out, exited: Deferred.await(exited) }))
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`server exited (${code}) before listening: ${err}`))))
    }),
    (server) => Effect.sync(() => server.child.kill("SIGKILL"))
  )

const scenario = (stop: "SIGTERM" | "SIGINT" | "quit") =>
  Effect.gen(function*() {
    const fileSystem = yield* FileSystem.FileSystem
    const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-life-" })
    const socket = `${dir}/effect-jobs.sock`
    const server = yield* spawnServer(socket)
    const c = yield* wireClient({ path: socket })
    const other = yield* wireClient({ path: socket })
    // At 1 byte/s it would run for days.
    yield* c.execute("backup", { "job-id": "slow", source: "s", target: "t", speed: 1 })
    for (const client of [c, other]) yield* client.awaitMessage((m) => label(m) === "slow:running")
    const from = c.messages.length
    const otherFrom = other.messages.length
    if (stop === "quit") {
      const reply = yield* c.execute("quit")
      assert.deepStrictEqual(c.messages[reply]!.return, {})
    } else server.child.kill(stop)
    yield* c.closed
    yield* other.closed
    const sequence = ["SHUTDOWN", ...cancelled("slow")]
    assert.deepStrictEqual(labelsFrom(c, from), stop === "quit" ? [...sequence, "reply"] : sequence)
    assert.deepStrictEqual(labelsFrom(other, otherFrom), sequence)
    const shutdown = c.messages[from]!
    assert.deepStrictEqual(shutdown.data, { guest: false, reason: stop === "quit" ? "host-qmp-quit" : "host-signal" })
    // Real time here: event timestamps are the wall clock.
    const timestamp = shutdown.timestamp as { seconds: number; microseconds: number }
    assert.approximately(timestamp.seconds + timestamp.microseconds / 1e6, Date.now() / 1000, 60)
    assert.isTrue(Number.isInteger(timestamp.microseconds) && timestamp.microseconds < 1e6)
    // A command on the closed connection fails, it does not hang.
    const late = yield* Effect.exit(c.execute("query-jobs"))
    assert.isTrue(Exit.isFailure(late))
    assert.strictEqual(yield* server.exited, 0)
    assert.isFalse(fs.existsSync(socket))
    assert.strictEqual(server.stdout(), "listening\nslow null Operation canceled\n")
  }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

describe("the server process", () => {
  it.live("SIGTERM: SHUTDOWN and the jobs' cancellation to every client, socket removed, exit code 0", () => scenario("SIGTERM"))
  it.live("SIGINT: the same", () => scenario("SIGINT"))
  it.live("quit: the same, and the reply after them", () => scenario("quit"))
})
