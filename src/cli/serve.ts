/**
 * `effect-jobs serve`: the QMP server with the file drivers (`backup`,
 * `mirror`), until `quit`, SIGINT, SIGTERM or SIGHUP.
 *
 * - Listens on `--socket PATH` and/or `--tcp HOST:PORT` (port 0 picks a free
 *   one; the line `listening on tcp:HOST:PORT` tells which). With neither, on
 *   `./effect-jobs.sock`; with `--tcp` alone, on TCP only. TCP may use
 *   mutual TLS (`--tls-cert`, `--tls-key`, `--tls-ca`); a non-loopback
 *   address needs it, and `--allow-remote` (QMP has no authentication).
 * - Before it listens, it finishes the commit journals a crashed process left
 *   behind and removes stale temporary copies, in every `--journal-dir DIR`
 *   (default: the current directory, where relative targets go). Each new
 *   file job also does this for its own target's directory. A journal it may
 *   not act on is reported (a warning) and set aside or left alone, and the
 *   server starts anyway; only a directory it cannot list stops it.
 * - With `--http HOST:PORT` (a loopback address), it also serves the HTTP API
 *   and the dashboard (see `http.ts`); their URLs are printed (`listening on
 *   http://HOST:PORT`, `dashboard: http://HOST:PORT/`). `--http-read-only`
 *   makes the API refuse every POST.
 * - With `--otlp URL` (or `OTEL_EXPORTER_OTLP_ENDPOINT`), traces, metrics and
 *   logs go to that OpenTelemetry collector over OTLP/HTTP; what is still
 *   buffered is sent as the server stops.
 * - Jobs and events are kept in a store (`--store`, see `store.ts`; by
 *   default a SQLite file beside the socket), so a restarted server has the
 *   jobs that waited for their dismissal, fails those a crash interrupted, and
 *   numbers its events on from where it stopped. A store another server holds,
 *   or one that is not a database, stops it with exit code 1 (the file is left
 *   as it is).
 * - Stopping: the clients get `SHUTDOWN`, then every job is force-cancelled
 *   (no partial targets) and they get its events; then the connections
 *   close, the socket file is removed and the exit code is 0.
 */
import { Cause, Config, Console, Effect, Exit, type FileSystem, Layer, Option, Path } from "effect"
import { Command, Flag } from "effect/cli"
import * as FileDrivers from "../drivers/layer.ts"
import { Jobs, layerDurable as jobsLayerDurable } from "../Jobs.ts"
import * as JobStore from "../JobStore.ts"
import * as Otlp from "../observability/otlp.ts"
import * as Qmp from "../Qmp.ts"
import { defaultMaxConnections } from "../qmp/server.ts"
import { readTls, remoteNeedsTls, socketFlag, tcpFlag, type TlsFlags, tlsFlags } from "./endpoint.ts"
import { CommandFailed, exitCodes, exitOnSignalWith, fail } from "./exit.ts"
import {
  dashboardLine,
  howToReachHttp,
  serveHttpFlag,
  serveHttpReadOnlyFlag,
  startHttp,
  validateServeHttp
} from "./http.ts"
import { describeStore, layerFor, resolveStore, type StoreSpec, storeFlag } from "./store.ts"

export interface ServeOptions extends TlsFlags {
  readonly socket: Option.Option<string>
  readonly tcp: Option.Option<{ readonly host: string; readonly port: number }>
  readonly allowRemote: boolean
  readonly journalDirs: ReadonlyArray<string>
  /** Clients connected at once (default 256). */
  readonly maxConnections?: number | undefined
  /** The OpenTelemetry collector to export to (OTLP/HTTP). */
  readonly otlp?: Option.Option<string> | undefined
  /** `--http HOST:PORT`, as given (the last one counts). */
  readonly http?: ReadonlyArray<string> | undefined
  /** `--http-read-only`: the HTTP API refuses every POST. */
  readonly httpReadOnly?: boolean | undefined
  /** `--store SPEC` (default: SQLite beside the socket). */
  readonly store?: Option.Option<string> | undefined
}

