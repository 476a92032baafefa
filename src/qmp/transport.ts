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
import { Effect, FileSystem, Option, Path, Result, Schema, type Scope } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import type * as Socket from "effect/socket/Socket"
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

export interface Listener {
  readonly address: ListenAddress
  /** Runs the handler for every connection until interrupted; `peer` names the client in logs. */
  readonly run: (handler: (socket: Socket.Socket, peer: string) => Effect.Effect<void>) => Effect.Effect<never, QmpServerError>
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

const fromSocketServer = (server: SocketServer.SocketServer["Service"], address: ListenAddress): Listener => {
  let connections = 0
  return {
    address,
    run: (handler) =>
      server.run((socket) =>
        Effect.flatMap(Effect.serviceOption(NodeSocket.NetSocket), (conn) => {
          const n = ++connections
          const remote = Option.isSome(conn) && conn.value.remoteAddress !== undefined
            ? `${conn.value.remoteAddress}:${conn.value.remotePort}`
            : `#${n}`
          // A TLS server is made without half-open connections (see listenTcp); each secured one allows them.
          if (Option.isSome(conn) && conn.value instanceof Tls.TLSSocket) conn.value.allowHalfOpen = true
          const subject = Option.isSome(conn) ? certificateSubject(conn.value) : undefined
          return handler(socket, `${formatAddress(address)} ${remote}${subject === undefined ? "" : ` (${subject})`}`)
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
    const server = yield* NodeSocketServer.make({ path: bound, allowHalfOpen: true }).pipe(
      Effect.mapError((e) => new QmpServerError({ reason: `Cannot listen on ${target}: ${describe(e.reason)}` })),
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
    return fromSocketServer(server, { _tag: "Unix", path: target })
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
    const listen = { host, port: options.port, noDelay: true }
    const server = yield* (options.tls === undefined
      ? NodeSocketServer.make({ ...listen, allowHalfOpen: true })
      // Not half-open while handshaking: Node would keep a connection whose client hung up mid-handshake
      // open until the handshake timeout, and the server could not close until then either.
      : Effect.flatMap(tlsServerOptions(options.tls), (tls) => NodeSocketServer.makeTls({ ...listen, ...tls }))).pipe(
        Effect.mapError((e) =>
          e._tag === "QmpServerError"
            ? e
            : new QmpServerError({ reason: `Cannot listen on ${host}:${options.port}: ${describe(e.reason)}` })
        )
      )
    const bound = server.address
    const port = bound._tag === "InetAddressV4" || bound._tag === "InetAddressV6" ? bound.port : options.port
    return fromSocketServer(server, { _tag: "Tcp", host, port })
  })
