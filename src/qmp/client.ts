/**
 * A small QMP client: connects over a Unix socket, TCP, or TCP with mutual
 * TLS (it shows its certificate and checks the server's), reads the greeting,
 * sends commands one at a time and matches each reply to its command (QMP
 * answers in order), and records the events it receives.
 *
 * `raw` and `nextReply` give byte-level access for protocol tests: send any
 * bytes, then read replies as they come.
 */
import { NodeSocket } from "@effect/platform-node"
import { Cause, Deferred, Effect, Exit, Queue, Schema, type Scope, Semaphore } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Tls from "node:tls"
import { LineSplitter } from "./framing.ts"
import { formatAddress, pemOf } from "./transport.ts"

/**
 * The connection failed, closed, or sent something that is not QMP. When the
 * operating system refused the connection, `code` is its error code
 * (`ENOENT`, `ECONNREFUSED`, `EACCES`, …) and the reason names the address.
 */
export class QmpClientError extends Schema.TaggedError<QmpClientError>()("QmpClientError", {
  reason: Schema.String,
  code: Schema.optionalKey(Schema.String)
}) {
  override get message() {
    return this.reason
  }
}

/**
 * The server answered a command with an error.
 */
export class QmpCommandError extends Schema.TaggedError<QmpCommandError>()("QmpCommandError", {
  errorClass: Schema.String,
  desc: Schema.String
}) {
  override get message() {
    return `${this.errorClass}: ${this.desc}`
  }
}

/** A reply: `{"return": …}` or `{"error": {"class", "desc"}}`, with the request's `id` if it had one. */
export type Reply = Readonly<Record<string, unknown>>

export interface EventMessage {
  readonly event: string
  readonly data?: Readonly<Record<string, unknown>>
  readonly timestamp: { readonly seconds: number; readonly microseconds: number }
}

/**
 * Mutual TLS for a client, in PEM: its certificate and private key, and the
 * CA certificate(s) the server's certificate must be signed by. The server's
 * certificate must also name the host connected to (a DNS name or an IP
 * address in its subjectAltName), or `servername` when that is given.
 */
export interface TlsClientOptions {
  readonly cert: string | Uint8Array
  readonly key: string | Uint8Array
  readonly ca: string | Uint8Array
  readonly servername?: string | undefined
}

export type Target =
  | { readonly path: string }
  | { readonly host: string; readonly port: number; readonly tls?: TlsClientOptions | undefined }

/** Why a connection broke, for the error that ends it: e.g. the TLS alert a server sent. */
const brokenBy = (error: Socket.SocketError): string | undefined => {
  if (error.reason._tag === "SocketCloseError") return undefined
  const cause = (error.reason as { readonly cause?: unknown }).cause
  return cause instanceof Error ? cause.message.split("\n")[0]!.trim() : error.message
}

/** How `target` is shown in messages: `unix:PATH`, `tcp:HOST:PORT`. */
const formatTarget = (target: Target): string =>
  "path" in target
    ? formatAddress({ _tag: "Unix", path: target.path })
    : formatAddress({ _tag: "Tcp", host: target.host, port: target.port })

/** What an error code of a failed connection means, for a Unix socket and for TCP. */
const connectCodes: Record<string, { readonly unix: string; readonly tcp: string }> = {
  ENOENT: {
    unix: "no such socket file (ENOENT); is the server running, and listening on this path?",
    tcp: "no such address (ENOENT)"
  },
  ECONNREFUSED: {
    unix: "nothing is listening on this socket (ECONNREFUSED); its server has stopped, or the file is not a live socket",
    tcp: "nothing is listening on this port (ECONNREFUSED); is the server running, and listening there?"
  },
  EACCES: {
    unix: "permission denied (EACCES); this user may not use the socket file, or a directory above it",
    tcp: "permission denied (EACCES)"
  },
  EPERM: { unix: "operation not permitted (EPERM)", tcp: "operation not permitted (EPERM); a firewall?" },
  ENOTDIR: { unix: "a part of the path is not a directory (ENOTDIR)", tcp: "ENOTDIR" },
  ENAMETOOLONG: { unix: "the path is too long for a socket (ENAMETOOLONG)", tcp: "ENAMETOOLONG" },
  ETIMEDOUT: { unix: "timed out (ETIMEDOUT)", tcp: "no answer from the host (ETIMEDOUT)" },
  EHOSTUNREACH: { unix: "EHOSTUNREACH", tcp: "no route to the host (EHOSTUNREACH)" },
  ENETUNREACH: { unix: "ENETUNREACH", tcp: "the network is unreachable (ENETUNREACH)" },
  ENOTFOUND: { unix: "ENOTFOUND", tcp: "unknown host name (ENOTFOUND)" },
  EAI_AGAIN: { unix: "EAI_AGAIN", tcp: "the host name could not be resolved now (EAI_AGAIN)" }
}

