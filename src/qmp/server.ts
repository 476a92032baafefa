/**
 * The QMP server: listeners (Unix socket and/or TCP), the clients connected to
 * them, and the fan-out of engine events to negotiated clients.
 *
 * One subscription to the engine feeds every client: each event is turned into
 * its QMP line once, stamped once, and offered to each negotiated client's
 * outbox without waiting. Events go out as soon as they are published (a
 * fiber waits for them), and, as in QEMU where a command emits its events
 * while it runs, every event published so far is handed out right before a
 * reply is queued: a client gets the events a command caused before its
 * reply, and every other client gets them before anything that follows. If
 * that subscription ever falls behind the engine (`EventsOverflow`), it is
 * renewed and the negotiated clients — who missed events — are disconnected
 * rather than misled.
 *
 * Shutting down (`quit`, `shutdown`, or the scope closing, e.g. on a signal),
 * in QEMU's order: every negotiated client gets `SHUTDOWN`; no command is
 * taken any more (those running finish); every job is force-cancelled and
 * waited for until it has concluded and been dismissed, its events reaching
 * the clients; then `quit` gets its reply, queued lines are written,
 * connections are closed and the socket file is removed.
 *
 * What clients may cost is bounded: at most `maxConnections` at once (one
 * more gets an error line and is closed); a client must negotiate within the
 * negotiation timeout; the unfinished messages of all clients together hold
 * at most `partialMessageBudget` bytes, and one that gets no new byte for the
 * partial-message timeout ends its connection. When file descriptors run
 * out, Node's listener closes the connections it cannot take (its accept
 * errors are swallowed) and keeps accepting: the server stalls no client.
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  type FileSystem,
  Layer,
  type Path,
  Scope,
  Stream
} from "effect"
import { type Drain, drainOf, drainQueue } from "../internal/eventHub.ts"
import { connectionOpenedUnsafe } from "../observability/metrics.ts"
import type { EventsOverflow } from "../JobError.ts"
import { Jobs } from "../Jobs.ts"
import type { ShutdownReason } from "./command.ts"
import { commandTable } from "./commands/index.ts"
import { type Admitted, type Client, serveConnection } from "./connection.ts"
import * as Deadlines from "./deadlines.ts"
import { GenericError } from "./errors.ts"
import { defaultBlockJobTypes, type QmpEvent, storeNoticeEvent, toQmpEvent } from "./events.ts"
import { InputBudget, maxLineBytes } from "./framing.ts"
import { JobInfoText } from "./jobInfoText.ts"
import { type Arrival, type ListenAddress, type Listener, listenTcp, listenUnix, type QmpServerError, type TcpOptions } from "./transport.ts"
import { errorLine, eventLine, timestampFromNanos, version } from "./wire.ts"

export interface ServerOptions {
  /** The Unix socket's path (default `./effect-jobs.sock`); `false` for none. */
  readonly socket?: string | false | undefined
  /** A TCP listener too (host 127.0.0.1 unless given; other hosts need `allowRemote` and mutual `tls`). */
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
  /** Clients connected at once (default 256); one more gets an error line and is closed. */
  readonly maxConnections?: number | undefined
  /** How long a client may take to send `qmp_capabilities` (default 10 s). */
  readonly negotiationTimeout?: Duration.Input | undefined
  /** How long an unfinished message may go without a new byte (default 30 s). */
  readonly partialMessageTimeout?: Duration.Input | undefined
  /** Bytes that the unfinished messages of all clients may hold together (default 8 MiB). */
  readonly partialMessageBudget?: number | undefined
  /** Runs when shutting down begins: after `SHUTDOWN` is sent, before the jobs are cancelled. */
  readonly onShutdown?: ((reason: ShutdownReason) => Effect.Effect<void>) | undefined
}

export const defaultSocketPath = "./effect-jobs.sock"

export const defaultMaxConnections = 256

export const defaultPartialMessageBudget = 8 * 1024 * 1024

