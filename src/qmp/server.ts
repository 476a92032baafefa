/**
 * The QMP server: listeners (Unix socket and/or TCP), the clients connected to
 * them, and the fan-out of engine events to negotiated clients.
 *
 * One subscription to the engine feeds every client: each event is turned into
 * its QMP line once, stamped once, and offered to each negotiated client's
 * outbox without waiting. If that subscription ever falls behind the engine
 * (`EventsOverflow`), it is renewed and the negotiated clients — who missed
 * events — are disconnected rather than misled.
 *
 * Shutting down (`quit`, `shutdown`, or the scope closing, e.g. on a signal):
 * every negotiated client gets QEMU's `SHUTDOWN` event, queued lines are
 * written, connections are closed and the socket file is removed. The jobs
 * are force-cancelled when the `Jobs` layer closes, after the server.
 */
import { Clock, Context, Deferred, Duration, Effect, Exit, type FileSystem, Layer, type Path, Scope, Stream } from "effect"
import type { EventsOverflow } from "../JobError.ts"
import type { JobEvent } from "../JobEvent.ts"
import { Jobs } from "../Jobs.ts"
import type { ShutdownReason } from "./command.ts"
import { commandTable } from "./commands/index.ts"
import { type Client, handleConnection } from "./connection.ts"
import { defaultBlockJobTypes, toQmpEvent } from "./events.ts"
import { maxLineBytes } from "./framing.ts"
import { type ListenAddress, type Listener, listenTcp, listenUnix, type QmpServerError, type TcpOptions } from "./transport.ts"
import { eventLine, timestampFromNanos, version } from "./wire.ts"

export interface ServerOptions {
  /** The Unix socket's path (default `./effect-jobs.sock`); `false` for none. */
  readonly socket?: string | false | undefined
  /** A TCP listener too (host 127.0.0.1 unless given; other hosts need `allowRemote`). */
  readonly tcp?: TcpOptions | undefined
  /** Job types that `block-job-*`, `query-block-jobs` and `BLOCK_JOB_*` events cover (default backup, mirror, commit, stream). */
  readonly blockJobTypes?: ReadonlyArray<string> | undefined
  /** The longest message accepted, in bytes (default 1 MiB). */
  readonly maxLineBytes?: number | undefined
  /** A client's outgoing queue: messages (default 1024)… */
  readonly outgoingMessages?: number | undefined
  /** …and bytes (default 8 MiB) it may fall behind before it is disconnected. */
  readonly outgoingBytes?: number | undefined
  /** Engine events the server's own subscription may fall behind (default 65536). */
  readonly eventBuffer?: number | undefined
  /** How long a closing connection may take to write what is queued (default 2 s). */
  readonly flushTimeout?: Duration.Input | undefined
}

export const defaultSocketPath = "./effect-jobs.sock"

export interface QmpServerShape {
  /** Where the server listens (the TCP port as bound). */
  readonly addresses: ReadonlyArray<ListenAddress>
  /** Clients connected now. */
  readonly clientCount: Effect.Effect<number>
  /** Asks the server to shut down, as `quit` does. */
  readonly shutdown: (reason?: ShutdownReason) => Effect.Effect<void>
  /** Waits until the server has shut down (after `quit` or `shutdown`): connections closed, socket file removed. */
  readonly awaitShutdown: Effect.Effect<ShutdownReason>
}

export class QmpServer extends Context.Service<QmpServer, QmpServerShape>()("effect-jobs/QmpServer") {}

const shutdownEventReason = (reason: ShutdownReason): string =>
  reason === "quit" ? "host-qmp-quit" : reason === "signal" ? "host-signal" : "host-ui"

