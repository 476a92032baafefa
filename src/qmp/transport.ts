/**
 * Where the server listens.
 *
 * - Unix socket: created with mode 0600 — bound inside a private directory,
 *   narrowed, then linked into place, so no other user can ever connect. A
 *   socket file left by a dead server is replaced; one with a live server
 *   behind it is refused, as is a path that is not a socket. On close the
 *   socket file is removed (if it is still ours).
 * - TCP: loopback by default. QMP itself has no authentication, so any other
 *   address must be allowed explicitly and needs mutual TLS: the server shows
 *   its certificate and accepts only clients whose certificate a given CA
 *   signed (as QEMU's `tls-creds-x509` with `verify-peer=on`). TLS may be
 *   used on loopback too. A client is handed to the server only once its
 *   handshake has succeeded: one without a valid certificate is dropped
 *   before the greeting and never counts as a client.
 *
 * Both accept half-closed connections, so a client may send its commands,
 * close its side, and still read every reply.
 */
import { NodeSocket, NodeSocketServer } from "@effect/platform-node"
import { Context, Effect, Exit, Fiber, FileSystem, Option, Path, Result, Schema, Scope } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import * as Socket from "effect/socket/Socket"
import type * as SocketServer from "effect/socket/SocketServer"
import { Buffer } from "node:buffer"
import { X509Certificate } from "node:crypto"
import * as Net from "node:net"
import * as Tls from "node:tls"

/**
 * The server could not start listening.
 */
