/**
 * Transports and connections: the Unix socket file (mode 0600, stale socket
 * replaced, live one and non-sockets refused, removed on close), TCP binding
 * rules, the 1 MiB line cap, half-closed clients, clients that stop reading,
 * clients that vanish mid-command, clients that close or reset the connection
 * right after sending (every command they sent still runs), and HTTP requests
 * (closed at once, nothing in them runs) — none of which affects the jobs or
 * the other clients.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, FileSystem, Layer, Schema, Scope } from "effect"
import { TestClock } from "effect/testing"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as JobDriver from "../../src/JobDriver.ts"
import * as Qmp from "../../src/Qmp.ts"
import { isLoopback } from "../../src/qmp/transport.ts"
import * as Testing from "../../src/testing.ts"
import { captureLogs, layer, startServer, type Transport } from "./harness.ts"
import * as StandIn from "./standIn.ts"

const job = (id: string, extra: Record<string, unknown> = {}) => ({ "job-id": id, source: `src-${id}`, target: `dst-${id}`, ...extra })

const netOptions = (target: Qmp.Target): Net.NetConnectOpts =>
  "path" in target ? { path: target.path } : { host: target.host, port: target.port }

/** A plain Node socket, connected; destroyed with the scope. */
const rawConnect = (target: Qmp.Target) =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const socket = Net.connect(netOptions(target))
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (e) => resume(Effect.fail(e)))
    }),
    (socket) => Effect.sync(() => socket.destroy())
  )

/** Everything the socket receives until the server closes it. */
const readAll = (socket: Net.Socket) =>
  Effect.callback<string>((resume) => {
    const chunks: Array<Buffer> = []
    socket.on("data", (b: Buffer) => chunks.push(b))
    socket.once("end", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
    socket.once("error", () => resume(Effect.succeed(Buffer.concat(chunks).toString("utf8"))))
  })

/** The JSON lines a raw socket receives, and a way to wait for one. */
const receivedLines = (socket: Net.Socket) => {
  const lines: Array<Record<string, unknown>> = []
  const waiters = new Set<{ readonly test: (m: Record<string, unknown>) => boolean; readonly resume: () => void }>()
  let pending = ""
  socket.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8")
    let newline: number
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = JSON.parse(pending.slice(0, newline)) as Record<string, unknown>
      pending = pending.slice(newline + 1)
      lines.push(line)
      for (const waiter of waiters) {
        if (waiter.test(line)) {
          waiters.delete(waiter)
          waiter.resume()
        }
      }
    }
  })
  return {
    lines,
    await: (test: (m: Record<string, unknown>) => boolean) =>
      Effect.callback<void>((resume) => {
        if (lines.some(test)) return resume(Effect.void)
        waiters.add({ test, resume: () => resume(Effect.void) })
      })
  }
}

/** A socket file whose server is gone (as after a crash). */
const staleSocket = (path: string) =>
  Effect.callback<void>((resume) => {
    const server = Net.createServer()
    server.listen(`${path}.live`, () => {
      fs.linkSync(`${path}.live`, path)
      server.close(() => resume(Effect.void))
    })
  })

const exists = (path: string) => fs.existsSync(path)

const transports: ReadonlyArray<Transport> = ["unix", "tcp"]

describe("Unix socket", () => {
  it.effect("is created with mode 0600, nothing else is left beside it, and it is removed on close", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const h = yield* Scope.provide(startServer(), scope)
      const path = (h.unix as { path: string }).path
      const stat = fs.statSync(path)
      assert.isTrue(stat.isSocket())
      assert.strictEqual(stat.mode & 0o777, 0o600)
      assert.deepStrictEqual(fs.readdirSync(h.dir), ["effect-jobs.sock"])
      const c = yield* Scope.provide(h.client(), scope)
      assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
      yield* Scope.close(scope, Exit.void)
      assert.isFalse(exists(path))
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("a stale socket file is replaced; a live one is refused; so is a file that is not a socket", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-test-" })
      const path = `${dir}/qmp.sock`
      yield* staleSocket(path)
      assert.isTrue(fs.statSync(path).isSocket())
      const first = yield* Qmp.make({ socket: path })
      const c = yield* Qmp.connect({ path })
      assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
      const refused = yield* Effect.flip(Effect.scoped(Qmp.make({ socket: path })))
      assert.strictEqual(refused.message, `Another server is already listening on ${path}`)
      // The first server is untouched.
      assert.deepStrictEqual(yield* c.execute("query-version"), Qmp.version)
      assert.deepStrictEqual(first.addresses, [{ _tag: "Unix", path }])
      const plain = `${dir}/plain`
      fs.writeFileSync(plain, "keep me")
      const notSocket = yield* Effect.flip(Effect.scoped(Qmp.make({ socket: plain })))
      assert.strictEqual(notSocket.message, `${plain} exists and is not a socket; not replacing it`)
      assert.strictEqual(fs.readFileSync(plain, "utf8"), "keep me")
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("on close, the socket file is removed only if it is still the server's own", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-test-" })
      const path = `${dir}/qmp.sock`
      const scopeA = yield* Scope.make()
      yield* Scope.provide(Qmp.make({ socket: path }), scopeA)
      fs.unlinkSync(path)
      yield* Qmp.make({ socket: path })
      yield* Scope.close(scopeA, Exit.void)
      assert.isTrue(exists(path))
      const c = yield* Qmp.connect({ path })
      assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
    }).pipe(Effect.scoped, Effect.provide(layer)))
})

