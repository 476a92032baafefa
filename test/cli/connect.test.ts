/**
 * A client that cannot connect says why and where: `effect-jobs qmp` and
 * `effect-jobs watch` as real processes against a missing socket (ENOENT),
 * a socket file whose server was killed and a closed TCP port
 * (ECONNREFUSED), and a socket in a directory this user may not enter
 * (EACCES); exit code 1. And the mapping of the system's errors itself.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as net from "node:net"
import { join } from "node:path"
import { connectFailure } from "../../src/qmp/client.ts"
import { run, serve, tempDir } from "./harness.ts"

/** A TCP port on 127.0.0.1 that was free a moment ago and has no listener now. */
const closedPort = Effect.callback<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A listening Unix socket at `path`, closed with the scope. */
const listenAt = (path: string) =>
  Effect.acquireRelease(
    Effect.callback<net.Server>((resume) => {
      const server = net.createServer((socket) => socket.destroy())
      server.listen(path, () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.callback<void>((resume) => void server.close(() => resume(Effect.void)))
  )

describe("a client that cannot connect", () => {
  it.live("no socket file: ENOENT and the path, for qmp and for watch; exit code 1", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "missing", "x.sock")
      const [qmp, watch] = yield* Effect.all([
        run(["qmp", "--socket", socket, "query-jobs"]),
        run(["watch", "--socket", socket])
      ], { concurrency: "unbounded" })
      const expected = `effect-jobs: cannot connect to unix:${socket}: no such socket file (ENOENT); ` +
        "is the server running, and listening on this path?\n"
      assert.deepStrictEqual([qmp.code, qmp.stdout, qmp.stderr], [1, "", expected])
      assert.deepStrictEqual([watch.code, watch.stdout, watch.stderr], [1, "", expected])
    }).pipe(Effect.scoped))

  it.live("a socket file left by a killed server, and a closed TCP port: ECONNREFUSED and the address", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      const { server } = yield* serve(["--socket", socket], { cwd: dir })
      yield* server.signal("SIGKILL") // no chance to remove its socket file
      yield* server.exited
      assert.isTrue(fs.lstatSync(socket).isSocket())
      const stale = yield* run(["qmp", "--socket", socket, "query-jobs"])
      assert.strictEqual(stale.code, 1)
      assert.strictEqual(
        stale.stderr,
        `effect-jobs: cannot connect to unix:${socket}: nothing is listening on this socket (ECONNREFUSED); ` +
          "its server has stopped, or the file is not a live socket\n"
      )

      const port = yield* closedPort
      const tcp = yield* run(["qmp", "--tcp", `127.0.0.1:${port}`, "query-jobs"])
      assert.strictEqual(tcp.code, 1)
      assert.match(tcp.stderr, new RegExp(`^effect-jobs: cannot connect to tcp:127\\.0\\.0\\.1:${port}: .*\\(ECONNREFUSED\\)`))
    }).pipe(Effect.scoped))

  it.live("a socket in a directory this user may not enter: EACCES and the path", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const locked = join(dir, "private")
      fs.mkdirSync(locked, { mode: 0o700 })
      const socket = join(locked, "s.sock")
      yield* listenAt(socket)
      // Root may enter any directory: as root, connect as another user; otherwise the socket itself is closed to us.
      const asRoot = process.getuid?.() === 0
      if (!asRoot) fs.chmodSync(socket, 0o000)
      const result = yield* run(
        ["qmp", "--socket", socket, "query-jobs"],
        asRoot ? { cwd: "/", user: { uid: 65534, gid: 65534 } } : {}
      )
      assert.strictEqual(result.code, 1, result.stderr)
      assert.strictEqual(
        result.stderr,
        `effect-jobs: cannot connect to unix:${socket}: permission denied (EACCES); ` +
          "this user may not use the socket file, or a directory above it\n"
      )
    }).pipe(Effect.scoped))
})

describe("connectFailure", () => {
  /** An error as Node reports a failed connect. */
  const systemError = (code: string, message: string) =>
    Object.assign(new Error(message), { code, errno: -1, syscall: "connect" })

  it("finds the system error under effect's socket errors and says what it means, with the address", () => {
    // SocketError → SocketOpenError → the Node error, as effect's NodeSocket reports it.
    const wrapped = { reason: { _tag: "SocketOpenError", cause: systemError("EACCES", "connect EACCES /run/x.sock") } }
    const unix = connectFailure({ path: "/run/x.sock" }, wrapped)
    assert.strictEqual(unix?.code, "EACCES")
    assert.strictEqual(
      unix?.message,
      "cannot connect to unix:/run/x.sock: permission denied (EACCES); this user may not use the socket file, or a directory above it"
    )
    const dns = connectFailure(
      { host: "nowhere.invalid", port: 4444 },
      { reason: { cause: Object.assign(systemError("ENOTFOUND", "getaddrinfo ENOTFOUND nowhere.invalid"), { syscall: "getaddrinfo" }) } }
    )
    assert.strictEqual(dns?.message, "cannot connect to tcp:nowhere.invalid:4444: unknown host name (ENOTFOUND)")
    assert.strictEqual(
      connectFailure({ host: "::1", port: 1 }, systemError("ECONNRESET", "read ECONNRESET"))?.message,
      "cannot connect to tcp:[::1]:1: read ECONNRESET"
    )
  })

  it("leaves alone what is no system error (a TLS verdict, a plain Error)", () => {
    const tls = Object.assign(new Error("unable to verify the first certificate"), { code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" })
    assert.isUndefined(connectFailure({ host: "127.0.0.1", port: 1 }, { reason: { cause: tls } }))
    assert.isUndefined(connectFailure({ path: "/x" }, new Error("An error occurred during Open")))
  })
})
