/**
 * `effect-jobs serve`: the QMP server with the file drivers (`backup`,
 * `mirror`), until `quit`, SIGINT or SIGTERM.
 *
 * - Listens on `--socket PATH` and/or `--tcp HOST:PORT` (port 0 picks a free
 *   one; the line `listening on tcp:HOST:PORT` tells which). With neither, on
 *   `./effect-jobs.sock`; with `--tcp` alone, on TCP only. A non-loopback TCP
 *   address needs `--allow-remote` (QMP has no authentication).
 * - Before it listens, it finishes the commit journals a crashed process left
 *   behind and removes stale temporary copies, in every `--journal-dir DIR`
 *   (default: the current directory, where relative targets go). Each new
 *   file job also does this for its own target's directory.
 * - Stopping: the clients get `SHUTDOWN`, then every job is force-cancelled
 *   (no partial targets) and they get its events; then the connections
 *   close, the socket file is removed and the exit code is 0.
 */
import { Cause, Console, Effect, Exit, type FileSystem, Layer, Option, Path } from "effect"
import { Command, Flag } from "effect/cli"
import * as FileDrivers from "../drivers/layer.ts"
import { Jobs, layer as jobsLayer } from "../Jobs.ts"
import * as Qmp from "../Qmp.ts"
import { socketFlag, tcpFlag } from "./endpoint.ts"
import { type CommandFailed, exitOnSignalWith, fail } from "./exit.ts"

export interface ServeOptions {
  readonly socket: Option.Option<string>
  readonly tcp: Option.Option<{ readonly host: string; readonly port: number }>
  readonly allowRemote: boolean
  readonly journalDirs: ReadonlyArray<string>
}

const versionText = `${Qmp.version.qemu.major}.${Qmp.version.qemu.minor}.${Qmp.version.qemu.micro}`

/** Finishes interrupted commits in each directory; prints what it did. */
const recover = (directories: ReadonlyArray<string>) =>
  Effect.forEach(directories, (directory) =>
    FileDrivers.recoverDirectory(directory).pipe(
      Effect.catch((error) => fail(`cannot recover the commit journals in ${directory}: ${error.message}`)),
      Effect.flatMap((report) =>
        Effect.gen(function*() {
          for (const journal of report.journals) yield* Console.log(`recovered the interrupted commit of ${journal}`)
          for (const target of report.renamed) yield* Console.log(`  ${target}: renamed into place`)
          if (report.removedTemps.length > 0) {
            const n = report.removedTemps.length
            yield* Console.log(`removed ${n} stale temporary cop${n === 1 ? "y" : "ies"} in ${directory}`)
          }
        })
      )
    ), { discard: true })

const howToConnect = (address: Qmp.ListenAddress): ReadonlyArray<string> => {
  if (address._tag === "Unix") {
    return [
      `  effect-jobs qmp --socket ${address.path} query-jobs`,
      `  effect-jobs watch --socket ${address.path}`,
      `  socat - UNIX-CONNECT:${address.path}`
    ]
  }
  const endpoint = `${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}`
  return [
    `  effect-jobs qmp --tcp ${endpoint} query-jobs`,
    `  effect-jobs watch --tcp ${endpoint}`,
    `  socat - TCP:${endpoint}`
  ]
}

const run = (options: ServeOptions) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const jobs = yield* Jobs
    yield* recover(options.journalDirs.length > 0 ? options.journalDirs : [path.resolve(".")])

    // The server cancels every job as it shuts down (by quit or by a signal); this says which, first.
    const onShutdown = (reason: Qmp.ShutdownReason) =>
      Effect.gen(function*() {
        yield* Console.log(`shutting down (${reason})`)
        const live = (yield* jobs.list).filter((job) => job.status !== "concluded")
        const ids = live.map((job) => job.id).join(", ")
        yield* Console.log(
          live.length === 0 ? "no jobs to cancel" : `cancelling ${live.length} job${live.length === 1 ? "" : "s"}: ${ids}`
        )
      })
    const server = yield* Qmp.make({
      socket: Option.isSome(options.socket) ? options.socket.value : Option.isSome(options.tcp) ? false : Qmp.defaultSocketPath,
      tcp: Option.isSome(options.tcp) ? { ...options.tcp.value, allowRemote: options.allowRemote } : undefined,
      onShutdown
    }).pipe(Effect.catch((error) => fail(error.message)))

    yield* Console.log(`effect-jobs ${versionText} QMP server (job types backup, mirror)`)
    for (const address of server.addresses) yield* Console.log(`listening on ${Qmp.formatAddress(address)}`)
    yield* Console.log("connect with:")
    for (const address of server.addresses) for (const line of howToConnect(address)) yield* Console.log(line)
    yield* Console.log(`  (a raw QMP client sends {"execute": "qmp_capabilities"} first)`)
    yield* Console.log("stop with Ctrl-C, SIGTERM or the quit command: every job is cancelled")

    yield* server.awaitShutdown
  }).pipe(Effect.scoped)

/** The server with the file drivers; returns once it has stopped and every job is cancelled. */
export const serve = (
  options: ServeOptions
): Effect.Effect<void, CommandFailed, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    yield* exitOnSignalWith(0)
    yield* run(options).pipe(
      Effect.provide(FileDrivers.layer.pipe(Layer.provideMerge(jobsLayer))),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? Console.log("stopped") : Effect.void
      )
    )
  })

export const serveCommand = Command.make("serve", {
  socket: socketFlag(`Listen on this Unix socket (default ${Qmp.defaultSocketPath} unless --tcp is given)`),
  tcp: tcpFlag("Listen on TCP too (or only, without --socket); port 0 picks a free one"),
  allowRemote: Flag.Boolean("allow-remote").pipe(
    Flag.withDescription("Allow --tcp on a non-loopback address (QMP has no authentication)"),
    Flag.withDefault(false)
  ),
  journalDirs: Flag.String("journal-dir").pipe(
    Flag.withMetavar("DIR"),
    Flag.withDescription(
      "At start, finish interrupted commits and remove stale temporary copies here (repeatable; default: the current directory)"
    ),
    Flag.atLeast(0)
  )
}, serve).pipe(
  Command.withDescription(
    "Run the QMP server with the backup and mirror job types. Stops on quit, Ctrl-C or SIGTERM, cancelling every job."
  ),
  Command.withExamples([
    { command: "effect-jobs serve", description: `Listen on ${Qmp.defaultSocketPath}` },
    { command: "effect-jobs serve --tcp 127.0.0.1:4444", description: "Listen on TCP port 4444 only" },
    { command: "effect-jobs serve --socket /run/jobs.sock --tcp 127.0.0.1:0", description: "Both; a free TCP port" }
  ])
)
