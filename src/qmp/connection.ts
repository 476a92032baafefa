/**
 * One client connection: bytes in, framed into messages (a stream of JSON
 * objects, with the size cap and the nesting limit), handed to the client's
 * session one at a time; replies and events out through the client's bounded
 * `Outbox` and a single writer fiber (or, while that waits, written by the
 * outbox itself at the end of the tick that queued them).
 *
 * How a connection begins: with the greeting (the server has taken it; one
 * over the connection limit is turned away before this, see `server.ts`). A
 * client that has not negotiated capabilities within the negotiation timeout
 * gets an error line and is closed.
 *
 * What a client may send:
 * - a first message that is an HTTP request line (a web page posting to a
 *   TCP port): the connection is destroyed at once, and nothing it sent is
 *   run — neither that line nor anything after it;
 * - a message over the cap: an error reply (with the message's `id` when it
 *   was read before the cap), then the server closes its side and discards
 *   what the client still sends until it closes;
 * - an unfinished message that gets no new byte for the partial-message
 *   timeout, or whose bytes would overspend the input budget that every
 *   connection shares: an error line, then closed as for an over-long one.
 *
 * How a connection ends:
 * - the client closes (or half-closes) its side: every message it sent runs,
 *   whatever is queued is still written, then the server closes its side;
 * - the client resets the connection (or closes it for good, so that writing
 *   to it fails): every complete message it had sent still runs, in order —
 *   those Node had received but nobody read yet included — with the replies
 *   dropped; then the connection is torn down;
 * - the client falls behind by more than its outbox bound: the socket is
 *   destroyed at once (logged);
 * - the server shuts down: queued lines are written (for at most the flush
 *   timeout), then the connection is closed.
 * A connection gives its place back (for the connection limit) as soon as it
 * begins to close. Jobs are never affected.
 */
import { NodeSocket } from "@effect/platform-node"
import { Cause, Clock, Deferred, Duration, Effect, Exit, Fiber, Option, Result, Scope } from "effect"
import * as Socket from "effect/socket/Socket"
import type * as Net from "node:net"
import type { Duplex } from "node:stream"
import { monotonicMillisUnsafe } from "../internal/monotonicMillis.ts"
import type { Deadlines } from "./deadlines.ts"
import { GenericError } from "./errors.ts"
import { type InputBudget, looksLikeHttpRequest, maxNesting, MessageScanner } from "./framing.ts"
import { Outbox, textOf, type WriteNow } from "./outbox.ts"
import { headId, nestingTooDeep, type RequestId } from "./request.ts"
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

/** A connection the server took: its place, and its registration. */
export interface Admitted {
  /** Registers the client (events, shutdown); returns its removal, which also gives its place back. */
  readonly register: (client: Client) => () => void
  /** Gives the connection's place back (as it begins to close); idempotent. */
  readonly release: () => void
}

export interface ConnectionOptions extends Omit<SessionOptions, "send" | "onNegotiated"> {
  readonly maxLineBytes: number
  readonly outboxMessages: number
  readonly outboxBytes: number
  readonly flushTimeout: Duration.Input
  /** Bytes still read (and discarded) after an over-long message, waiting for the client to close. */
  readonly discardLimit: number
  /** How long a client may take to send `qmp_capabilities`… */
  readonly negotiationTimeout: Duration.Input
  /** …timed for every connection by the server's one timer. */
  readonly negotiationDeadlines: Deadlines
  /** How long an unfinished message may go without a new byte. */
  readonly partialMessageTimeout: Duration.Input
  /** Bytes of unfinished messages, shared by every connection. */
  readonly inputBudget: InputBudget
}

/**
 * An error line, then the connection is closed. After an over-long message the
 * server reads on (discarding) so that the client, still sending, gets a clean
 * close; a client refused for what it costs (a limit) is not read any more,
 * and is logged.
 */
type Refusal = { readonly _tag: "Refuse"; readonly error: GenericError; readonly id: RequestId; readonly limit: boolean }
/** The server ends the connection. */
type Stop = { readonly _tag: "Shutdown" } | { readonly _tag: "Drop"; readonly why: string }
/** How reading ended: the client closed its side, reset the connection, spoke HTTP, or broke a limit. */
type ReadEnd = { readonly _tag: "Eof" } | { readonly _tag: "Reset" } | { readonly _tag: "Http" } | Refusal

const refusal = (desc: string, id: RequestId = undefined, limit = true): Refusal => ({
  _tag: "Refuse",
  error: new GenericError({ desc }),
  id,
  limit
})

const tooLong = (max: number, head: Uint8Array) =>
  refusal(`QMP input exceeds the maximum message size of ${max} bytes`, headId(head), false)

const overBudget = (limit: number) => refusal(`Too much unfinished input across all connections (limit ${limit} bytes)`)