export const make = (
  options: ServerOptions = {}
): Effect.Effect<QmpServerShape, QmpServerError, Jobs | FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const blockJobTypes = new Set(options.blockJobTypes ?? defaultBlockJobTypes)
    const clients = new Set<Client>()
    const shutdownRequested = yield* Deferred.make<ShutdownReason>()
    const shutdown = (reason: ShutdownReason = "shutdown") => Effect.asVoid(Deferred.succeed(shutdownRequested, reason))

    // ---- events: one subscription, made now, so a client sees every event from its negotiation on
    const broadcast = (line: string) => {
      for (const client of clients) if (client.negotiated) client.deliver(line)
    }
    const forward = (stream: Stream.Stream<JobEvent, EventsOverflow>) =>
      Stream.runForEach(stream, (event) =>
        Effect.suspend(() => {
          let listening = false
          for (const client of clients) listening ||= client.negotiated
          if (!listening) return Effect.void
          const qmp = toQmpEvent(event, blockJobTypes)
          if (qmp === undefined) return Effect.void
          return Effect.map(Clock.currentTimeNanos, (nanos) =>
            broadcast(eventLine(qmp.event, qmp.data, timestampFromNanos(nanos))))
        }))
    const capacity = options.eventBuffer ?? 65536
    const first = yield* jobs.subscribe({ capacity })
    const pump = (stream: typeof first): Effect.Effect<void, never, Scope.Scope> =>
      Effect.catch(forward(stream), (overflow) =>
        Effect.gen(function*() {
          const renewed = yield* jobs.subscribe({ capacity })
          yield* Effect.logError(`QMP event forwarding fell behind: ${overflow.message}; disconnecting event listeners`)
          for (const client of clients) if (client.negotiated) client.stop("drop")
          return yield* pump(renewed)
        }))
    yield* Effect.forkScoped(pump(first), { startImmediately: true })

    // ---- listeners, in a scope of their own: shutting down closes it before the server's scope ends
    const serverScope = yield* Scope.fork(yield* Effect.scope)
    const listeners: Array<Listener> = []
    const socketPath = options.socket === undefined ? defaultSocketPath : options.socket
    if (socketPath !== false) listeners.push(yield* Scope.provide(listenUnix(socketPath), serverScope))
    if (options.tcp !== undefined) listeners.push(yield* Scope.provide(listenTcp(options.tcp), serverScope))

    const connectionOptions = {
      jobs,
      commands: commandTable,
      blockJobTypes,
      version,
      shutdown,
      maxLineBytes: options.maxLineBytes ?? maxLineBytes,
      outboxMessages: options.outgoingMessages ?? 1024,
      outboxBytes: options.outgoingBytes ?? 8 * 1024 * 1024,
      flushTimeout: options.flushTimeout ?? Duration.seconds(2),
      discardLimit: 64 * 1024 * 1024,
      register: (client: Client) => {
        clients.add(client)
        return () => {
          clients.delete(client)
        }
      }
    }
    for (const listener of listeners) {
      yield* Effect.forkIn(
        listener.run((socket, peer) => handleConnection(socket, peer, connectionOptions)).pipe(
          Effect.catch((e) => Effect.logError(e.message))
        ),
        serverScope,
        { startImmediately: true }
      )
    }

    // ---- shutdown: SHUTDOWN to every negotiated client, queued lines written, connections and listeners closed
    const closed = yield* Deferred.make<ShutdownReason>()
    let closing = false
    const close = (reason: ShutdownReason): Effect.Effect<ShutdownReason> =>
      Effect.suspend(() => {
        if (closing) return Deferred.await(closed)
        closing = true
        return Effect.gen(function*() {
          const now = yield* Clock.currentTimeNanos
          broadcast(eventLine("SHUTDOWN", { guest: false, reason: shutdownEventReason(reason) }, timestampFromNanos(now)))
          const leaving = Array.from(clients)
          for (const client of leaving) client.stop("shutdown")
          yield* Effect.forEach(leaving, (client) => client.closed, { discard: true })
          yield* Scope.close(serverScope, Exit.void)
          yield* Deferred.succeed(closed, reason)
          return reason
        }).pipe(Effect.uninterruptible)
      })
    yield* Effect.forkScoped(Effect.flatMap(Deferred.await(shutdownRequested), close), { startImmediately: true })
    // The scope may close first: a signal interrupted the program (or shutdown was asked for just now).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Deferred.poll(shutdownRequested), (requested) =>
        Effect.asVoid(requested._tag === "Some" ? Effect.flatMap(requested.value, close) : close("signal")))
    )

    return {
      addresses: listeners.map((l) => l.address),
      clientCount: Effect.sync(() => clients.size),
      shutdown,
      awaitShutdown: Deferred.await(closed)
    }
  })

/** The server as a layer: it listens while the layer is alive. */
export const layer = (
  options: ServerOptions = {}
): Layer.Layer<QmpServer, QmpServerError, Jobs | FileSystem.FileSystem | Path.Path> =>
  Layer.effect(QmpServer, Effect.map(make(options), QmpServer.of))

/**
 * Runs a server until a client sends `quit` (or `shutdown` is called), then
 * closes it. Interrupting it (a signal under `runMain`) closes it too.
 */
export const serve = (
  options: ServerOptions = {}
): Effect.Effect<ShutdownReason, QmpServerError, Jobs | FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.flatMap(make(options), (server) => server.awaitShutdown))