describe("TCP", () => {
  it("only loopback addresses count as loopback", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) assert.isTrue(isLoopback(host), host)
    for (const host of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "::ffff:8.8.8.8"]) {
      assert.isFalse(isLoopback(host), host)
    }
  })

  // Allowed with mutual TLS: see tls.test.ts.
  it.effect("a non-loopback address is refused without mutual TLS, even when remote access is allowed", () =>
    Effect.gen(function*() {
      for (const allowRemote of [false, true]) {
        const refused = yield* Effect.flip(
          Effect.scoped(Qmp.make({ socket: false, tcp: { host: "0.0.0.0", port: 0, allowRemote } }))
        )
        assert.match(refused.message, /^Refusing to listen on 0\.0\.0\.0: it is not a loopback address, .*mutual TLS/)
      }
    }).pipe(Effect.provide(layer)))

  it.effect("a port in use is a clear error", () =>
    Effect.gen(function*() {
      const first = yield* Qmp.make({ socket: false, tcp: { port: 0 } })
      const port = first.addresses[0]!._tag === "Tcp" ? (first.addresses[0] as { port: number }).port : 0
      const error = yield* Effect.flip(Effect.scoped(Qmp.make({ socket: false, tcp: { port } })))
      assert.match(error.message, new RegExp(`^Cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
    }).pipe(Effect.scoped, Effect.provide(layer)))
})


for (const transport of transports) {
  describe(`connections over ${transport}`, () => {
    it.effect("a message over 1 MiB: an error reply, then the connection is closed cleanly; 1 MiB exactly is fine", () =>
      Effect.gen(function*() {
        const h = yield* startServer()
        const prefix = '{"execute": "query-jobs", "id": "'
        const exact = `${prefix}${"x".repeat(Qmp.maxLineBytes - prefix.length - 2)}"}`
        assert.strictEqual(Buffer.byteLength(exact), Qmp.maxLineBytes)
        const c = yield* h.client(transport)
        const reply = yield* c.request(exact)
        assert.strictEqual((reply.id as string).length, Qmp.maxLineBytes - prefix.length - 2)
        // Messages before the long one are answered; nothing after it is. (Its id is cut by the cap: no id.)
        const over = `${prefix}${"x".repeat(Qmp.maxLineBytes - prefix.length)}"}`
        yield* c.raw(`{"execute": "query-jobs", "id": 1}\n${over}\n{"execute": "query-jobs", "id": 2}\n`)
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 1 })
        assert.deepStrictEqual(yield* c.nextReply, {
          error: { class: "GenericError", desc: `QMP input exceeds the maximum message size of ${Qmp.maxLineBytes} bytes` }
        })
        yield* c.closed
        assert.isTrue(Exit.isFailure(yield* Effect.exit(c.nextReply)))
        // The server goes on.
        const other = yield* h.client(transport)
        assert.deepStrictEqual(yield* other.execute("query-jobs"), [])
      }).pipe(Effect.scoped, Effect.provide(layer)))

    it.effect("a client that closes its sending side still gets every reply", () =>
      Effect.gen(function*() {
        const h = yield* startServer()
        const socket = yield* rawConnect(transport === "unix" ? h.unix : h.tcp)
        const received = readAll(socket)
        socket.end(
          '{"execute": "qmp_capabilities"}\n{"execute": "query-jobs", "id": 1}\n{"execute": "job-pause", "arguments": {"id": "x"}, "id": 2}\n{"execute": "query-version", "id": 3}'
        )
        const lines = (yield* received).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
        assert.property(lines[0], "QMP")
        assert.deepStrictEqual(lines.slice(1), [
          { return: {} },
          { return: [], id: 1 },
          { error: { class: "GenericError", desc: "Job not found" }, id: 2 },
          { return: Qmp.version, id: 3 }
        ])
      }).pipe(Effect.scoped, Effect.provide(layer)))

    it.effect("a client that stops reading is disconnected (and logged); the engine and the other clients go on", () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const h = yield* startServer({ outgoingMessages: 16, outgoingBytes: 16 * 1024 })
        const healthy = yield* h.client(transport)
        yield* healthy.execute("backup", job("j"))
        const slow = yield* rawConnect(transport === "unix" ? h.unix : h.tcp)
        slow.pause()
        slow.write(`{"execute": "qmp_capabilities"}\n${'{"execute": "query-commands"}\n'.repeat(20_000)}`)
        const line = yield* logs.waitFor(/disconnected/, "Warn")
        assert.match(line, /^QMP client .* disconnected: more than 16 messages or 16384 bytes unread$/)
        assert.strictEqual(yield* h.server.clientCount, 1)
        // The job runs on, the healthy client gets its events and replies.
        yield* TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)
        yield* healthy.awaitEvent((e) => e.event === "BLOCK_JOB_COMPLETED")
        assert.deepStrictEqual(yield* healthy.execute("query-jobs"), [])
      }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
    })

    it.effect("a client that vanishes right after a command leaves nothing half done", () =>
      Effect.gen(function*() {
        const h = yield* startServer()
        const observer = yield* h.client(transport)
        const socket = yield* rawConnect(transport === "unix" ? h.unix : h.tcp)
        const transaction = {
          execute: "transaction",
          arguments: {
            actions: ["a", "b", "c"].map((id) => ({ type: "backup", data: job(id) })),
            properties: { "completion-mode": "grouped" }
          }
        }
        // Wait for the greeting, so the server has set the session up; then send and vanish.
        yield* Effect.callback<void>((resume) => {
          socket.once("data", () => resume(Effect.void))
        })
        socket.write(`{"execute": "qmp_capabilities"}\n${JSON.stringify(transaction)}\n`, () => socket.destroy())
        for (const id of ["a", "b", "c"]) {
          yield* observer.awaitEvent((e) => e.data?.id === id && e.data?.status === "running")
        }
        yield* TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)
        for (const id of ["a", "b", "c"]) {
          const done = yield* observer.awaitEvent((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data?.device === id)
          assert.notProperty(done.data, "error")
        }
      }).pipe(Effect.scoped, Effect.provide(layer)))
  })
}