const partialTimedOut = (timeout: Duration.Input) =>
  refusal(`QMP input timed out: no data for ${Duration.format(Duration.fromInputUnsafe(timeout))} within a message`)

const negotiationTimedOut = (timeout: Duration.Input) =>
  refusal(`Capabilities negotiation timed out after ${Duration.format(Duration.fromInputUnsafe(timeout))}`)

/** Whether the reader failed because the client closed its side (rather than a reset or another error). */
const closedCleanly = (cause: Cause.Cause<Socket.SocketError>): boolean => {
  const error = Cause.findErrorOption(cause)
  return error._tag === "Some" && error.value.reason._tag === "SocketCloseError" && error.value.reason.code === 1000
}

const encoder = new TextEncoder()

/**
 * What Node received from the client and nobody read yet. A socket that
 * failed (a reset) keeps these bytes; the socket's reader no longer hands
 * them out, so they are taken here.
 */
const unread = (conn: Duplex | undefined): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  if (conn === undefined) return chunks
  while (true) {
    const chunk = conn.read() as Uint8Array | string | null
    if (chunk === null) return chunks
    chunks.push(typeof chunk === "string" ? encoder.encode(chunk) : chunk)
  }
}

/**
 * Waits until the event loop has gone once through its I/O phase: by then
 * Node has read whatever a new connection's client had sent before it was
 * accepted. A client may connect, send its commands and reset the connection
 * before the server gets to it; writing to it first would fail on the reset
 * and destroy the socket with those bytes still unread in the kernel.
 */
const afterFirstRead: Effect.Effect<void> = Effect.callback<void>((resume) => {
  let pending = setImmediate(() => {
    pending = setImmediate(() => resume(Effect.void))
  })
  return Effect.sync(() => clearImmediate(pending))
})

/**
 * The outbox's write without waiting: only what Node's socket takes without
 * asking to wait (its `write` returns true when what it holds stays under
 * the high-water mark), so that a client reading slowly is waited for by the
 * writer exactly as if it had written this too. Anything unusual (a socket
 * closing, a write that throws) is left to the writer, which reports it.
 */
const writeNowTo = (conn: Net.Socket): WriteNow => (text) => {
  if (!conn.writable || conn.writableNeedDrain || conn.writableLength + text.length >= conn.writableHighWaterMark) {
    return false
  }
  try {
    conn.write(text)
    return true
  } catch {
    return false
  }
}