export interface QmpServerShape {
  /** Where the server listens (the TCP port as bound). */
  readonly addresses: ReadonlyArray<ListenAddress>
  /** Clients connected now. */
  readonly clientCount: Effect.Effect<number>
  /** Asks the server to shut down, as `quit` does (every job is cancelled). */
  readonly shutdown: (reason?: ShutdownReason) => Effect.Effect<void>
  /** Waits until the server has shut down (after `quit` or `shutdown`): jobs ended, connections closed, socket file removed. */
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
    const clock = yield* Clock.Clock
    const scope = yield* Effect.scope
    const context = yield* Effect.context<never>()
    const blockJobTypes = new Set(options.blockJobTypes ?? defaultBlockJobTypes)
    const clients = new Set<Client>()
    const shutdownRequested = yield* Deferred.make<ShutdownReason>()
    const shutdown = (reason: ShutdownReason = "shutdown") => Effect.asVoid(Deferred.succeed(shutdownRequested, reason))

    // ---- events: one subscription, made now, so a client sees every event from its negotiation on
    const broadcast = (line: string) => {
      for (const client of clients) if (client.negotiated) client.deliver(line)
    }
    const now = () => timestampFromNanos(clock.currentTimeNanosUnsafe())
    const capacity = options.eventBuffer ?? 65536
    // Read synchronously; a `Jobs` not built by this package gets its stream put in a queue.
    const subscribe: Effect.Effect<Drain> = Scope.provide(
      Effect.flatMap(jobs.subscribe({ capacity }), (stream) => {
        const drain = drainOf(stream)
        return drain !== undefined ? Effect.succeed(drain) : Effect.map(Stream.toQueue(stream, { capacity }), drainQueue)
      }),
      scope
    )
    let subscription = yield* subscribe
    let subscriptionEnded = false

    /** Hands every buffered event to the negotiated clients; the overflow, if the subscription fell behind. */
    const deliverBuffered = (): EventsOverflow | undefined => {
      const { end, events } = subscription.takeAll()
      let listening = false
      for (const client of clients) listening ||= client.negotiated
      if (listening) {
        for (const event of events) {
          const qmp = toQmpEvent(event, blockJobTypes)
          if (qmp !== undefined) broadcast(eventLine(qmp.event, qmp.data, now()))
        }
      }
      if (end === "ended") subscriptionEnded = true
      if (end === undefined || end === "ended") return undefined
      // They missed events: disconnected now, before anyone can negotiate on the renewed subscription.
      for (const client of clients) if (client.negotiated) client.stop("drop")
      return end
    }

    /**
     * Set while a flush renews the subscription after an overflow: other
     * flushes wait for it to end. (Every other flush is one synchronous step,
     * so flushes never interleave: whatever one takes, it hands out at once.)
     */
    let renewing: Deferred.Deferred<void> | undefined = undefined
    /**
     * Hands out every event published so far; then `andThen` runs in the same
     * synchronous step (a reply queued, a client marked negotiated), so no event
     * can slip in between.
     */
    const flushNow = (andThen?: () => void): Effect.Effect<void> =>
      Effect.suspend(function flush(): Effect.Effect<void> {
        if (renewing !== undefined) return Effect.andThen(Deferred.await(renewing), Effect.suspend(flush))
        const first = deliverBuffered()
        if (first === undefined) {
          andThen?.()
          return Effect.void
        }
        const renewed = (renewing = Deferred.makeUnsafe<void>())
        return Effect.gen(function*() {
          let overflow: EventsOverflow | undefined = first
          while (overflow !== undefined) {
            yield* Effect.logError(`QMP event forwarding fell behind: ${overflow.message}; disconnecting event listeners`)
            subscription = yield* subscribe
            overflow = deliverBuffered()
          }
          andThen?.()
        }).pipe(Effect.ensuring(Effect.sync(() => {
          renewing = undefined
          Deferred.doneUnsafe(renewed, Exit.void)
        })))
      })
    /**
     * With a durable store, what was published so far is stored (and delivered
     * to the subscription) first: a client hears of nothing the store could
     * lose, and the events before the reply are all there to hand out.
     */
    const durable = jobs.durable
    const flushEvents = (andThen?: () => void): Effect.Effect<void> =>
      durable === Effect.void ? flushNow(andThen) : Effect.andThen(durable, flushNow(andThen))

