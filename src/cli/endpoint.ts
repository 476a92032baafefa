/**
 * Where a server listens or a client connects: `--socket PATH` (a Unix
 * socket) or `--tcp HOST:PORT` (`[::1]:4444` for an IPv6 address; a bare
 * `PORT` means 127.0.0.1). A client takes one of them, `./effect-jobs.sock`
 * when neither is given; a server may take both.
 */
import { Effect, Option } from "effect"
import { CliError, Flag } from "effect/cli"
import * as Qmp from "../Qmp.ts"

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

/** The flags of a client command. */
export const clientFlags = {
  socket: socketFlag(`The server's Unix socket (default ${Qmp.defaultSocketPath})`),
  tcp: tcpFlag("The server's TCP address instead of a socket")
}

/** A client's target: the one endpoint given, or the default socket. Both given is a usage error. */
export const clientTarget = (
  flags: { readonly socket: Option.Option<string>; readonly tcp: Option.Option<TcpEndpoint> }
): Qmp.Target => {
  if (Option.isSome(flags.tcp)) return flags.tcp.value
  return { path: Option.getOrElse(flags.socket, () => Qmp.defaultSocketPath) }
}

/** For `Command.validate`: `--socket` and `--tcp` name one server, so a client takes only one. */
export const oneEndpoint = (
  flags: { readonly socket: Option.Option<string>; readonly tcp: Option.Option<TcpEndpoint> }
): Effect.Effect<void, CliError.ValidationError> =>
  Option.isSome(flags.socket) && Option.isSome(flags.tcp)
    ? Effect.fail(
      new CliError.ValidationError({ message: "--socket and --tcp cannot be used together: pick one server address" })
    )
    : Effect.void

/** How a target is shown to the user: `unix:PATH` or `tcp:HOST:PORT`. */
export const describeTarget = (target: Qmp.Target): string =>
  "path" in target
    ? Qmp.formatAddress({ _tag: "Unix", path: target.path })
    : Qmp.formatAddress({ _tag: "Tcp", host: target.host, port: target.port })