/** An admitted connection, from the greeting to the end. */
export const serveConnection = (
  socket: Socket.Socket,
  peer: string,
  admission: Admitted,
  options: ConnectionOptions
): Effect.Effect<void> =>
  Effect.gen(function*() {
    yield* Effect.addFinalizer(() => Effect.sync(admission.release))
    const conn = Option.getOrUndefined(yield* Effect.serviceOption(NodeSocket.NetSocket))
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    const outbox = new Outbox(options.outboxMessages, options.outboxBytes, conn === undefined ? undefined : writeNowTo(conn))
    /** How the connection ends: the first of reading's end, a stop, the negotiation timeout. */
    const ended = Deferred.makeUnsafe<ReadEnd | Stop>()
    const end = (how: ReadEnd | Stop) => Deferred.doneUnsafe(ended, Exit.succeed(how))
    /** A stop from the server, also once reading has ended. */
    const stopped = Deferred.makeUnsafe<Stop>()
    const stop = (how: Stop) => {
      Deferred.doneUnsafe(stopped, Exit.succeed(how))
      end(how)
    }
    const closed = Deferred.makeUnsafe<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closed, undefined))

    const drop = (why: string) => stop({ _tag: "Drop", why })
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
        else stop({ _tag: "Shutdown" })
      },
      closed: Deferred.await(closed)
    }
    const unregister = admission.register(client)
    yield* Effect.addFinalizer(() => Effect.sync(unregister))

    // The reader first: a Node socket's writer waits until the reader is acquired. A client that
    // reset the connection before this leaves no reader, but what it sent is still to be run.
    const reader = yield* Effect.result(Socket.readerBytes(socket))
    const pull = Result.isSuccess(reader) ? reader.success : Effect.fail(reader.failure)
    if (Result.isFailure(reader)) outbox.close()
    const writerScope = yield* Scope.fork(scope)
    const writer = yield* Scope.provide(socket.writer, writerScope)

    const writeLoop: Effect.Effect<void, Socket.SocketError> = Effect.gen(function*() {
      yield* afterFirstRead
      while (true) {
        const lines = yield* outbox.take
        if (lines === undefined) return
        yield* writer.write(textOf(lines))
      }
    })
    const writing = yield* Effect.forkIn(Effect.ignore(writeLoop), scope, { startImmediately: true })

    // Timed from before the greeting is queued: a client that has the greeting is being timed.
    const negotiation = options.negotiationDeadlines.add(() => end(negotiationTimedOut(options.negotiationTimeout)))
    yield* Effect.addFinalizer(() => Effect.sync(negotiation.cancel))
    const session = makeSession({
      ...options,
      send,
      onNegotiated: () => {
        negotiated = true
        negotiation.cancel()
      }
    })
    send(greetingLine(options.version))

    const scanner = new MessageScanner(options.maxLineBytes, maxNesting, options.inputBudget)
    yield* Effect.addFinalizer(() => Effect.sync(() => scanner.discard()))
    const partialTimeout = Duration.toMillis(Duration.fromInputUnsafe(options.partialMessageTimeout))
    /** When the last bytes came: an unfinished message times out `partialTimeout` after them. */
    // Monotonic: a wall clock set back would stretch the timeout.
    const now = () => monotonicMillisUnsafe(clock)
    let lastInput = now()
    let firstMessage = true

    /** The next chunks; `undefined` when an unfinished message got no new byte in time. */
    const nextInput: Effect.Effect<ReadonlyArray<Uint8Array> | undefined, Socket.SocketError> = Effect.suspend(() => {
      if (!scanner.unfinished) return pull
      // Bytes that came while a command ran are taken at once, however late.
      return Effect.map(
        Effect.timeoutOption(pull, Math.max(0, lastInput + partialTimeout - now())),
        Option.getOrUndefined
      )
    })

    const readLoop: Effect.Effect<ReadEnd> = Effect.gen(function*() {
      while (true) {
        const input = yield* Effect.exit(nextInput)
        let end: ReadEnd | undefined = undefined
        let chunks: ReadonlyArray<Uint8Array>
        if (Exit.isSuccess(input)) {
          if (input.value === undefined) return partialTimedOut(options.partialMessageTimeout)
          chunks = input.value
          lastInput = now()
        } else {
          end = closedCleanly(input.cause) ? { _tag: "Eof" } : { _tag: "Reset" }
          // The client is gone: its replies can no longer be written, but what it sent still runs.
          if (end._tag === "Reset") outbox.close()
          chunks = unread(conn)
        }
        const frames = chunks.length === 1 ? scanner.push(chunks[0]!) : chunks.flatMap((chunk) => scanner.push(chunk))
        if (end !== undefined) frames.push(...scanner.end())
        for (const frame of frames) {
          if (firstMessage) {
            firstMessage = false
            // QMP begins with `{`: this is a web page's request (or another protocol), not a client.
            if (frame._tag === "Message" && looksLikeHttpRequest(frame.bytes)) return { _tag: "Http" }
          }
          if (frame._tag === "TooLong") return tooLong(options.maxLineBytes, frame.head)
          if (frame._tag === "OverBudget") return overBudget(options.inputBudget.limit)
          if (frame._tag === "TooDeep") send(errorLine(nestingTooDeep(), undefined))
          else yield* session.handleLine(frame.bytes)
        }
        if (end !== undefined) return end
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

    // Without a reader, the socket's writer would wait forever: the socket is destroyed directly.
    const destroy = Result.isSuccess(reader) || conn === undefined
      ? Effect.ignore(writer.write(new Socket.CloseEvent(1000)))
      : Effect.sync(() => conn.destroy())
    const reading = yield* Effect.forkIn(Effect.flatMap(readLoop, (how) => Effect.sync(() => end(how))), scope, {
      startImmediately: true
    })
    const how = yield* Deferred.await(ended)
    yield* Fiber.interrupt(reading)
    // The connection's place is free before the client can see it closed.
    admission.release()
    switch (how._tag) {
      case "Eof":
      case "Shutdown": {
        if (!(yield* flushAndEnd)) yield* destroy
        break
      }
      case "Reset": {
        yield* destroy
        break
      }
      case "Http": {
        outbox.close()
        yield* destroy
        yield* Effect.logWarning(`QMP client ${peer} sent an HTTP request: connection closed, nothing it sent was run`)
        break
      }
      case "Refuse": {
        send(errorLine(how.error, how.id))
        if (how.limit) yield* Effect.logWarning(`QMP client ${peer} disconnected: ${how.error.desc}`)
        if (!(yield* flushAndEnd) || how.limit) return yield* destroy
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
        break
      }
      case "Drop": {
        outbox.close()
        yield* destroy
        unregister()
        yield* Effect.logWarning(`QMP client ${peer} disconnected: ${how.why}`)
      }
    }
    outbox.close()
  }).pipe(
    Effect.scoped,
    Effect.catchCause((cause) => Effect.logDebug(`QMP client ${peer} ended with an error`, cause))
  )