/** One `backup` command per id, then the way the client leaves. */
const backups = (ids: ReadonlyArray<string>) =>
  `{"execute": "qmp_capabilities"}\n${ids.map((id) => JSON.stringify({ execute: "backup", arguments: job(id) })).join("\n")}\n`

const leaving: ReadonlyArray<readonly [Transport, "reset" | "close" | "half-close"]> = [
  ["tcp", "reset"],
  ["tcp", "close"],
  ["tcp", "half-close"],
  ["unix", "close"]
]

describe("a client that leaves abruptly", () => {
  for (const [transport, how] of leaving) {
    it.effect(`over ${transport}, ${how} right after sending: every command it sent still runs, in order`, () =>
      Effect.gen(function*() {
        const h = yield* startServer()
        const observer = yield* h.client(transport)
        const ids = Array.from({ length: 20 }, (_, i) => `gone${i}`)
        const socket = yield* rawConnect(transport === "unix" ? h.unix : h.tcp)
        socket.on("error", () => {})
        // One write, and gone at once: the server may not even have greeted it yet.
        socket.write(backups(ids), () => {
          if (how === "reset") socket.resetAndDestroy()
          else if (how === "close") socket.destroy()
          else socket.end()
        })
        for (const id of ids) {
          yield* observer.awaitEvent((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === "running")
        }
        const listed = (yield* observer.execute("query-jobs")) as ReadonlyArray<{ id: string; status: string }>
        assert.deepStrictEqual(listed.map((j) => j.id), ids)
      }).pipe(Effect.scoped, Effect.provide(layer)))
  }

  it.effect("a client that connects, sends and resets before the server has even accepted it: every command still runs", () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      const observer = yield* h.client("tcp")
      const ids = Array.from({ length: 20 }, (_, i) => `early${i}`)
      const port = (h.tcp as { port: number }).port
      // A child process does it all while this process (and so the server) is blocked in spawnSync.
      const child = spawnSync(
        process.execPath,
        [
          "-e",
          `const s = require("node:net").connect(${port}, "127.0.0.1", () => s.write(process.env.QMP_INPUT, () => s.resetAndDestroy()));` +
          `s.on("error", () => {}); s.on("close", () => process.exit(0))`
        ],
        { env: { ...process.env, QMP_INPUT: backups(ids) }, timeout: 10_000 }
      )
      assert.strictEqual(child.status, 0)
      for (const id of ids) {
        yield* observer.awaitEvent((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === "running")
      }
      const listed = (yield* observer.execute("query-jobs")) as ReadonlyArray<{ id: string }>
      assert.deepStrictEqual(listed.map((j) => j.id), ids)
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("commands that arrive while an earlier one runs, just before a reset, still run once it is done", () => {
    // A `mirror` whose set-up waits for the test: the server is inside that command while the rest arrives.
    const entered = Deferred.makeUnsafe<void>()
    const gate = Deferred.makeUnsafe<void>()
    const GatedMirror = JobDriver.make({
      type: "mirror",
      params: Schema.Struct({ source: Schema.String, target: Schema.String, overwrite: Schema.optionalKey(Schema.Boolean) }),
      make: (_params, job) =>
        Effect.gen(function*() {
          yield* Deferred.succeed(entered, undefined)
          yield* Deferred.await(gate)
          return {
            run: Effect.gen(function*() {
              while (!(yield* job.cancelRequested)) yield* job.sleep(1000)
            })
          }
        })
    })
    const gatedLayer = Layer.mergeAll(JobDriver.layer(StandIn.BackupStandIn), JobDriver.layer(GatedMirror)).pipe(
      Layer.provideMerge(Testing.layer),
      Layer.provideMerge(NodeServices.layer)
    )
    return Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Deferred.succeed(gate, undefined))
      const h = yield* startServer()
      const observer = yield* h.client("tcp")
      const socket = yield* rawConnect(h.tcp)
      socket.on("error", () => {})
      // Else Nagle's algorithm may hold the commands back until the mirror's bytes are acknowledged,
      // and the reset would discard them in this end's kernel: never sent, never received.
      socket.setNoDelay(true)
      const lines = receivedLines(socket)
      yield* lines.await((m) => "QMP" in m)
      socket.write(`{"execute": "qmp_capabilities"}\n`)
      yield* lines.await((m) => "return" in m)
      socket.write(`${JSON.stringify({ execute: "mirror", arguments: job("gated") })}\n`)
      // Inside the command now; the server has nothing to write to this client until it is done.
      // (A write that meets the reset would destroy the socket, with any bytes the kernel still held.)
      yield* Deferred.await(entered)
      const ids = Array.from({ length: 20 }, (_, i) => `late${i}`)
      yield* Effect.callback<void>((resume) => {
        socket.once("close", () => resume(Effect.void))
        socket.write(ids.map((id) => JSON.stringify({ execute: "backup", arguments: job(id) })).join("\n") + "\n", () =>
          socket.resetAndDestroy())
      })
      // A few turns of the event loop, for the server's socket to take in the bytes and the reset
      // before the mirror's set-up ends (without them, the reset may simply come later).
      for (let i = 0; i < 3; i++) yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
      yield* Deferred.succeed(gate, undefined)
      for (const id of ["gated", ...ids]) {
        yield* observer.awaitEvent((e) => e.event === "JOB_STATUS_CHANGE" && e.data?.id === id && e.data?.status === "running")
      }
      const listed = (yield* observer.execute("query-jobs")) as ReadonlyArray<{ id: string }>
      assert.deepStrictEqual(listed.map((j) => j.id), ["gated", ...ids])
    }).pipe(Effect.scoped, Effect.provide(gatedLayer))
  })
})

