/**
 * The command line's HTTP options:
 *
 * - `serve --http HOST:PORT` serves the HTTP API (`Http.layer`) next to QMP,
 *   on a loopback address only (it has no authentication): any other
 *   address is a usage error (exit code 2). Port 0 picks a free port; the
 *   line `listening on http://HOST:PORT` tells which. The option may be
 *   given more than once, the last one counting (so `npm start -- --http
 *   127.0.0.1:0` replaces the start script's own); `--http off` serves none.
 *   The dashboard is at its `/`, and its URL is printed too.
 * - `serve --http-read-only` makes that API refuse every POST (403): the
 *   dashboard then shows the jobs and offers no actions.
 * - `watch --http URL` follows a server through its HTTP API instead of QMP.
 */
import { Effect, Option, type Scope } from "effect"
import { CliError, Flag } from "effect/cli"
import { isLoopbackHost } from "../http/loopback.ts"
import type { Jobs } from "../Jobs.ts"
import { parseTcp, type TcpEndpoint } from "./endpoint.ts"
import { type CommandFailed, fail } from "./exit.ts"

/** `--http HOST:PORT` of `serve`, repeatable (the last one counts). */
export const serveHttpFlag = Flag.String("http").pipe(
  Flag.withMetavar("HOST:PORT"),
  Flag.withDescription(
    "Serve the HTTP API (JSON, Server-Sent Events, /metrics) on this loopback address; port 0 picks a free one. " +
      "The last one given counts; 'off' serves none"
  ),
  Flag.atLeast(0)
)

/** `--http-read-only` of `serve`. */
export const serveHttpReadOnlyFlag = Flag.Boolean("http-read-only").pipe(
  Flag.withDescription(
    "Make the HTTP API read-only: every POST is refused (403), and the dashboard shows the jobs without offering actions"
  ),
  Flag.withDefault(false)
)

/** Where `--http` says to serve: `undefined` for none; an Error saying what is wrong. */
export const httpEndpoint = (values: ReadonlyArray<string> | undefined): TcpEndpoint | undefined | Error => {
  const last = values === undefined ? undefined : values[values.length - 1]
  if (last === undefined || last.trim() === "off") return undefined
  let endpoint: TcpEndpoint
  try {
    endpoint = parseTcp(last)
  } catch (error) {
    return new Error(`--http expects ${error instanceof Error ? error.message : String(error)}`)
  }
  if (!isLoopbackHost(endpoint.host)) {
    return new Error(
      `--http ${last}: the HTTP API has no authentication, so it listens on a loopback address only ` +
        `(127.0.0.1, ::1 or localhost), not on ${endpoint.host}`
    )
  }
  return endpoint
}

/**
 * For `Command.validate`: a usage error unless `--http` names a loopback
 * address (or `off`), and unless `--http-read-only` comes with an `--http`.
 */
export const validateServeHttp = (
  values: ReadonlyArray<string> | undefined,
  readOnly = false
): Effect.Effect<void, CliError.ValidationError> => {
  const endpoint = httpEndpoint(values)
  if (endpoint instanceof Error) return Effect.fail(new CliError.ValidationError({ message: endpoint.message }))
  if (endpoint === undefined && readOnly) {
    return Effect.fail(new CliError.ValidationError({ message: "--http-read-only needs --http HOST:PORT" }))
  }
  return Effect.void
}

/** What `serve` tells the HTTP API besides where to listen. */
export interface HttpSettings {
  readonly readOnly?: boolean | undefined
  /** The `effect-jobs qmp` flags that reach the QMP server, once it listens. */
  readonly qmpFlags?: (() => ReadonlyArray<string> | undefined) | undefined
}

/** Starts the HTTP API in the current scope, if `--http` asks for it; its URL. */
export const startHttp = (
  values: ReadonlyArray<string> | undefined,
  settings: HttpSettings = {}
): Effect.Effect<Option.Option<string>, CommandFailed, Jobs | Scope.Scope> =>
  Effect.gen(function*() {
    const endpoint = httpEndpoint(values)
    if (endpoint instanceof Error) return yield* fail(endpoint.message)
    if (endpoint === undefined) return Option.none()
    // Loaded only when asked for: every command of the CLI starts faster without it.
    const Http = yield* Effect.promise(() => import("../Http.ts"))
    const server = yield* Http.make({
      host: endpoint.host,
      port: endpoint.port,
      readOnly: settings.readOnly,
      qmpFlags: settings.qmpFlags
    }).pipe(Effect.catch((error) => fail(error.message)))
    return Option.some(server.url)
  })

/** The dashboard's line: where to point a browser. */
export const dashboardLine = (url: string, readOnly: boolean): string =>
  `dashboard: ${url}/${readOnly ? " (read-only: the API refuses every POST)" : ""}`

/** How to reach the HTTP API at `url`, for the `connect with:` lines. */
export const howToReachHttp = (url: string): ReadonlyArray<string> => [
  `  curl ${url}/api/jobs`,
  `  curl -N ${url}/api/events`,
  `  npx effect-jobs watch --http ${url}`
]

/** `--http URL` of `watch`. */
export const watchHttpFlag = Flag.String("http").pipe(
  Flag.withMetavar("URL"),
  Flag.withDescription("Watch through the server's HTTP API at this URL (e.g. http://127.0.0.1:8080) instead of QMP"),
  Flag.filter((url) => /^http:\/\/[^/]+\/?$/.test(url), (url) => `an http://HOST:PORT URL, not '${url}'`),
  Flag.optional
)

/** For `Command.validate`: `--http` names the server alone. */
export const httpAlone = (
  flags: {
    readonly http: Option.Option<string>
    readonly socket: Option.Option<string>
    readonly tcp: Option.Option<TcpEndpoint>
    readonly tlsCert: Option.Option<string>
    readonly tlsKey: Option.Option<string>
    readonly tlsCa: Option.Option<string>
  }
): Effect.Effect<void, CliError.ValidationError> => {
  if (Option.isNone(flags.http)) return Effect.void
  const others = [
    ["--socket", flags.socket],
    ["--tcp", flags.tcp],
    ["--tls-cert", flags.tlsCert],
    ["--tls-key", flags.tlsKey],
    ["--tls-ca", flags.tlsCa]
  ].filter(([, value]) => Option.isSome(value as Option.Option<unknown>)).map(([name]) => name as string)
  return others.length === 0 ? Effect.void : Effect.fail(
    new CliError.ValidationError({
      message: `--http names the server by itself: it cannot be used with ${others.join(", ")}`
    })
  )
}