export class QmpServerError extends Schema.TaggedError<QmpServerError>()("QmpServerError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/** Where a server listens. */
export type ListenAddress =
  | { readonly _tag: "Unix"; readonly path: string }
  | { readonly _tag: "Tcp"; readonly host: string; readonly port: number }

export const formatAddress = (address: ListenAddress): string =>
  address._tag === "Unix" ? `unix:${address.path}` : `tcp:${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`

/**
 * What the server does with a connection as it arrives, decided at once and
 * before anything is set up for it: refuse it (`line` is written, then the
 * connection is closed, nothing it sent is read; `warning`, if any, is
 * logged), or serve it.
 */
export type Arrival =
  | { readonly _tag: "Refuse"; readonly line: string; readonly warning: string | undefined }
  | { readonly _tag: "Serve"; readonly serve: (socket: Socket.Socket, peer: string) => Effect.Effect<void> }

export interface Listener {
  readonly address: ListenAddress
  /** Takes every connection, as `arrive` decides, until interrupted. */
  readonly run: (arrive: () => Arrival) => Effect.Effect<never, QmpServerError>
}

const describe = (cause: unknown): string => {
  const inner = (cause as { cause?: unknown }).cause ?? cause
  return inner instanceof Error ? inner.message : String(inner)
}

/** The subject of a TLS client's certificate, for logs: `CN=operator`. */
const certificateSubject = (conn: Net.Socket): string | undefined => {
  if (!(conn instanceof Tls.TLSSocket)) return undefined
  const subject = conn.getPeerCertificate().subject as Record<string, string | ReadonlyArray<string>> | undefined
  if (subject === undefined) return undefined
  return Object.entries(subject).map(([key, value]) => `${key}=${Array.isArray(value) ? value.join("+") : value}`).join(",")
}

/** How a client is named in logs: where it connected, its address (or its number), its certificate. */
const peerName = (address: ListenAddress, conn: Net.Socket, n: number): string => {
  const remote = conn.remoteAddress !== undefined ? `${conn.remoteAddress}:${conn.remotePort}` : `#${n}`
  const subject = certificateSubject(conn)
  return `${formatAddress(address)} ${remote}${subject === undefined ? "" : ` (${subject})`}`
}

/** The refused connection's line goes out, then it is closed; a reset meanwhile is nobody's concern. */
const refuse = (conn: Net.Socket, line: string): void => {
  conn.on("error", ignoreError)
  if (conn.destroyed) return
  conn.end(line)
  conn.destroySoon()
}

const ignoreError = () => {}

const logRefusal = (peer: string, warning: string | undefined): Effect.Effect<void> =>
  warning === undefined ? Effect.void : Effect.logWarning(`QMP client ${peer} turned away: ${warning}`)

/**
 * A plain (Unix or TCP) listener of our own. Connections arrive paused, so
 * one that is refused is never read from: refusing costs its line and its
 * socket, and no fiber, buffer or Effect socket — what a flood of clients
 * over the limit needs.
 */
const netListener = (
  server: Net.Server,
  address: ListenAddress
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    let connections = 0
    /** Connections that came before `run`: held, paused, until it starts. */
    const held = new Set<Net.Socket>()
    const hold = (conn: Net.Socket) => {
      held.add(conn)
      conn.on("error", ignoreError)
      conn.once("close", () => held.delete(conn))
    }
    let onConnection = hold
    server.on("connection", (conn: Net.Socket) => onConnection(conn))
    yield* Effect.addFinalizer(() =>
      Effect.callback<void>((resume) => {
        for (const conn of held) conn.destroy()
        server.close(() => resume(Effect.void))
      })
    )
    return {
      address,
      run: (arrive) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const context = yield* Effect.context<never>()
          const track = Fiber.runIn(scope)
          const take = (conn: Net.Socket) => {
            const n = ++connections
            const arrival = arrive()
            if (arrival._tag === "Refuse") {
              refuse(conn, arrival.line)
              if (arrival.warning !== undefined) {
                Effect.runForkWith(context)(logRefusal(peerName(address, conn, n), arrival.warning))
              }
              return
            }
            // An error before the socket's reader exists would otherwise be thrown (no listener).
            let error: Error | undefined
            conn.on("error", (cause: Error) => {
              error = cause
            })
            const open = Effect.acquireRelease(
              Effect.suspend((): Effect.Effect<Net.Socket, Socket.SocketError> =>
                error !== undefined
                  ? Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause: error }) }))
                  : conn.closed
                  ? Effect.fail(new Socket.SocketError({ reason: new Socket.SocketCloseError({ code: 1000 }) }))
                  : Effect.succeed(conn)
              ),
              (conn) => Effect.sync(() => conn.closed || conn.destroySoon())
            )
            const peer = peerName(address, conn, n)
            track(Effect.runForkWith(Context.add(context, NodeSocket.NetSocket, conn))(
              Effect.flatMap(NodeSocket.fromDuplex(open), (socket) => arrival.serve(socket, peer))
            ))
          }
          onConnection = take
          for (const conn of held) {
            held.delete(conn)
            conn.off("error", ignoreError)
            take(conn)
          }
          return yield* Effect.never.pipe(Effect.ensuring(Effect.suspend(() => {
            onConnection = hold
            return Scope.close(scope, Exit.void)
          })))
        })
    }
  })

/** Listens on a new plain server: paused connections, half-open allowed. */
const listenPlain = (listen: Net.ListenOptions, what: string): Effect.Effect<Net.Server, QmpServerError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Server, QmpServerError>((resume) => {
      const server = Net.createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true })
      const onError = (cause: Error) => {
        server.close()
        resume(Effect.fail(new QmpServerError({ reason: `Cannot listen on ${what}: ${cause.message}` })))
      }
      server.once("error", onError)
      server.listen(listen, () => {
        server.off("error", onError)
        // Later errors are accept errors (file descriptors ran out): Node keeps listening.
        server.on("error", ignoreError)
        resume(Effect.succeed(server))
      })
    }),
    (server) => Effect.sync(() => server.listening && server.close())
  )