    // Events nobody's reply flushes (a job's own progress) go out as soon as they are published.
    yield* Effect.forkScoped(
      Effect.gen(function*() {
        while (!subscriptionEnded) {
          yield* subscription.available
          yield* flushNow()
        }
      }),
      { startImmediately: true }
    )

    // A durable store's notices: after the job events handed out so far, to every negotiated client.
    /** The notice of the store's outage under way, if any: a client that negotiates meanwhile gets it too. */
    let outage: QmpEvent | undefined = undefined
    yield* Effect.forkScoped(
      Stream.runForEach(jobs.storeNotices, (notice) =>
        flushNow(() => {
          const qmp = storeNoticeEvent(notice)
          outage = notice._tag === "StoreUnwritable" ? qmp : undefined
          broadcast(eventLine(qmp.event, qmp.data, now()))
        })),
      { startImmediately: true }
    )
    const stateOnNegotiation = (): string | undefined =>
      outage === undefined ? undefined : eventLine(outage.event, outage.data, now())

    // ---- commands: counted, so that shutting down can wait for those running; none is taken once it began
    let admitting = true
    let commandsRunning = 0
    /** Commands waiting for the shutdown they asked for (`quit`): those are not waited for. */
    let commandsShuttingDown = 0
    let commandsChanged: Deferred.Deferred<void> | undefined = undefined
    const notifyCommandsChanged = () => {
      const changed = commandsChanged
      commandsChanged = undefined
      if (changed !== undefined) Deferred.doneUnsafe(changed, Exit.void)
    }
    const runCommand = <A, E>(command: Effect.Effect<A, E>): Effect.Effect<Exit.Exit<A, E> | undefined> =>
      Effect.suspend(() => {
        if (!admitting) return Effect.succeed(undefined)
        commandsRunning++
        return Effect.ensuring(
          Effect.exit(command),
          Effect.sync(() => {
            commandsRunning--
            notifyCommandsChanged()
          })
        )
      })
    const otherCommandsFinished: Effect.Effect<void> = Effect.suspend(() => {
      if (commandsRunning - commandsShuttingDown <= 0) return Effect.void
      const changed = (commandsChanged ??= Deferred.makeUnsafe<void>())
      return Effect.andThen(Deferred.await(changed), otherCommandsFinished)
    })

