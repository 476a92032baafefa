/**
 * How the CLI ends: its exit codes, and the failures a command reports.
 *
 * | Code | When |
 * | --- | --- |
 * | 0 | success; `--help`, `--version`; `serve` and `watch` stopped by SIGINT/SIGTERM |
 * | 1 | the command failed (a failed job, an error reply, no server, …) |
 * | 2 | bad arguments (effect/cli would say 1) |
 * | 130 | `backup`/`mirror` stopped by SIGINT/SIGTERM (the job was cancelled) |
 */
import { Cause, Effect, Exit, Runtime, Schema } from "effect"
import { CliError } from "effect/cli"

export const exitCodes = {
  success: 0,
  failure: 1,
  usage: 2,
  interrupted: 130
} as const

/**
 * A command failed for a reason the user should read: the message is printed
 * as `effect-jobs: <message>` and the process exits with `exitCode`.
 */
export class CommandFailed extends Schema.TaggedError<CommandFailed>()("CommandFailed", {
  reason: Schema.String,
  exitCode: Schema.Number
}) {
  override get message() {
    return this.reason
  }
  override readonly [Runtime.errorExitCode] = this.exitCode
  override readonly [Runtime.errorReported] = false
}

export const fail = (reason: string, exitCode: number = exitCodes.failure): Effect.Effect<never, CommandFailed> =>
  Effect.fail(new CommandFailed({ reason, exitCode }))

let signalExitCode: number = exitCodes.interrupted

/**
 * The exit code when SIGINT or SIGTERM stops the command (default 130). A
 * server or a viewer stopped by the user ends normally: 0.
 */
export const exitOnSignalWith = (code: number): Effect.Effect<void> =>
  Effect.sync(() => {
    signalExitCode = code
  })

/** The exit code of a failure. */
export const exitCodeOf = (error: unknown): number => {
  if (CliError.isCliError(error)) {
    return error._tag === "ShowHelp" && error.errors.length === 0 ? exitCodes.success : exitCodes.usage
  }
  const code = Runtime.getErrorExitCode(error)
  return code === 0 ? exitCodes.failure : code
}

/** The `runMain` teardown of the CLI. */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  if (Exit.isSuccess(exit)) return onExit(exitCodes.success)
  if (Cause.hasInterruptsOnly(exit.cause)) return onExit(signalExitCode)
  onExit(exitCodeOf(Cause.squash(exit.cause)))
}

/**
 * Prints what went wrong, to stderr: the message of a `CommandFailed`, the
 * whole cause of anything unexpected. Usage errors were printed by the parser.
 */
export const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (Cause.hasInterruptsOnly(cause)) return
    const error = Cause.squash(cause)
    if (CliError.isCliError(error)) return
    if (error instanceof CommandFailed) {
      process.stderr.write(`effect-jobs: ${error.reason}\n`)
      return
    }
    process.stderr.write(`effect-jobs: unexpected error\n${Cause.pretty(cause)}\n`)
  })
