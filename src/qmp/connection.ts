/**
 * One client connection: bytes in, framed into messages (a stream of JSON
 * objects, with the size cap and the nesting limit), handed to the client's
 * session one at a time; replies and events out through the client's bounded
 * `Outbox` and a single writer fiber.
 *
 * How a connection ends:
 * - the client closes (or half-closes) its side: whatever is queued is still
 *   written, then the server closes its side;
 * - a message over the cap: an error reply (with the message's `id` when it
 *   was read before the cap), then the server closes its side and discards
 *   what the client still sends until it closes;
 * - the client falls behind by more than its outbox bound: the socket is
 *   destroyed at once (logged);
 * - the server shuts down: queued lines are written (for at most the flush
 *   timeout), then the connection is closed.
 * Jobs are never affected.
 */
import { Deferred, type Duration, Effect, Exit, Fiber, Scope } from "effect"
import * as Socket from "effect/socket/Socket"
import { GenericError } from "./errors.ts"
import { MessageScanner } from "./framing.ts"
import { Outbox } from "./outbox.ts"
import { headId, nestingTooDeep } from "./request.ts"
import { makeSession, type SessionOptions } from "./session.ts"
import { errorLine, greetingLine } from "./wire.ts"

/** What the server knows of a connected client. */
export interface Client {
  readonly peer: string
  /** Whether the client negotiated capabilities (and so gets events). */
  readonly negotiated: boolean
  /** Queues an event line; a client too far behind is disconnected. */
  readonly deliver: (line: string) => void
  /** Ends the connection: `shutdown` writes what is queued first, `drop` does not. */
  readonly stop: (how: "shutdown" | "drop") => void
  /** Completes when the connection is fully closed. */
  readonly closed: Effect.Effect<void>
}

export interface ConnectionOptions extends Omit<SessionOptions, "send" | "onNegotiated"> {
  readonly maxLineBytes: number
  readonly outboxMessages: number
  readonly outboxBytes: number
  readonly flushTimeout: Duration.Input
  /** Bytes still read (and discarded) after an over-long message, waiting for the client to close. */
  readonly discardLimit: number
  /** Registers the client with the server; returns its removal. */
  readonly register: (client: Client) => () => void
}

type Stop = { readonly _tag: "Shutdown" } | { readonly _tag: "Drop"; readonly why: string }
type ReadEnd = "eof" | "too-long"

const tooLong = (max: number) =>
  new GenericError({ desc: `QMP input exceeds the maximum message size of ${max} bytes` })

export const handleConnection = (
  socket: Socket.Socket,
  peer: string,
  options: ConnectionOptions
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    // The reader first: a Node socket's writer waits until the reader is acquired.
    const pull = yield* Socket.readerBytes(socket)
    const writerScope = yield* Scope.fork(scope)
    const writer = yield* Scope.provide(socket.writer, writerScope)
    const outbox = new Outbox(options.outboxMessages, options.outboxBytes)
    const stopped = Deferred.makeUnsafe<Stop>()
    const closed = Deferred.makeUnsafe<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closed, undefined))

    const drop = (why: string) => Deferred.doneUnsafe(stopped, Exit.succeed<Stop>({ _tag: "Drop", why }))
    const send = (line: string) => {
      if (outbox.offer(line) === "full") drop(`more than ${options.outboxMessages} messages or ${options.outboxBytes} bytes unread`)
    }
    let negotiated = false
    const client: Client = {
      peer,
      get negotiated() {
        return negotiated
      },
      deliver: send,
      stop: (how) => {
        if (how === "drop") drop("dropped by the server")
        else Deferred.doneUnsafe(stopped, Exit.succeed<Stop>({ _tag: "Shutdown" }))
      },
      closed: Deferred.await(closed)
    }
    const unregister = options.register(client)
    yield* Effect.addFinalizer(() => Effect.sync(unregister))

    const writeLoop: Effect.Effect<void, Socket.SocketError> = Effect.gen(function*() {
      while (true) {
        const lines = yield* outbox.take
        if (lines === undefined) return
        yield* writer.write(lines.join("\n") + "\n")
      }
    })
    const writing = yield* Effect.forkIn(Effect.ignore(writeLoop), scope, { startImmediately: true })

    const session = makeSession({
      ...options,
      send,
      onNegotiated: () => {
        negotiated = true
      }
    })
    send(greetingLine(options.version))

    const scanner = new MessageScanner(options.maxLineBytes)
    const readLoop: Effect.Effect<ReadEnd> = Effect.gen(function*() {
      while (true) {
        const exit = yield* Effect.exit(pull)
        const frames = Exit.isSuccess(exit) ? exit.value.flatMap((chunk) => scanner.push(chunk)) : scanner.end()
        for (const frame of frames) {
          if (frame._tag === "TooLong") {
            send(errorLine(tooLong(options.maxLineBytes), headId(frame.head)))
            return "too-long"
          }
          if (frame._tag === "TooDeep") send(errorLine(nestingTooDeep(), undefined))
          else yield* session.handleLine(frame.bytes)
        }
        if (Exit.isFailure(exit)) return "eof"
      }
    })

    /** Writes what is queued (for at most the flush timeout), then closes our side; false on timeout. */
    const flushAndEnd = Effect.gen(function*() {
      outbox.end()
      const flushed = yield* Effect.timeoutOption(Fiber.await(writing), options.flushTimeout)
      if (flushed._tag === "None") return false
      yield* Scope.close(writerScope, Exit.void)
      return true
    })

    const destroy = Effect.ignore(writer.write(new Socket.CloseEvent(1000)))
    const ended: ReadEnd | Stop = yield* Effect.raceFirst(
      Effect.map(readLoop, (end): ReadEnd | Stop => end),
      Deferred.await(stopped)
    )
    if (ended === "eof") {
      if (!(yield* flushAndEnd)) yield* destroy
    } else if (ended === "too-long") {
      if (!(yield* flushAndEnd)) return yield* destroy
      // Read on (discarding) until the client closes, so that it gets the reply and a clean close.
      // (At most `discardLimit` bytes, for at most the flush timeout.)
      let discarded = 0
      const discard = Effect.ignore(Effect.gen(function*() {
        while (discarded <= options.discardLimit) {
          const chunks = yield* pull
          for (const chunk of chunks) discarded += chunk.length
        }
      }))
      yield* Effect.raceFirst(
        Effect.timeoutOption(discard, options.flushTimeout),
        Effect.asVoid(Deferred.await(stopped))
      )
      yield* destroy
    } else if (ended._tag === "Shutdown") {
      if (!(yield* flushAndEnd)) yield* destroy
    } else {
      outbox.close()
      yield* destroy
      unregister()
      yield* Effect.logWarning(`QMP client ${peer} disconnected: ${ended.why}`)
    }
    outbox.close()
  }).pipe(
    Effect.scoped,
    Effect.catchCause((cause) => Effect.logDebug(`QMP client ${peer} ended with an error`, cause))
  )
