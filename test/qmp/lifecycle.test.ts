/**
 * The server as a process (what `effect-jobs serve` runs): SIGTERM, SIGINT and
 * `quit` each send SHUTDOWN to the clients, close them, remove the socket
 * file, force-cancel every job, and exit with code 0.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, FileSystem } from "effect"
import { NodeServices } from "@effect/platform-node"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import * as Qmp from "../../src/Qmp.ts"

const fixture = fileURLToPath(new URL("./fixtures/serve.ts", import.meta.url))

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
    const c = yield* Qmp.connect({ path: socket })
    // At 1 byte/s it would run for days.
    yield* c.execute("backup", { "job-id": "slow", source: "s", target: "t", speed: 1 })
    yield* c.awaitEvent((e) => e.data?.status === "running")
    if (stop === "quit") assert.deepStrictEqual(yield* c.execute("quit"), {})
    else server.child.kill(stop)
    const shutdown = yield* c.awaitEvent((e) => e.event === "SHUTDOWN")
    assert.deepStrictEqual(shutdown.data, { guest: false, reason: stop === "quit" ? "host-qmp-quit" : "host-signal" })
    // Real time here: event timestamps are the wall clock.
    assert.approximately(shutdown.timestamp.seconds + shutdown.timestamp.microseconds / 1e6, Date.now() / 1000, 60)
    assert.isTrue(Number.isInteger(shutdown.timestamp.microseconds) && shutdown.timestamp.microseconds < 1e6)
    yield* c.closed
    // The client answers a command on the closed connection with an error, not a hang.
    const late = yield* Effect.exit(c.execute("query-jobs"))
    assert.isTrue(Exit.isFailure(late))
    assert.strictEqual(yield* server.exited, 0)
    assert.isFalse(fs.existsSync(socket))
    assert.strictEqual(server.stdout(), "listening\nslow null Operation canceled\n")
  }).pipe(Effect.scoped, Effect.provide(NodeServices.layer))

describe("the server process", () => {
  it.live("SIGTERM: SHUTDOWN, jobs force-cancelled, socket removed, exit code 0", () => scenario("SIGTERM"))
  it.live("SIGINT: the same", () => scenario("SIGINT"))
  it.live("quit: the same", () => scenario("quit"))
})