/**
 * The error for a connection the operating system refused, from the Node
 * error effect's socket wraps (`SocketError` → `SocketOpenError` → `cause`):
 * its code and what it means, with the address. Undefined for anything else
 * (a TLS handshake that failed is reported as it is).
 */
export const connectFailure = (target: Target, error: unknown): QmpClientError | undefined => {
  let cause: unknown = error
  // Down the chain of causes to the one with a system error code.
  for (let depth = 0; depth < 4 && cause !== undefined && cause !== null; depth++) {
    const code = (cause as { readonly code?: unknown }).code
    const syscall = (cause as { readonly syscall?: unknown }).syscall
    if (typeof code === "string" && typeof syscall === "string") {
      const meaning = connectCodes[code]?.["path" in target ? "unix" : "tcp"] ?? (cause instanceof Error ? cause.message : code)
      return new QmpClientError({ reason: `cannot connect to ${formatTarget(target)}: ${meaning}`, code })
    }
    cause = (cause as { readonly reason?: unknown; readonly cause?: unknown }).reason ??
      (cause as { readonly cause?: unknown }).cause
  }
  return undefined
}

/** The socket to `target`: a Unix socket, TCP, or TCP with TLS (the handshake happens as it is first read). */
const open = (target: Target): Effect.Effect<Socket.Socket, QmpClientError> => {
  if ("path" in target) return NodeSocket.makeNet({ path: target.path })
  if (target.tls === undefined) return NodeSocket.makeNet({ host: target.host, port: target.port, noDelay: true })
  const tls = target.tls
  return Effect.try({
    try: () => {
      const options = {
        host: target.host,
        port: target.port,
        noDelay: true,
        cert: pemOf(tls.cert),
        key: pemOf(tls.key),
        ca: pemOf(tls.ca),
        minVersion: "TLSv1.2",
        ...(tls.servername === undefined ? {} : { servername: tls.servername })
      } as const
      Tls.createSecureContext(options) // bad credentials are reported here, not as a failed connection
      return options
    },
    catch: (cause) =>
      new QmpClientError({ reason: `cannot use the TLS credentials: ${cause instanceof Error ? cause.message : String(cause)}` })
  }).pipe(Effect.flatMap(NodeSocket.makeTls))
}

export interface QmpClient {
  /** The server's greeting (`{"QMP": {...}}`). */
  readonly greeting: Reply
  /** Sends a command and returns its `return` value; an error reply fails with QmpCommandError. */
  readonly execute: (command: string, args?: Readonly<Record<string, unknown>>) => Effect.Effect<unknown, QmpCommandError | QmpClientError>
  /** Sends one message (an object, or raw text without its newline) and returns the next reply. */
  readonly request: (message: unknown) => Effect.Effect<Reply, QmpClientError>
  /** Sends bytes as they are (no newline added), expecting nothing. */
  readonly raw: (data: string | Uint8Array) => Effect.Effect<void, QmpClientError>
  /** The next reply not yet claimed (after `raw`). */
  readonly nextReply: Effect.Effect<Reply, QmpClientError>
  /** Every event received so far, in order (unless connected with `keepEvents: false`). */
  readonly events: ReadonlyArray<EventMessage>
  /** The first event (received already or later) matching `predicate`. */
  readonly awaitEvent: (predicate: (event: EventMessage) => boolean) => Effect.Effect<EventMessage, QmpClientError>
  /** Completes when the server closes the connection. */
  readonly closed: Effect.Effect<void>
  /** Closes the connection abruptly. */
  readonly destroy: Effect.Effect<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Connects and reads the greeting; `negotiate` (default true) also sends `qmp_capabilities`. */
export const connect = (
  target: Target,
  options: {
    readonly negotiate?: boolean | undefined
    /** Keep every event in `events` (default true); a long-lived client passes false and uses `onEvent`. */
    readonly keepEvents?: boolean | undefined
    /** Called with each event as it arrives. */
    readonly onEvent?: ((event: EventMessage) => void) | undefined
  } = {}
): Effect.Effect<QmpClient, QmpClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* open(target)
    const fail = (reason: string) => new QmpClientError({ reason })
    const pull = yield* Effect.mapError(
      Socket.readerBytes(socket),
      (e) => connectFailure(target, e) ?? fail(`cannot connect: ${brokenBy(e) ?? e.message}`)
    )
    const writer = yield* socket.writer
    const replies = yield* Queue.unbounded<Reply, QmpClientError>()
    const events: Array<EventMessage> = []
    const waiters = new Set<{ readonly predicate: (e: EventMessage) => boolean; readonly done: Deferred.Deferred<EventMessage, QmpClientError> }>()
    const closed = Deferred.makeUnsafe<void>()
    const lock = yield* Semaphore.make(1)