    // QEMU's job_cancel_sync_all: the first job, force-cancelled and waited for, until none is left.
    const cancelEveryJob: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        const [first] = yield* jobs.list
        if (first === undefined) return
        const job = yield* Effect.option(jobs.get(first.id))
        if (job._tag === "None") continue
        yield* Effect.ignore(jobs.cancelSync(job.value, { force: true }))
        yield* Effect.ignore(jobs.awaitOutcome(job.value))
        // A job that dismisses by hand is left CONCLUDED.
        if (job.value.status === "concluded") yield* Effect.ignore(jobs.dismiss(job.value))
      }
    })

    // ---- ending the jobs: once, whoever asks first (`quit`, `shutdown`, the scope closing)
    let jobsEnding: Deferred.Deferred<void> | undefined = undefined
    const endJobs = (reason: ShutdownReason): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (jobsEnding !== undefined) return Deferred.await(jobsEnding)
        const done = (jobsEnding = Deferred.makeUnsafe<void>())
        admitting = false
        return Effect.gen(function*() {
          yield* flushEvents(() =>
            broadcast(eventLine("SHUTDOWN", { guest: false, reason: shutdownEventReason(reason) }, now()))
          )
          if (options.onShutdown !== undefined) {
            yield* Effect.catchCause(options.onShutdown(reason), (cause) => Effect.logError("QMP onShutdown failed", cause))
          }
          // A command already running may still create a job: it finishes first.
          yield* otherCommandsFinished
          yield* cancelEveryJob
          yield* flushEvents()
        }).pipe(Effect.ensuring(Deferred.done(done, Exit.void)), Effect.uninterruptible)
      })
    /** For `quit`: the command itself is not waited for. */
    const endJobsFromCommand = (reason: ShutdownReason): Effect.Effect<void> =>
      Effect.suspend(() => {
        commandsShuttingDown++
        notifyCommandsChanged()
        return Effect.ensuring(
          endJobs(reason),
          Effect.sync(() => {
            commandsShuttingDown--
          })
        )
      })

    // ---- listeners, in a scope of their own: shutting down closes it before the server's scope ends
    const serverScope = yield* Scope.fork(scope)
    const listeners: Array<Listener> = []
    const socketPath = options.socket === undefined ? defaultSocketPath : options.socket
    if (socketPath !== false) listeners.push(yield* Scope.provide(listenUnix(socketPath), serverScope))
    if (options.tcp !== undefined) listeners.push(yield* Scope.provide(listenTcp(options.tcp), serverScope))

    // ---- admission: a place for every connection being served, up to the limit
    const maxConnections = options.maxConnections ?? defaultMaxConnections
    const tooMany = `Too many connections (limit ${maxConnections})`
    const tooManyLine = errorLine(new GenericError({ desc: tooMany }), undefined) + "\n"
    /** Connections holding a place: given back as a connection begins to close. */
    let placesTaken = 0
    /** Whether a client was turned away since the last one was admitted (one log line per burst). */
    let turningAway = false
    const admit = (): Admitted | undefined => {
      if (placesTaken >= maxConnections) return undefined
      turningAway = false
      placesTaken++
      let placed = true
      const release = () => {
        if (placed) placesTaken--
        placed = false
      }
      return {
        release,
        register: (client) => {
          clients.add(client)
          const closed = connectionOpenedUnsafe(context, "qmp")
          let registered = true
          // Idempotent: a dropped connection unregisters at once, and again as it ends.
          return () => {
            if (!registered) return
            registered = false
            release()
            clients.delete(client)
            closed()
          }
        }
      }
    }

    const negotiationTimeout = options.negotiationTimeout ?? Duration.seconds(10)
    const negotiationDeadlines = yield* Scope.provide(Deadlines.make(negotiationTimeout), serverScope)
    const connectionOptions = {
      jobs,
      commands: commandTable,
      blockJobTypes,
      version,
      jobInfoText: new JobInfoText(),
      flushEvents,
      stateOnNegotiation,
      runCommand,
      endJobs: endJobsFromCommand,
      shutdown,
      maxLineBytes: options.maxLineBytes ?? maxLineBytes,
      outboxMessages: options.outgoingMessages ?? 1024,
      outboxBytes: options.outgoingBytes ?? 8 * 1024 * 1024,
      flushTimeout: options.flushTimeout ?? Duration.seconds(2),
      discardLimit: 64 * 1024 * 1024,
      negotiationTimeout,
      negotiationDeadlines,
      partialMessageTimeout: options.partialMessageTimeout ?? Duration.seconds(30),
      inputBudget: new InputBudget(options.partialMessageBudget ?? defaultPartialMessageBudget)
    }
    /** Decided as the connection arrives: a flood over the limit is turned away before anything is set up. */
    const arrive = (): Arrival => {
      const admitted = admit()
      if (admitted === undefined) {
        const warning = turningAway ? undefined : tooMany
        turningAway = true
        return { _tag: "Refuse", line: tooManyLine, warning }
      }
      return {
        _tag: "Serve",
        // `serveConnection` gives the place back however the connection ends (its first step).
        serve: (socket, peer) => serveConnection(socket, peer, admitted, connectionOptions)
      }
    }
    for (const listener of listeners) {
      yield* Effect.forkIn(
        listener.run(arrive).pipe(
          Effect.catch((e) => Effect.logError(e.message))
        ),
        serverScope,
        { startImmediately: true }
      )
    }

    // ---- shutdown: the jobs ended (see above), queued lines written, connections and listeners closed
    const closed = yield* Deferred.make<ShutdownReason>()
    let closing = false
    const close = (reason: ShutdownReason): Effect.Effect<ShutdownReason> =>
      Effect.suspend(() => {
        if (closing) return Deferred.await(closed)
        closing = true
        return Effect.gen(function*() {
          yield* endJobs(reason)
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