/** `--otlp URL`, else the `OTEL_EXPORTER_OTLP_ENDPOINT` variable, else no export. */
export const otlpFlag = Flag.String("otlp").pipe(
  Flag.withMetavar("URL"),
  Flag.withDescription(
    `Export traces, metrics and logs over OTLP/HTTP to this collector, e.g. http://127.0.0.1:4318 (default: $${Otlp.endpointVariable} if set)`
  ),
  Flag.withFallbackConfig(Config.String(Otlp.endpointVariable)),
  Flag.filter((url) => /^https?:\/\/[^/]/.test(url), (url) => `an http:// or https:// URL, not '${url}'`),
  Flag.optional
)

const versionText = `${Qmp.version.qemu.major}.${Qmp.version.qemu.minor}.${Qmp.version.qemu.micro}`

/** Finishes interrupted commits in each directory; prints what it did. */
const recover = (directories: ReadonlyArray<string>) =>
  Effect.forEach(directories, (directory) =>
    FileDrivers.recoverJournals(directory).pipe(
      Effect.catch((error) => fail(`cannot recover the commit journals in ${directory}: ${error.message}`)),
      Effect.flatMap((report) =>
        Effect.gen(function*() {
          for (const journal of report.journals) yield* Console.log(`recovered the interrupted commit of ${journal}`)
          for (const target of report.renamed) yield* Console.log(`  ${target}: renamed into place`)
        })
      )
    ), { discard: true })

/** Removes the stale temporary copies in each directory (after the jobs are back: a resumed backup keeps its own). */
const removeStaleTemps = (directories: ReadonlyArray<string>) =>
  Effect.forEach(directories, (directory) =>
    FileDrivers.removeStaleTemps(directory).pipe(
      Effect.catch((error) => fail(`cannot remove the stale temporary copies in ${directory}: ${error.message}`)),
      Effect.flatMap((removed) => {
        const n = removed.length
        return n === 0
          ? Effect.void
          : Console.log(`removed ${n} stale temporary cop${n === 1 ? "y" : "ies"} in ${directory}`)
      })
    ), { discard: true })

/**
 * The client commands for an address, run through `npx`, which finds the
 * package's bin wherever it is installed: in a checkout of effect-jobs, in a
 * project that depends on it, or globally (a bare `effect-jobs` works only
 * there). With TLS: the client's flags (its own certificate, and the CA to
 * check the server's).
 */
const howToConnect = (address: Qmp.ListenAddress, tlsCa: string | undefined): ReadonlyArray<string> => {
  if (address._tag === "Unix") {
    return [
      `  npx effect-jobs qmp --socket ${address.path} query-jobs`,
      `  npx effect-jobs watch --socket ${address.path}`,
      `  socat - UNIX-CONNECT:${address.path}`
    ]
  }
  // Bound to every address: a client names one that the server's certificate carries.
  const host = address.host === "0.0.0.0" || address.host === "::" ? "HOST" : address.host
  const endpoint = `${host.includes(":") ? `[${host}]` : host}:${address.port}`
  if (tlsCa !== undefined) {
    const flags = `--tls-cert CLIENT.pem --tls-key CLIENT-key.pem --tls-ca ${tlsCa}`
    return [
      `  npx effect-jobs qmp --tcp ${endpoint} ${flags} query-jobs`,
      `  npx effect-jobs watch --tcp ${endpoint} ${flags}`,
      `  socat - OPENSSL:${endpoint},cert=CLIENT.pem,key=CLIENT-key.pem,cafile=${tlsCa}`,
      `  (CLIENT.pem, CLIENT-key.pem: a client certificate signed by ${tlsCa}, and its key` +
      `${host === "HOST" ? "; HOST: a name or address of this machine that its certificate carries" : ""})`
    ]
  }
  return [
    `  npx effect-jobs qmp --tcp ${endpoint} query-jobs`,
    `  npx effect-jobs watch --tcp ${endpoint}`,
    `  socat - TCP:${endpoint}`
  ]
}

/** The `effect-jobs qmp` flags that reach the server at `address`. */
const clientFlagsFor = (address: Qmp.ListenAddress, tlsCa: string | undefined): ReadonlyArray<string> => {
  if (address._tag === "Unix") return ["--socket", address.path]
  const host = address.host === "0.0.0.0" || address.host === "::" ? "127.0.0.1" : address.host
  const tcp = ["--tcp", `${host.includes(":") ? `[${host}]` : host}:${address.port}`]
  return tlsCa === undefined ? tcp : [...tcp, "--tls-cert", "CLIENT.pem", "--tls-key", "CLIENT-key.pem", "--tls-ca", tlsCa]
}

