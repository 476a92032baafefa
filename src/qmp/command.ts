/**
 * How a QMP command is defined: a name, the Schema of its arguments (decoded
 * with QEMU's error texts, see `args.ts`) and what it does with them. Commands
 * get what they act on through a `CommandContext`, never through globals.
 */
import { Effect, Result, type Schema } from "effect"
import type { JobsService } from "../Jobs.ts"
import { decoder } from "./args.ts"
import type { QmpError } from "./errors.ts"
import type { JobInfoText } from "./jobInfoText.ts"
import type { VersionInfo } from "./wire.ts"

/** Why the server stops. */
export type ShutdownReason = "quit" | "signal" | "shutdown"

export interface CommandContext {
  readonly jobs: JobsService
  /** Job types that `block-job-*` commands and `query-block-jobs` see. */
  readonly blockJobTypes: ReadonlySet<string>
  readonly version: VersionInfo
  /** Every command's name (for `query-commands`). */
  readonly commandNames: ReadonlyArray<string>
  /** `query-jobs`' rows as JSON text, kept between replies (the server's, shared by its clients). */
  readonly jobInfoText: JobInfoText
  /** Whether this client has negotiated capabilities. */
  readonly negotiated: boolean
  /** Marks this client as negotiated. */
  readonly negotiate: Effect.Effect<void>
  /**
   * Shuts the server down: `SHUTDOWN` to every client, every job force-cancelled
   * and waited for until it is gone (their events delivered); the connections
   * close once the reply is on its way.
   */
  readonly requestShutdown: (reason: ShutdownReason) => Effect.Effect<void>
}

export interface Command {
  readonly name: string
  /** Decodes the arguments and runs; the value is the reply's `return`. */
  readonly execute: (args: unknown, context: CommandContext) => Effect.Effect<unknown, QmpError>
}

/** Defines a command from the Schema of its arguments. */
export const command = <A>(
  name: string,
  args: Schema.Decoder<A>,
  run: (args: A, context: CommandContext) => Effect.Effect<unknown, QmpError>
): Command => {
  const decode = decoder(args)
  return {
    name,
    execute: (input, context) =>
      Effect.suspend(() => {
        const decoded = decode(input)
        return Result.isSuccess(decoded) ? run(decoded.success, context) : Effect.fail(decoded.failure)
      })
  }
}
