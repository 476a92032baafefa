/**
 * One client's QMP session: the state machine between the greeting and the
 * end of the connection.
 *
 * - Before negotiation only `qmp_capabilities` runs; any other command (known
 *   or not) is `CommandNotFound: Expecting capabilities negotiation with
 *   'qmp_capabilities'`. Framing and argument errors are reported as usual.
 * - After it, every command runs; `qmp_capabilities` again is
 *   `CommandNotFound: Capabilities negotiation is already complete, command ignored`.
 * - Every reply echoes the request's `id`, whatever JSON value it is.
 *
 * Commands run one at a time, in order, and uninterruptibly: a client that
 * disconnects mid-command never leaves a command half done. Once the server
 * has begun to shut down, commands are no longer taken (no reply, as QEMU).
 *
 * Every reply is queued only after every engine event published so far has
 * gone to the clients: the events a command causes reach them before its reply.
 *
 * When a tracer is installed, each command runs in a span `qmp <command>`
 * (a job it creates links its own span to it).
 */
import { Cause, Effect, Exit } from "effect"
import type { SpanOptions } from "effect/Tracer"
import type { JobsService } from "../Jobs.ts"
import { withSpanWhenTracing } from "../observability/tracing.ts"
import type { Command, CommandContext, ShutdownReason } from "./command.ts"
import { commandNotFound, expectingNegotiation, GenericError } from "./errors.ts"
import type { JobInfoText } from "./jobInfoText.ts"
import { parseLine } from "./request.ts"
import { errorLine, returnLine, type VersionInfo } from "./wire.ts"

export interface SessionOptions {
  readonly jobs: JobsService
  readonly commands: ReadonlyMap<string, Command>
  readonly blockJobTypes: ReadonlySet<string>
  readonly version: VersionInfo
  /** `query-jobs`' rows as JSON text, kept between replies. */
  readonly jobInfoText: JobInfoText
  /** Queues one line for the client. */
  readonly send: (line: string) => void
  /** The client negotiated: it gets events from now on. */
  readonly onNegotiated: () => void
  /**
   * Hands every engine event published so far to the negotiated clients, then
   * runs `andThen` in the same synchronous step (no event slips in between).
   */
  readonly flushEvents: (andThen?: () => void) => Effect.Effect<void>
  /**
   * An event line a client gets right after its negotiation's reply: the state
   * it would otherwise have missed (a durable store's outage under way).
   */
  readonly stateOnNegotiation: () => string | undefined
  /** Runs a command unless the server is shutting down (then `undefined`: the command is not taken). */
  readonly runCommand: <A, E>(command: Effect.Effect<A, E>) => Effect.Effect<Exit.Exit<A, E> | undefined>
  /** Sends `SHUTDOWN` and ends every job, waiting until they are gone (`quit`, before its reply). */
  readonly endJobs: (reason: ShutdownReason) => Effect.Effect<void>
  /** Shuts the server down (called after the reply to `quit` is queued). */
  readonly shutdown: (reason: ShutdownReason) => Effect.Effect<void>
}

export interface Session {
  readonly negotiated: boolean
  /** Handles one message, as the connection's framing cut it out of the input. */
  readonly handleLine: (bytes: Uint8Array) => Effect.Effect<void>
}

/** Each command's span name and options, made once per command. */
const spans = new WeakMap<Command, { readonly name: string; readonly options: SpanOptions }>()

const spanOf = (command: Command) => {
  let span = spans.get(command)
  if (span === undefined) {
    span = {
      name: `qmp ${command.name}`,
      options: {
        kind: "server",
        attributes: { "rpc.system": "qmp", "rpc.method": command.name },
        captureStackTrace: false
      }
    }
    spans.set(command, span)
  }
  return span
}

export const makeSession = (options: SessionOptions): Session => {
  let negotiated = false
  /** Negotiated by the command running now: its reply is followed by `stateOnNegotiation`. */
  let justNegotiated = false
  let shutdownAfterReply: ShutdownReason | undefined
  const names = Array.from(options.commands.keys())

  const context: CommandContext = {
    jobs: options.jobs,
    blockJobTypes: options.blockJobTypes,
    version: options.version,
    commandNames: names,
    jobInfoText: options.jobInfoText,
    get negotiated() {
      return negotiated
    },
    // Events published before this moment are handed out first: the client gets only those after it.
    negotiate: options.flushEvents(() => {
      negotiated = true
      justNegotiated = true
      options.onNegotiated()
    }),
    requestShutdown: (reason) =>
      Effect.andThen(
        options.endJobs(reason),
        Effect.sync(() => {
          shutdownAfterReply = reason
        })
      )
  }

  const run = (command: Command, args: unknown) => {
    const span = spanOf(command)
    return options.runCommand(Effect.uninterruptible(withSpanWhenTracing(command.execute(args, context), span.name, span.options)))
  }

  /** Queues a reply after every event published so far. */
  const reply = (line: string) => options.flushEvents(() => options.send(line))

  const handleLine = (bytes: Uint8Array): Effect.Effect<void> =>
    Effect.suspend(() => {
      const incoming = parseLine(bytes)
      switch (incoming._tag) {
        case "Blank":
          return Effect.void
        case "Invalid":
          return reply(errorLine(incoming.error, incoming.id))
        case "Command": {
          const { id } = incoming
          const command = options.commands.get(incoming.execute)
          if (!negotiated && incoming.execute !== "qmp_capabilities") {
            return reply(errorLine(expectingNegotiation(), id))
          }
          if (command === undefined) {
            return reply(errorLine(commandNotFound(incoming.execute), id))
          }
          // QEMU checks for the command, then whether it may run out of band: of ours,
          // only qmp_capabilities may (as in QEMU), and this server runs it in order anyway.
          if (incoming.oob && incoming.execute !== "qmp_capabilities") {
            return reply(errorLine(new GenericError({ desc: `The command ${incoming.execute} does not support OOB` }), id))
          }
          return Effect.flatMap(run(command, incoming.arguments), (exit) => {
            // Not taken: the server is shutting down.
            if (exit === undefined) return Effect.void
            const reason = shutdownAfterReply
            shutdownAfterReply = undefined
            if (Exit.isSuccess(exit)) {
              const state = justNegotiated ? options.stateOnNegotiation() : undefined
              justNegotiated = false
              const replied = reply(returnLine(exit.value, id))
              if (state !== undefined) return Effect.andThen(replied, Effect.sync(() => options.send(state)))
              return reason === undefined ? replied : Effect.andThen(replied, options.shutdown(reason))
            }
            const failure = Cause.findErrorOption(exit.cause)
            if (failure._tag === "Some") return reply(errorLine(failure.value, id))
            // A defect: the client gets an error, the log gets the cause, the session goes on.
            return Effect.andThen(
              reply(errorLine(new GenericError({ desc: `Internal error in ${incoming.execute}` }), id)),
              Effect.logError(`QMP command ${incoming.execute} died`, exit.cause)
            )
          })
        }
      }
    })

  return {
    get negotiated() {
      return negotiated
    },
    handleLine
  }
}