describe("cross-protocol requests", () => {
  for (const transport of transports) {
    it.effect(`over ${transport}, an HTTP request is closed at once and nothing in it runs, not even its body`, () => {
      const logs = captureLogs()
      return Effect.gen(function*() {
        const h = yield* startServer()
        const healthy = yield* h.client(transport)
        const socket = yield* rawConnect(transport === "unix" ? h.unix : h.tcp)
        const received = readAll(socket)
        const body = `{"execute": "qmp_capabilities"}\n${JSON.stringify({ execute: "backup", arguments: job("web") })}\n` +
          `{"execute": "quit"}\n`
        socket.write(
          "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n" +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
        )
        const text = yield* received
        // At most the greeting, which went out before the request arrived; no reply to anything.
        const lines = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l) as Record<string, unknown>)
        assert.isAtMost(lines.length, 1)
        for (const line of lines) assert.property(line, "QMP")
        yield* logs.waitFor(/HTTP request/, "Warn")
        // Nothing ran: no job, no shutdown; the other client is served as before.
        assert.deepStrictEqual(yield* healthy.execute("query-jobs"), [])
        assert.deepStrictEqual(healthy.events, [])
        const other = yield* h.client(transport)
        assert.deepStrictEqual(yield* other.execute("query-jobs"), [])
      }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
    })
  }
})
