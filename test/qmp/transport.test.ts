/**
 * Transports and connections: the Unix socket file (mode 0600, stale socket
 * replaced, live one and non-sockets refused, removed on close), TCP binding
 * rules, the 1 MiB line cap, half-closed clients, clients that stop reading,
 * and clients that vanish mid-command — none of which affects the jobs or the
 * other clients.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, FileSystem, Scope } from "effect"
import { TestClock } from "effect/testing"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as Qmp from "../../src/Qmp.ts"
import { isLoopback } from "../../src/qmp/transport.ts"
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

  it.effect("a non-loopback address is refused unless allowed; allowed, it is logged as a warning", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const refused = yield* Effect.flip(Effect.scoped(Qmp.make({ socket: false, tcp: { host: "0.0.0.0", port: 0 } })))
      assert.match(refused.message, /^Refusing to listen on 0\.0\.0\.0: it is not a loopback address/)
      const server = yield* Qmp.make({ socket: false, tcp: { host: "0.0.0.0", port: 0, allowRemote: true } })
      yield* logs.waitFor(/non-loopback address 0\.0\.0\.0/, "Warn")
      const [address] = server.addresses
      assert.strictEqual(address?._tag, "Tcp")
      const c = yield* Qmp.connect({ host: "127.0.0.1", port: address!._tag === "Tcp" ? address!.port : 0 })
      assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
    }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
  })

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
