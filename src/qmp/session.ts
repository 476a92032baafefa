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
 * disconnects mid-command never leaves a command half done.
 */
import { Cause, Effect, Exit } from "effect"
import type { JobsService } from "../Jobs.ts"
import type { Command, CommandContext, ShutdownReason } from "./command.ts"
import { commandNotFound, expectingNegotiation, GenericError } from "./errors.ts"
import { parseLine } from "./request.ts"
import { errorLine, returnLine, type VersionInfo } from "./wire.ts"

export interface SessionOptions {
  readonly jobs: JobsService
  readonly commands: ReadonlyMap<string, Command>
  readonly blockJobTypes: ReadonlySet<string>
  readonly version: VersionInfo
  /** Queues one line for the client. */
  readonly send: (line: string) => void
  /** The client negotiated: it gets events from now on. */
  readonly onNegotiated: () => void
  /** Shuts the server down (called after the reply to `quit` is queued). */
  readonly shutdown: (reason: ShutdownReason) => Effect.Effect<void>
}

export interface Session {
  readonly negotiated: boolean
  /** Handles one line (without its newline). */
  readonly handleLine: (bytes: Uint8Array) => Effect.Effect<void>
}

export const makeSession = (options: SessionOptions): Session => {
  let negotiated = false
  let shutdownAfterReply: ShutdownReason | undefined
  const names = Array.from(options.commands.keys())

  const context: CommandContext = {
    jobs: options.jobs,
    blockJobTypes: options.blockJobTypes,
    version: options.version,
    commandNames: names,
    get negotiated() {
      return negotiated
    },
    negotiate: Effect.sync(() => {
      negotiated = true
      options.onNegotiated()
    }),
    requestShutdown: (reason) =>
      Effect.sync(() => {
        shutdownAfterReply = reason
      })
  }

  const run = (command: Command, args: unknown) =>
    Effect.exit(Effect.uninterruptible(command.execute(args, context)))

  const handleLine = (bytes: Uint8Array): Effect.Effect<void> =>
    Effect.suspend(() => {
      const incoming = parseLine(bytes)
      switch (incoming._tag) {
        case "Blank":
          return Effect.void
        case "Invalid":
          options.send(errorLine(incoming.error, incoming.id))
          return Effect.void
        case "Command": {
          const { id } = incoming
          const command = options.commands.get(incoming.execute)
          if (!negotiated && incoming.execute !== "qmp_capabilities") {
            options.send(errorLine(expectingNegotiation(), id))
            return Effect.void
          }
          if (command === undefined) {
            options.send(errorLine(commandNotFound(incoming.execute), id))
            return Effect.void
          }
          return Effect.flatMap(run(command, incoming.arguments), (exit) => {
            const reason = shutdownAfterReply
            shutdownAfterReply = undefined
            if (Exit.isSuccess(exit)) {
              options.send(returnLine(exit.value, id))
              return reason === undefined ? Effect.void : options.shutdown(reason)
            }
            const failure = Cause.findErrorOption(exit.cause)
            if (failure._tag === "Some") {
              options.send(errorLine(failure.value, id))
              return Effect.void
            }
            // A defect: the client gets an error, the log gets the cause, the session goes on.
            options.send(errorLine(new GenericError({ desc: `Internal error in ${incoming.execute}` }), id))
            return Effect.logError(`QMP command ${incoming.execute} died`, exit.cause)
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
