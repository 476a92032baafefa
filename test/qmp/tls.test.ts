/**
 * Mutual TLS on the TCP listener, with certificates made by openssl: a client
 * whose certificate the server's CA signed negotiates and runs commands; one
 * with no certificate, with one from another CA, or speaking plain TCP is
 * dropped before the greeting and never counts as a client; the client checks
 * the server's certificate too. Remote addresses need TLS and `allowRemote`;
 * unusable credentials are refused as the server starts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as Qmp from "../../src/Qmp.ts"
import { listenTcp } from "../../src/qmp/transport.ts"
import { type Certificates, makeCertificates } from "../helpers/certificates.ts"
import { captureLogs, layer } from "./harness.ts"

const serverTls = (certs: Certificates): Qmp.TlsServerOptions => ({
  cert: certs.read("serverCert"),
  key: certs.read("serverKey"),
  ca: certs.read("ca")
})

const clientTls = (certs: Certificates): Qmp.TlsClientOptions => ({
  cert: certs.read("clientCert"),
  key: certs.read("clientKey"),
  ca: certs.read("ca")
})

/** A TLS server on 127.0.0.1 (no Unix socket), and its port. */
const tlsServer = (certs: Certificates) =>
  Effect.gen(function*() {
    const server = yield* Qmp.make({ socket: false, tcp: { host: "127.0.0.1", port: 0, tls: serverTls(certs) } })
    const address = server.addresses[0]!
    return { server, port: address._tag === "Tcp" ? address.port : 0 }
  })

interface Dropped {
  /** Every byte the server sent. */
  readonly received: string
  /** The error the connection ended with (the TLS alert), if any. */
  readonly error: string | undefined
}

/**
 * A connection made with Node's own TLS (or plain TCP), sending `send` once
 * connected (then half-closing, with `end`), read until it closes.
 */
const rawSession = (
  port: number,
  options: Omit<Tls.ConnectionOptions, "host" | "port"> | "plain",
  send = `{"execute": "qmp_capabilities"}\n`,
  end = false
) =>
  Effect.callback<Dropped>((resume) => {
    const socket = options === "plain"
      ? Net.connect({ host: "127.0.0.1", port })
      : Tls.connect({ host: "127.0.0.1", port, ...options })
    let received = ""
    let error: string | undefined
    socket.once(options === "plain" ? "connect" : "secureConnect", () => {
      socket.write(send)
      if (end) socket.end()
    })
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString()
    })
    socket.on("error", (e: NodeJS.ErrnoException) => {
      error ??= e.code ?? e.message
    })
    socket.once("close", () => resume(Effect.succeed({ received, error })))
    return Effect.sync(() => socket.destroy())
  })

