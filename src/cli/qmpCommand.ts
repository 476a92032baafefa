/**
 * `effect-jobs qmp [--socket PATH | --tcp HOST:PORT [--tls-cert FILE
 * --tls-key FILE --tls-ca FILE]] COMMAND [JSON-ARGS]`: one QMP command.
 * Connects, negotiates capabilities, sends the command, prints the server's
 * reply on stdout as one line of JSON (as QMP writes it; `jq` formats it) and
 * exits: 0 for a `return`, 1 for an `error` reply (whose class and text also
 * go to stderr) or when the server cannot be reached (the message then names
 * the address and the system's reason: ENOENT, ECONNREFUSED, EACCES, …).
 */
import { Effect, type FileSystem, Option } from "effect"
import { Argument, Command } from "effect/cli"
import * as Qmp from "../Qmp.ts"
import { parseVerbatim } from "../qmp/json.ts"
import { clientFlags, type ClientFlags, clientTarget, describeTarget, oneEndpoint } from "./endpoint.ts"
import { type CommandFailed, fail } from "./exit.ts"

/**
 * JSON-ARGS: a JSON object, whose numbers are sent as they were written (a
 * speed of 9223372036854775807 stays that, not the double nearest to it);
 * otherwise throws an Error saying what was expected.
 */
export const parseArguments = (text: string): Readonly<Record<string, unknown>> => {
  let value: unknown
  try {
    value = parseVerbatim(text)
  } catch (error) {
    throw new Error(`a JSON object (this is not valid JSON: ${error instanceof Error ? error.message : String(error)})`)
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`a JSON object, e.g. '{"id": "job0"}'`)
  }
  return value as Record<string, unknown>
}

export interface QmpOptions extends ClientFlags {
  readonly command: string
  readonly arguments: Option.Option<Readonly<Record<string, unknown>>>
}

export const qmp = (options: QmpOptions): Effect.Effect<void, CommandFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const target = yield* clientTarget(options)
    const unreachable = (error: Qmp.QmpClientError) =>
      fail(`no reply from the QMP server at ${describeTarget(target)}: ${error.message}`)
    // `qmp_capabilities` itself is sent as the user wrote it: the connection is not negotiated first.
    const client = yield* Qmp.connect(target, { negotiate: options.command !== "qmp_capabilities" }).pipe(
      // A connection the system refused says why (ENOENT, ECONNREFUSED, EACCES, …) and where itself.
      Effect.catch((error) => error.code === undefined ? unreachable(error) : fail(error.message))
    )
    const request = Option.isSome(options.arguments)
      ? { execute: options.command, arguments: options.arguments.value }
      : { execute: options.command }
    const reply = yield* client.request(request).pipe(
      Effect.catch(unreachable),
      // A reply already received wins: it is taken before the end of the connection is seen.
      Effect.raceFirst(Effect.andThen(client.closed, fail(`the QMP server at ${describeTarget(target)} closed the connection without a reply`)))
    )
    process.stdout.write(`${JSON.stringify(reply)}\n`)
    if ("error" in reply) {
      const error = reply.error as { readonly class?: unknown; readonly desc?: unknown }
      return yield* fail(`${String(error.class)}: ${String(error.desc)}`)
    }
  }).pipe(Effect.scoped)

export const qmpCommand = Command.make("qmp", {
  ...clientFlags,
  command: Argument.String("COMMAND").pipe(
    Argument.withDescription("The QMP command, e.g. query-jobs, job-pause, backup (see docs/qmp.md)")
  ),
  arguments: Argument.String("JSON-ARGS").pipe(
    Argument.withDescription(`The command's arguments as a JSON object, e.g. '{"id": "job0"}'`),
    Argument.mapTryCatch(parseArguments, (error) => error instanceof Error ? error.message : String(error)),
    Argument.optional
  )
}, qmp).pipe(
  Command.validate((input) => oneEndpoint(input)),
  Command.withDescription(
    "Send one QMP command to a server and print its reply as JSON. Exit code 1 on an error reply."
  ),
  Command.withExamples([
    { command: "effect-jobs qmp query-jobs", description: `Ask the server on ${Qmp.defaultSocketPath}` },
    {
      command: `effect-jobs qmp backup '{"job-id": "b0", "source": "disk.img", "target": "disk.bak", "speed": 1048576}'`,
      description: "Start a backup at 1 MiB/s"
    },
    { command: `effect-jobs qmp --tcp 127.0.0.1:4444 job-cancel '{"id": "b0"}'`, description: "Over TCP" },
    {
      command: "effect-jobs qmp --tcp jobs.example.com:4444 --tls-cert me.pem --tls-key me-key.pem --tls-ca ca.pem query-jobs",
      description: "Over TCP with mutual TLS"
    }
  ])
)
