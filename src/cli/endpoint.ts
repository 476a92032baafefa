/**
 * Where a server listens or a client connects: `--socket PATH` (a Unix
 * socket) or `--tcp HOST:PORT` (`[::1]:4444` for an IPv6 address; a bare
 * `PORT` means 127.0.0.1). A client takes one of them, `./effect-jobs.sock`
 * when neither is given; a server may take both.
 *
 * TCP may use mutual TLS: `--tls-cert FILE`, `--tls-key FILE` and
 * `--tls-ca FILE` (PEM), all three or none. The server shows its certificate
 * and takes only clients with a certificate its CA signed; the client shows
 * its own and checks the server's against its CA.
 */
import { Effect, FileSystem, Option } from "effect"
import { CliError, Flag } from "effect/cli"
import * as Qmp from "../Qmp.ts"
import { isLoopback } from "../qmp/transport.ts"
import { type CommandFailed, fail } from "./exit.ts"

export interface TcpEndpoint {
  readonly host: string
  readonly port: number
}

export const defaultTcpHost = "127.0.0.1"

/** Reads `HOST:PORT`, `[IPV6]:PORT` or `PORT`; otherwise throws an Error saying what was expected. */
export const parseTcp = (text: string): TcpEndpoint => {
  const trimmed = text.trim()
  let host: string
  let port: string
  const bracketed = /^\[([^\]]+)\]:(.*)$/.exec(trimmed)
  if (bracketed !== null) {
    host = bracketed[1]!
    port = bracketed[2]!
  } else if (/^\d+$/.test(trimmed)) {
    host = defaultTcpHost
    port = trimmed
  } else {
    const colon = trimmed.lastIndexOf(":")
    if (colon <= 0) throw new Error("HOST:PORT, e.g. 127.0.0.1:4444")
    host = trimmed.slice(0, colon)
    port = trimmed.slice(colon + 1)
    if (host.includes(":")) throw new Error(`an IPv6 address in brackets: [${host}]:${port}`)
  }
  if (!/^\d+$/.test(port)) throw new Error(`HOST:PORT with a port number, not '${port}'`)
  const number = Number(port)
  if (number > 65535) throw new Error(`a port from 0 to 65535, not ${number}`)
  return { host, port: number }
}

/** `--socket PATH`, optional. */
export const socketFlag = (description: string): Flag.Flag<Option.Option<string>> =>
  Flag.String("socket").pipe(Flag.withMetavar("PATH"), Flag.withDescription(description), Flag.optional)

/** `--tcp HOST:PORT`, optional, checked as it is parsed. */
export const tcpFlag = (description: string): Flag.Flag<Option.Option<TcpEndpoint>> =>
  Flag.String("tcp").pipe(
    Flag.withMetavar("HOST:PORT"),
    Flag.withDescription(description),
    Flag.mapTryCatch(parseTcp, (error) => error instanceof Error ? error.message : String(error)),
    Flag.optional
  )

/** The TLS flags as given: each a PEM file's path. */
export interface TlsFlags {
  readonly tlsCert: Option.Option<string>
  readonly tlsKey: Option.Option<string>
  readonly tlsCa: Option.Option<string>
}

/** `--tls-cert`, `--tls-key`, `--tls-ca`, for a server or a client. */
export const tlsFlags = (role: "server" | "client") => {
  const file = (name: string, description: string) =>
    Flag.String(name).pipe(Flag.withMetavar("FILE"), Flag.withDescription(description), Flag.optional)
  return {
    tlsCert: file(
      "tls-cert",
      role === "server"
        ? "Mutual TLS on --tcp: the server's certificate (PEM)"
        : "Mutual TLS: this client's certificate (PEM), signed by the CA the server trusts"
    ),
    tlsKey: file("tls-key", "Mutual TLS: the private key of --tls-cert (PEM)"),
    tlsCa: file(
      "tls-ca",
      role === "server"
        ? "Mutual TLS: the CA certificate (PEM); only clients with a certificate it signed are served"
        : "Mutual TLS: the CA certificate (PEM) that the server's certificate must be signed by"
    )
  }
}

/** The TLS flags not given (all three when TLS is not asked for). */
export const missingTls = (flags: TlsFlags): ReadonlyArray<string> =>
  [["--tls-cert FILE", flags.tlsCert], ["--tls-key FILE", flags.tlsKey], ["--tls-ca FILE", flags.tlsCa]]
    .filter(([, value]) => Option.isNone(value as Option.Option<string>))
    .map(([name]) => name as string)

/** Whether TLS is asked for (any of its flags given). */
export const wantsTls = (flags: TlsFlags): boolean => missingTls(flags).length < 3