/** A TLS listener (Effect's): the handshake comes first, then the connection arrives. */
const tlsListener = (server: SocketServer.SocketServer["Service"], address: ListenAddress): Listener => {
  let connections = 0
  return {
    address,
    run: (arrive) =>
      server.run((socket) =>
        Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (found) => {
          // Always there: Effect's socket server provides each connection's Node socket.
          const conn = Option.getOrThrow(found)
          const n = ++connections
          const arrival = arrive()
          if (arrival._tag === "Refuse") {
            refuse(conn, arrival.line)
            return logRefusal(peerName(address, conn, n), arrival.warning)
          }
          // A TLS server is made without half-open connections (see listenTcp); each secured one allows them.
          if (conn instanceof Tls.TLSSocket) conn.allowHalfOpen = true
          return arrival.serve(socket, peerName(address, conn, n))
        })
      ).pipe(Effect.mapError((e) => new QmpServerError({ reason: `QMP server failed: ${describe(e.reason)}` })))
  }
}

/** Whether something answers on the Unix socket at `path`: "live", "stale" (nobody), or an error text. */
const probe = (path: string): Effect.Effect<"live" | "stale" | "gone" | { readonly error: string }> =>
  Effect.callback((resume) => {
    const conn = Net.connect({ path })
    conn.once("connect", () => {
      conn.destroy()
      resume(Effect.succeed("live"))
    })
    conn.once("error", (error: NodeJS.ErrnoException) => {
      conn.destroy()
      resume(Effect.succeed(
        error.code === "ECONNREFUSED" ? "stale" : error.code === "ENOENT" ? "gone" : { error: error.message }
      ))
    })
    return Effect.sync(() => conn.destroy())
  })

/** Listens on a Unix socket at `path` (mode 0600); removes the socket file when the scope closes. */
export const listenUnix = (
  path: string
): Effect.Effect<Listener, QmpServerError, FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const paths = yield* Path.Path
    const target = paths.resolve(path)
    const fail = (reason: string) => Effect.fail(new QmpServerError({ reason }))

    const existing = yield* Effect.option(fs.stat(target))
    if (Option.isSome(existing)) {
      if (existing.value.type !== "Socket") return yield* fail(`${target} exists and is not a socket; not replacing it`)
      const state = yield* probe(target)
      if (state === "live") return yield* fail(`Another server is already listening on ${target}`)
      if (typeof state === "object") return yield* fail(`Cannot check the existing socket ${target}: ${state.error}`)
      if (state === "stale") {
        yield* fs.remove(target).pipe(
          Effect.catch((e) => e.reason._tag === "NotFound" ? Effect.void : Effect.fail(e)),
          Effect.mapError((e) => new QmpServerError({ reason: `Cannot remove the stale socket ${target}: ${e.message}` }))
        )
        yield* Effect.logInfo(`Replaced the stale socket ${target}`)
      }
    }

    // Bind in a private directory (mode 0700), narrow to 0600, then link into place. The
    // temporary path is kept shorter than the default one (socket paths are limited to ~107 bytes).
    const privateDir = yield* fs.makeTempDirectory({ directory: paths.dirname(target), prefix: ".qmp-" }).pipe(
      Effect.mapError((e) => new QmpServerError({ reason: `Cannot create the socket ${target}: ${e.message}` }))
    )
    const bound = paths.join(privateDir, "s")
    const server = yield* listenPlain({ path: bound }, target).pipe(
      Effect.tap(() =>
        fs.chmod(bound, 0o600).pipe(Effect.andThen(fs.link(bound, target)), Effect.mapError((e) =>
          new QmpServerError({
            reason: e.reason._tag === "AlreadyExists"
              ? `Another server is already listening on ${target}`
              : `Cannot create the socket ${target}: ${e.message}`
          })
        ))
      ),
      Effect.ensuring(Effect.ignore(fs.remove(privateDir, { recursive: true })))
    )
    const ino = Option.flatMap(yield* Effect.option(fs.stat(target)), (info) => info.ino)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        // Only our own socket: another server may have replaced it meanwhile.
        const now = Option.flatMap(yield* Effect.option(fs.stat(target)), (info) => info.ino)
        if (Option.isSome(now) && Option.isSome(ino) && now.value === ino.value) yield* Effect.ignore(fs.remove(target))
      })
    )
    return yield* netListener(server, { _tag: "Unix", path: target })
  })

/**
 * Mutual TLS for a TCP listener, in PEM: the server's certificate (with the
 * chain up to the CA, if any) and its private key, and the CA certificate(s)
 * that a client's certificate must be signed by.
 */
