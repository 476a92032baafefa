/**
 * A small QMP client: connects over a Unix socket or TCP, reads the greeting,
 * sends commands one at a time and matches each reply to its command (QMP
 * answers in order), and records the events it receives.
 *
 * `raw` and `nextReply` give byte-level access for protocol tests: send any
 * bytes, then read replies as they come.
 */
import { NodeSocket } from "@effect/platform-node"
import { Cause, Deferred, Effect, Exit, Queue, Schema, type Scope, Semaphore } from "effect"
import * as Socket from "effect/socket/Socket"
import { LineSplitter } from "./framing.ts"

/**
 * The connection failed, closed, or sent something that is not QMP.
 */
export class QmpClientError extends Schema.TaggedError<QmpClientError>()("QmpClientError", {
  reason: Schema.String
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

export type Target = { readonly path: string } | { readonly host: string; readonly port: number }

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
    const socket = yield* NodeSocket.makeNet("path" in target ? { path: target.path } : { host: target.host, port: target.port, noDelay: true })
    const fail = (reason: string) => new QmpClientError({ reason })
    const pull = yield* Effect.mapError(Socket.readerBytes(socket), (e) => fail(`cannot connect: ${e.message}`))
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

    const greeting = yield* nextReply
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