/** Brings back the store's jobs (after the journals: their files are in their final state by then); prints what it did. */
const recoverStore = (spec: StoreSpec) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const report = yield* jobs.recover
    if (spec._tag === "Memory") return
    const { commitFailed, committed, concluded, interrupted, resumed } = report
    if (concluded.length > 0) yield* Console.log(`kept ${concluded.length} concluded job(s): ${concluded.join(", ")}`)
    if (committed.length > 0) yield* Console.log(`committed ${committed.length} job(s) whose commit had begun: ${committed.join(", ")}`)
    for (const { id, status } of resumed) yield* Console.log(`resumed ${id} (${status})`)
    for (const { id, status } of interrupted) yield* Console.log(`failed ${id}: interrupted while ${status}`)
    for (const { error, id } of commitFailed) yield* Console.log(`failed ${id}: ${error}`)
  })

const run = (options: ServeOptions, spec: StoreSpec) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    const jobs = yield* Jobs
    const tls = Option.getOrUndefined(yield* readTls(options))
    const journalDirs = options.journalDirs.length > 0 ? options.journalDirs : [path.resolve(".")]
    yield* recover(journalDirs)
    yield* recoverStore(spec)
    yield* removeStaleTemps(journalDirs)

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
    // Started before the QMP server, so stopped after it: its event streams see every job's end.
    // The QMP server's address, for the dashboard's "copy as CLI", is known once it listens.
    let qmpFlags: ReadonlyArray<string> | undefined
    const httpReadOnly = options.httpReadOnly ?? false
    const httpUrl = yield* startHttp(options.http, { readOnly: httpReadOnly, qmpFlags: () => qmpFlags })
    const server = yield* Qmp.make({
      socket: Option.isSome(options.socket) ? options.socket.value : Option.isSome(options.tcp) ? false : Qmp.defaultSocketPath,
      tcp: Option.isSome(options.tcp) ? { ...options.tcp.value, allowRemote: options.allowRemote, tls } : undefined,
      maxConnections: options.maxConnections,
      onShutdown
    }).pipe(Effect.catch((error) => fail(error.message)))

    yield* Console.log(`effect-jobs ${versionText} QMP server (job types backup, mirror)`)
    yield* Console.log(`jobs kept in ${describeStore(spec, (yield* JobStore.JobStore).location)}`)
    const tlsCa = tls === undefined || Option.isNone(options.tlsCa) ? undefined : path.resolve(options.tlsCa.value)
    qmpFlags = server.addresses.length === 0 ? undefined : clientFlagsFor(server.addresses[0]!, tlsCa)
    for (const address of server.addresses) {
      yield* Console.log(`listening on ${Qmp.formatAddress(address)}`)
      if (address._tag === "Tcp" && tlsCa !== undefined) {
        yield* Console.log(`  mutual TLS: only clients with a certificate signed by ${tlsCa}`)
      }
    }
    if (Option.isSome(httpUrl)) {
      yield* Console.log(`listening on ${httpUrl.value} (HTTP API)`)
      yield* Console.log(dashboardLine(httpUrl.value, httpReadOnly))
    }
    yield* Console.log("connect with:")
    for (const address of server.addresses) {
      for (const line of howToConnect(address, address._tag === "Tcp" ? tlsCa : undefined)) yield* Console.log(line)
    }
    yield* Console.log(`  (a raw QMP client sends {"execute": "qmp_capabilities"} first)`)
    if (Option.isSome(httpUrl)) for (const line of howToReachHttp(httpUrl.value)) yield* Console.log(line)
    if (options.otlp !== undefined && Option.isSome(options.otlp)) {
      yield* Console.log(`exporting traces, metrics and logs to ${options.otlp.value} (OTLP/HTTP)`)
    }
    yield* Console.log("stop with Ctrl-C, SIGTERM, SIGHUP or the quit command: every job is cancelled")

    yield* server.awaitShutdown
  }).pipe(Effect.scoped)

/**
 * The server with the file drivers and `drivers`, more job types registered
 * beside them (before the store's jobs are brought back); returns once it
 * has stopped and every job is cancelled.
 */