/** A usage error unless the TLS flags are all given or none is. */
export const completeTls = (flags: TlsFlags): Effect.Effect<void, CliError.ValidationError> => {
  const missing = missingTls(flags)
  return missing.length === 1 || missing.length === 2
    ? Effect.fail(
      new CliError.ValidationError({
        message: `mutual TLS needs --tls-cert, --tls-key and --tls-ca together: missing ${missing.join(", ")}`
      })
    )
    : Effect.void
}

/** Reads the TLS files given (all three, or none: `Option.none()`); a file that cannot be read fails. */
export const readTls = (
  flags: TlsFlags
): Effect.Effect<Option.Option<Qmp.TlsServerOptions>, CommandFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isNone(flags.tlsCert) || Option.isNone(flags.tlsKey) || Option.isNone(flags.tlsCa)) {
      return Option.none()
    }
    const fs = yield* FileSystem.FileSystem
    const read = (flag: string, path: string) =>
      fs.readFileString(path).pipe(Effect.catch((error) => fail(`cannot read ${flag} ${path}: ${error.message}`)))
    return Option.some({
      cert: yield* read("--tls-cert", flags.tlsCert.value),
      key: yield* read("--tls-key", flags.tlsKey.value),
      ca: yield* read("--tls-ca", flags.tlsCa.value)
    })
  })

/** The flags of a client command. */
export const clientFlags = {
  socket: socketFlag(`The server's Unix socket (default ${Qmp.defaultSocketPath})`),
  tcp: tcpFlag("The server's TCP address instead of a socket"),
  ...tlsFlags("client")
}

export interface ClientFlags extends TlsFlags {
  readonly socket: Option.Option<string>
  readonly tcp: Option.Option<TcpEndpoint>
}

/** A client's target: the one endpoint given (with TLS if asked for), or the default socket. */
export const clientTarget = (flags: ClientFlags): Effect.Effect<Qmp.Target, CommandFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (Option.isNone(flags.tcp)) return { path: Option.getOrElse(flags.socket, () => Qmp.defaultSocketPath) }
    const tls = yield* readTls(flags)
    return Option.isSome(tls) ? { ...flags.tcp.value, tls: tls.value } : flags.tcp.value
  })

/**
 * For `Command.validate`: `--socket` and `--tcp` name one server, so a client
 * takes only one; TLS takes all three of its flags, and only over TCP.
 */
export const oneEndpoint = (flags: ClientFlags): Effect.Effect<void, CliError.ValidationError> => {
  const invalid = (message: string) => Effect.fail(new CliError.ValidationError({ message }))
  if (Option.isSome(flags.socket) && Option.isSome(flags.tcp)) {
    return invalid("--socket and --tcp cannot be used together: pick one server address")
  }
  if (wantsTls(flags) && Option.isNone(flags.tcp)) {
    return invalid("--tls-cert, --tls-key and --tls-ca are for --tcp HOST:PORT (a Unix socket has no TLS)")
  }
  return completeTls(flags)
}

/**
 * For a server's `Command.validate`: QMP has no authentication of its own, so
 * remote access (`--allow-remote`, or a non-loopback `--tcp` host) needs
 * `--allow-remote`, `--tcp` and all three TLS flags; TLS needs `--tcp`.
 */
export const remoteNeedsTls = (
  flags: TlsFlags & { readonly tcp: Option.Option<TcpEndpoint>; readonly allowRemote: boolean }
): Effect.Effect<void, CliError.ValidationError> => {
  const invalid = (message: string) => Effect.fail(new CliError.ValidationError({ message }))
  const remoteHost = Option.isSome(flags.tcp) && !isLoopback(flags.tcp.value.host) ? flags.tcp.value.host : undefined
  if (remoteHost !== undefined || flags.allowRemote) {
    const missing = [
      ...(flags.allowRemote ? [] : ["--allow-remote"]),
      ...(Option.isSome(flags.tcp) ? [] : ["--tcp HOST:PORT"]),
      ...missingTls(flags)
    ]
    if (missing.length === 0) return Effect.void
    const what = remoteHost !== undefined
      ? `listening on ${remoteHost} (not a loopback address) needs --allow-remote and mutual TLS`
      : "remote access (--allow-remote) needs mutual TLS"
    return invalid(`${what}, as QMP has no authentication of its own: missing ${missing.join(", ")}`)
  }
  if (wantsTls(flags) && Option.isNone(flags.tcp)) {
    return invalid("--tls-cert, --tls-key and --tls-ca are for --tcp HOST:PORT (a Unix socket has no TLS)")
  }
  return completeTls(flags)
}

/** How a target is shown to the user: `unix:PATH`, `tcp:HOST:PORT`, or `tcp:HOST:PORT (TLS)`. */
export const describeTarget = (target: Qmp.Target): string =>
  "path" in target
    ? Qmp.formatAddress({ _tag: "Unix", path: target.path })
    : `${Qmp.formatAddress({ _tag: "Tcp", host: target.host, port: target.port })}${target.tls === undefined ? "" : " (TLS)"}`