export interface TlsServerOptions {
  readonly cert: string | Uint8Array
  readonly key: string | Uint8Array
  readonly ca: string | Uint8Array
}

export interface TcpOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  /** 0 picks a free port. */
  readonly port: number
  /** Needed, with `tls`, to listen on anything but a loopback address. */
  readonly allowRemote?: boolean | undefined
  /** Mutual TLS: needed on a non-loopback address, optional on loopback. */
  readonly tls?: TlsServerOptions | undefined
}

export const isLoopback = (host: string): boolean => {
  if (host === "localhost") return true
  const ip = NetAddress.ipFromString(host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host)
  return Result.isSuccess(ip) && NetAddress.isLoopback(ip.success)
}

/**
 * How long a TLS client has to complete its handshake (Node's default is two
 * minutes): until then it holds a connection but is no client yet, so the
 * server's own limits do not apply to it.
 */
export const tlsHandshakeMillis = 10_000

/** PEM text as Node's TLS options take it. */
export const pemOf = (value: string | Uint8Array): string | Buffer =>
  typeof value === "string" ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength)

/**
 * Node's TLS options for a server that requires a client certificate signed
 * by `ca`; fails if the credentials cannot be used (checked now, so that a bad
 * file is reported as it starts rather than by every handshake).
 */
const tlsServerOptions = (tls: TlsServerOptions): Effect.Effect<Tls.TlsOptions, QmpServerError> =>
  Effect.try({
    try: () => {
      // Node accepts a CA text with no certificate in it, and would then refuse every client.
      new X509Certificate(pemOf(tls.ca))
      const options = {
        cert: pemOf(tls.cert),
        key: pemOf(tls.key),
        ca: pemOf(tls.ca),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        handshakeTimeout: tlsHandshakeMillis
      } as const
      Tls.createSecureContext(options) // a missing or mismatched key, or a bad certificate, throws here
      return options
    },
    catch: (cause) => new QmpServerError({ reason: `Cannot use the TLS credentials: ${describe(cause)}` })
  })

/**
 * Listens on TCP: loopback, or any address with `allowRemote` and `tls`. With
 * `tls`, a connection reaches the handler only after a handshake in which the
 * client showed a certificate signed by the CA.
 */
export const listenTcp = (options: TcpOptions): Effect.Effect<Listener, QmpServerError, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    if (!isLoopback(host)) {
      if (options.tls === undefined) {
        return yield* new QmpServerError({
          reason: `Refusing to listen on ${host}: it is not a loopback address, and remote clients must ` +
            `authenticate with mutual TLS (a server certificate and key, and the CA of the clients' certificates)`
        })
      }
      if (!options.allowRemote) {
        return yield* new QmpServerError({
          reason: `Refusing to listen on ${host}: it is not a loopback address (allow remote access explicitly to do so)`
        })
      }
      yield* Effect.logWarning(
        `QMP server listening on non-loopback address ${host}: any client with a certificate from its CA controls every job`
      )
    }
    if (options.tls === undefined) {
      const server = yield* listenPlain({ host, port: options.port }, `${host}:${options.port}`)
      const bound = server.address()
      const port = typeof bound === "object" && bound !== null ? bound.port : options.port
      return yield* netListener(server, { _tag: "Tcp", host, port })
    }
    // Not half-open while handshaking: Node would keep a connection whose client hung up mid-handshake
    // open until the handshake timeout, and the server could not close until then either.
    const tls = yield* tlsServerOptions(options.tls)
    const server = yield* NodeSocketServer.makeTls({ host, port: options.port, noDelay: true, ...tls }).pipe(
      Effect.mapError((e) => new QmpServerError({ reason: `Cannot listen on ${host}:${options.port}: ${describe(e.reason)}` }))
    )
    const bound = server.address
    const port = bound._tag === "InetAddressV4" || bound._tag === "InetAddressV6" ? bound.port : options.port
    return tlsListener(server, { _tag: "Tcp", host, port })
  })