    /** Takes one line from the server; false if it is not a QMP message. */
    const receive = (text: string): boolean => {
      let message: Record<string, unknown>
      try {
        message = JSON.parse(text) as Record<string, unknown>
      } catch {
        return false
      }
      if (typeof message !== "object" || message === null || Array.isArray(message)) return false
      if (typeof message.event === "string") {
        const event = message as unknown as EventMessage
        if (options.keepEvents ?? true) events.push(event)
        options.onEvent?.(event)
        for (const waiter of waiters) {
          if (waiter.predicate(event)) {
            waiters.delete(waiter)
            Deferred.doneUnsafe(waiter.done, Exit.succeed(event))
          }
        }
      } else {
        Queue.offerUnsafe(replies, message)
      }
      return true
    }

    const splitter = new LineSplitter(Number.MAX_SAFE_INTEGER)
    let ending = "connection closed"
    const reading = Effect.gen(function*() {
      while (true) {
        const exit = yield* Effect.exit(pull)
        if (Exit.isFailure(exit)) {
          // A server that refuses this client's certificate says why (a TLS alert) and closes.
          const broken = Cause.findErrorOption(exit.cause)
          const why = broken._tag === "Some" ? brokenBy(broken.value) : undefined
          if (why !== undefined) ending = `connection closed: ${why}`
        }
        const frames = Exit.isSuccess(exit) ? exit.value.flatMap((chunk) => splitter.push(chunk)) : splitter.end()
        for (const frame of frames) {
          const text = frame._tag === "Line" ? decoder.decode(frame.bytes) : ""
          if (!receive(text)) {
            ending = `not a QMP message: ${text.slice(0, 200)}`
            return
          }
        }
        if (Exit.isFailure(exit)) return
      }
    }).pipe(
      Effect.ensuring(Effect.sync(() => {
        const error = fail(ending)
        Queue.failCauseUnsafe(replies, Cause.fail(error))
        for (const waiter of waiters) Deferred.doneUnsafe(waiter.done, Exit.fail(error))
        waiters.clear()
        Deferred.doneUnsafe(closed, Exit.void)
      }))
    )
    yield* Effect.forkScoped(reading, { startImmediately: true })

    const raw = (data: string | Uint8Array) =>
      Effect.mapError(writer.write(typeof data === "string" ? encoder.encode(data) : data), (e) => fail(e.message))
    const nextReply = Queue.take(replies)
    const connectionClosed = Effect.andThen(Deferred.await(closed), Effect.fail(fail("connection closed")))
    const request = (message: unknown) =>
      lock.withPermits(1)(
        Effect.suspend(() =>
          Deferred.isDoneUnsafe(closed)
            ? Effect.fail(fail("connection closed"))
            : Effect.raceFirst(
              Effect.andThen(raw(`${typeof message === "string" ? message : JSON.stringify(message)}\n`), nextReply),
              // A write to a socket the server has closed may never fail: the close ends the wait.
              connectionClosed
            )
        )
      )
    const execute = (command: string, args?: Readonly<Record<string, unknown>>) =>
      Effect.flatMap(
        request(args === undefined ? { execute: command } : { execute: command, arguments: args }),
        (reply): Effect.Effect<unknown, QmpCommandError | QmpClientError> => {
          if ("return" in reply) return Effect.succeed(reply.return)
          const error = reply.error as { class?: unknown; desc?: unknown } | undefined
          return error === undefined
            ? Effect.fail(fail(`not a QMP reply: ${JSON.stringify(reply)}`))
            : Effect.fail(new QmpCommandError({ errorClass: String(error.class), desc: String(error.desc) }))
        }
      )

    const greeting = yield* Effect.mapError(nextReply, (error) =>
      // A TLS server that refuses this client's certificate just closes the connection.
      "host" in target && target.tls !== undefined && error.reason === "connection closed"
        ? fail("connection closed before the greeting (does the server accept this client's certificate?)")
        : error)
    if (!("QMP" in greeting)) return yield* fail(`not a QMP greeting: ${JSON.stringify(greeting)}`)
    const client: QmpClient = {
      greeting,
      execute,
      request,
      raw,
      nextReply,
      events,
      awaitEvent: (predicate) =>
        Effect.suspend(() => {
          const seen = events.find(predicate)
          if (seen !== undefined) return Effect.succeed(seen)
          const done = Deferred.makeUnsafe<EventMessage, QmpClientError>()
          if (Deferred.isDoneUnsafe(closed)) return Effect.fail(fail("connection closed"))
          waiters.add({ predicate, done })
          return Deferred.await(done)
        }),
      closed: Deferred.await(closed),
      destroy: Effect.ignore(writer.write(new Socket.CloseEvent(1000)))
    }
    if (options.negotiate ?? true) yield* Effect.mapError(execute("qmp_capabilities"), (e) => fail(e.message))
    return client
  })