export const serveWith = (
  drivers: Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path>
) =>
(options: ServeOptions): Effect.Effect<void, CommandFailed, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    yield* exitOnSignalWith(0)
    const otlp = options.otlp ?? Option.none()
    const socket = Option.isSome(options.socket)
      ? options.socket.value
      : Option.isSome(options.tcp)
      ? undefined
      : Qmp.defaultSocketPath
    const spec = yield* resolveStore(options.store ?? Option.none(), socket)
    const jobsLayer = jobsLayerDurable().pipe(Layer.provideMerge(layerFor(spec)))
    yield* run(options, spec).pipe(
      Effect.provide(Layer.mergeAll(FileDrivers.layer, drivers).pipe(Layer.provideMerge(jobsLayer))),
      // A store that cannot be opened (held by another server, not a database) stops the server: exit 1.
      Effect.mapError((error) =>
        error instanceof CommandFailed ? error : new CommandFailed({ reason: error.message, exitCode: exitCodes.failure })
      ),
      Effect.onExit((exit) =>
        Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? Console.log("stopped") : Effect.void
      ),
      // Outermost: the engine traces and counts into it, and it sends what is left once the rest has stopped.
      Effect.provide(Option.isSome(otlp) ? Otlp.layer({ url: otlp.value }) : Layer.empty)
    )
  })

/** The server with the file drivers only: `effect-jobs serve`. */
export const serve = serveWith(Layer.empty)

export const serveCommand = Command.make("serve", {
  socket: socketFlag(`Listen on this Unix socket (default ${Qmp.defaultSocketPath} unless --tcp is given)`),
  tcp: tcpFlag("Listen on TCP too (or only, without --socket); port 0 picks a free one"),
  allowRemote: Flag.Boolean("allow-remote").pipe(
    Flag.withDescription(
      "Allow --tcp on a non-loopback address; needs mutual TLS (--tls-cert, --tls-key, --tls-ca): QMP has no authentication"
    ),
    Flag.withDefault(false)
  ),
  ...tlsFlags("server"),
  journalDirs: Flag.String("journal-dir").pipe(
    Flag.withMetavar("DIR"),
    Flag.withDescription(
      "At start, finish interrupted commits and remove stale temporary copies here (repeatable; default: the current directory)"
    ),
    Flag.atLeast(0)
  ),
  maxConnections: Flag.Int("max-connections").pipe(
    Flag.withMetavar("N"),
    Flag.withDescription(`Clients connected at once; one more gets an error and is closed (default ${defaultMaxConnections})`),
    Flag.filter((n) => n >= 1, () => "a number of connections, 1 or more"),
    Flag.withDefault(defaultMaxConnections)
  ),
  otlp: otlpFlag,
  http: serveHttpFlag,
  httpReadOnly: serveHttpReadOnlyFlag,
  store: storeFlag
}, serve).pipe(
  Command.validate((input) => remoteNeedsTls(input)),
  Command.validate((input) => validateServeHttp(input.http, input.httpReadOnly)),
  Command.withDescription(
    "Run the QMP server with the backup and mirror job types. Stops on quit, Ctrl-C, SIGTERM or SIGHUP, cancelling every job."
  ),
  Command.withExamples([
    { command: "effect-jobs serve", description: `Listen on ${Qmp.defaultSocketPath}` },
    { command: "effect-jobs serve --tcp 127.0.0.1:4444", description: "Listen on TCP port 4444 only" },
    { command: "effect-jobs serve --socket /run/jobs.sock --tcp 127.0.0.1:0", description: "Both; a free TCP port" },
    { command: "effect-jobs serve --otlp http://127.0.0.1:4318", description: "Export traces and metrics to a collector" },
    { command: "effect-jobs serve --store postgres://jobs@db.internal/jobs", description: "Keep jobs and events in Postgres" },
    { command: "effect-jobs serve --http 127.0.0.1:8080", description: "Serve the HTTP API and the dashboard too, on port 8080" },
    {
      command: "effect-jobs serve --http 127.0.0.1:8080 --http-read-only",
      description: "The same, read-only: the dashboard shows the jobs and offers no actions"
    },
    {
      command: "effect-jobs serve --tcp 0.0.0.0:4444 --allow-remote --tls-cert server.pem --tls-key server-key.pem --tls-ca ca.pem",
      description: "Remote clients with a certificate signed by ca.pem"
    }
  ])
)