describe("mutual TLS", () => {
  it.effect("a client with a certificate from the CA gets the greeting, negotiates and runs query-jobs", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const { server, port } = yield* tlsServer(certs)
      const client = yield* Qmp.connect({ host: "127.0.0.1", port, tls: clientTls(certs) })
      assert.deepStrictEqual(Object.keys(client.greeting), ["QMP"])
      assert.deepStrictEqual(yield* client.execute("query-jobs"), [])
      assert.strictEqual(yield* server.clientCount, 1)
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("no certificate, one from another CA, or plain TCP: dropped before the greeting, never a client", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const { server, port } = yield* tlsServer(certs)
      const good = yield* Qmp.connect({ host: "127.0.0.1", port, tls: clientTls(certs) })

      const [anonymous, stranger, plain] = yield* Effect.all([
        rawSession(port, { ca: certs.read("ca") }),
        rawSession(port, { ca: certs.read("ca"), cert: certs.read("otherClientCert"), key: certs.read("otherClientKey") }),
        rawSession(port, "plain")
      ], { concurrency: "unbounded" })
      // No certificate: the server says so (a TLS alert). One it cannot verify: it just closes.
      assert.deepStrictEqual(anonymous, { received: "", error: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" })
      assert.strictEqual(stranger.received, "")
      assert.notInclude(plain.received, "QMP")

      // The same through the library's client: it fails before any greeting.
      const refused = yield* Effect.flip(Qmp.connect({
        host: "127.0.0.1",
        port,
        tls: { ...clientTls(certs), cert: certs.read("otherClientCert"), key: certs.read("otherClientKey") }
      }))
      assert.strictEqual(
        refused.message,
        "connection closed before the greeting (does the server accept this client's certificate?)"
      )
      const anonymousClient = yield* Effect.flip(
        Qmp.connect({ host: "127.0.0.1", port, tls: { ...clientTls(certs), cert: "", key: "" } })
      )
      assert.match(anonymousClient.message, /certificate required/)

      // The good client is the only one the server ever had, and it still works.
      assert.strictEqual(yield* server.clientCount, 1)
      assert.deepStrictEqual(yield* good.execute("query-jobs"), [])
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("the listener hands over only verified connections, named by their certificate", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const listener = yield* listenTcp({ port: 0, tls: serverTls(certs) })
      const port = listener.address._tag === "Tcp" ? listener.address.port : 0
      const peers: Array<string> = []
      yield* Effect.forkScoped(listener.run(() => ({
        _tag: "Serve",
        serve: (socket, peer) =>
          Effect.gen(function*() {
            peers.push(peer)
            yield* Effect.ignore(Socket.readerBytes(socket)) // opens the connection for writing
            const write = yield* socket.writer
            yield* Effect.ignore(write.write(new TextEncoder().encode("hello\n")))
          }).pipe(Effect.scoped)
      })), { startImmediately: true })

      const stranger = yield* rawSession(port, {
        ca: certs.read("ca"),
        cert: certs.read("otherClientCert"),
        key: certs.read("otherClientKey")
      })
      const anonymous = yield* rawSession(port, { ca: certs.read("ca") })
      const good = yield* rawSession(port, { ca: certs.read("ca"), cert: certs.read("clientCert"), key: certs.read("clientKey") })
      assert.strictEqual(stranger.received, "")
      assert.strictEqual(anonymous.received, "")
      assert.strictEqual(good.received, "hello\n")
      assert.strictEqual(peers.length, 1)
      assert.match(peers[0]!, /^tcp:127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ \(CN=operator\)$/)
    }).pipe(Effect.scoped))

  it.effect("a client may send its commands, half-close, and still read every reply", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const { port } = yield* tlsServer(certs)
      // Enough commands that most replies are written after the server has seen the end of its input.
      const ids = Array.from({ length: 200 }, (_, i) => i)
      const session = yield* rawSession(
        port,
        { ca: certs.read("ca"), cert: certs.read("clientCert"), key: certs.read("clientKey") },
        `{"execute": "qmp_capabilities"}\n${ids.map((id) => `{"execute": "query-jobs", "id": ${id}}\n`).join("")}`,
        true
      )
      assert.strictEqual(session.error, undefined)
      const lines = session.received.trim().split("\n").map((line) => JSON.parse(line) as Record<string, unknown>)
      assert.deepStrictEqual(Object.keys(lines[0]!), ["QMP"])
      assert.deepStrictEqual(lines.slice(1), [{ return: {} }, ...ids.map((id) => ({ return: [], id }))])
    }).pipe(Effect.scoped, Effect.provide(layer)))

  // Here the client hangs up in the middle of the handshake: the server must still close at once.
  it.effect("the client checks the server: a certificate from another CA, or for another name, is refused", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const { server, port } = yield* tlsServer(certs)
      const untrusted = yield* Effect.flip(
        Qmp.connect({ host: "127.0.0.1", port, tls: { ...clientTls(certs), ca: certs.read("otherCa") } })
      )
      assert.match(untrusted.message, /^cannot connect: .*(unable to verify|self-signed|local issuer)/)
      const misnamed = yield* Effect.flip(
        Qmp.connect({ host: "127.0.0.1", port, tls: { ...clientTls(certs), servername: "jobs.example.com" } })
      )
      assert.match(misnamed.message, /^cannot connect: .*jobs\.example\.com/)
      // A name that the certificate does carry.
      const named = yield* Qmp.connect({ host: "127.0.0.1", port, tls: { ...clientTls(certs), servername: "localhost" } })
      assert.deepStrictEqual(yield* named.execute("query-jobs"), [])
      assert.strictEqual(yield* server.clientCount, 1)
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("a non-loopback address needs TLS and allowRemote; with both it listens (reached here via 127.0.0.1)", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const certs = yield* makeCertificates
      const tls = serverTls(certs)
      const make = (tcp: Qmp.TcpOptions) => Effect.flip(Effect.scoped(Qmp.make({ socket: false, tcp })))
      const noTls = yield* make({ host: "0.0.0.0", port: 0, allowRemote: true })
      assert.match(noTls.message, /^Refusing to listen on 0\.0\.0\.0: .*mutual TLS/)
      const notAllowed = yield* make({ host: "0.0.0.0", port: 0, tls })
      assert.match(notAllowed.message, /^Refusing to listen on 0\.0\.0\.0: .*allow remote access/)

      const server = yield* Qmp.make({ socket: false, tcp: { host: "0.0.0.0", port: 0, allowRemote: true, tls } })
      yield* logs.waitFor(/non-loopback address 0\.0\.0\.0: any client with a certificate from its CA/, "Warn")
      const address = server.addresses[0]!
      const port = address._tag === "Tcp" ? address.port : 0
      const client = yield* Qmp.connect({ host: "127.0.0.1", port, tls: clientTls(certs) })
      assert.deepStrictEqual(yield* client.execute("query-jobs"), [])
      const dropped = yield* rawSession(port, { ca: certs.read("ca") })
      assert.strictEqual(dropped.received, "")
    }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
  })

  it.effect("unusable credentials are refused as the server starts, and as the client connects", () =>
    Effect.gen(function*() {
      const certs = yield* makeCertificates
      const make = (tls: Qmp.TlsServerOptions) =>
        Effect.flip(Effect.scoped(Qmp.make({ socket: false, tcp: { port: 0, tls } })))
      const mismatched = yield* make({ ...serverTls(certs), key: certs.read("clientKey") })
      assert.match(mismatched.message, /^Cannot use the TLS credentials: .*key values mismatch/)
      const noCa = yield* make({ ...serverTls(certs), ca: "not a certificate" })
      assert.match(noCa.message, /^Cannot use the TLS credentials: /)
      const notPem = yield* make({ ...serverTls(certs), cert: "hello" })
      assert.match(notPem.message, /^Cannot use the TLS credentials: /)

      const client = yield* Effect.flip(
        Qmp.connect({ host: "127.0.0.1", port: 1, tls: { ...clientTls(certs), key: certs.read("serverKey") } })
      )
      assert.match(client.message, /^cannot use the TLS credentials: .*key values mismatch/)
    }).pipe(Effect.scoped, Effect.provide(layer)))
})
