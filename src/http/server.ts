/**
 * The API's routes, to mount in any `effect/http` server, and a server of
 * its own on `HOST:PORT`.
 *
 * `routes` are the HttpApi (`/api/...`, with its OpenAPI document at
 * `/api/openapi.json`), `GET /metrics` (Prometheus text, every metric in
 * effect's registry) and the dashboard (`/`, `/dashboard/…`, unless
 * `dashboard: false`), all behind the guard (`guard.ts`).
 *
 * `layer` serves them on a loopback address only: the API has no
 * authentication, so anyone who can reach it can cancel every job. Any
 * other address is refused (`HttpListenError`). It closes in an order that
 * loses no event: the event streams deliver what they have and end
 * (`event: shutdown`) before the server stops accepting requests and waits
 * for the open ones.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Schema, type Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import * as NetAddress from "effect/net/NetAddress"
import { PrometheusMetrics } from "effect/observability"
import { createServer } from "node:http"
import type { Jobs } from "../Jobs.ts"
import { countServerConnections } from "../observability/metrics.ts"
import { Api, openapiPath } from "./api.ts"
import * as Dashboard from "./dashboard.ts"
import { errorResponse } from "./guard.ts"
import { isLoopbackHost } from "./loopback.ts"
import * as DurableReplies from "./durableReplies.ts"
import * as Guard from "./guard.ts"
import * as Handlers from "./handlers.ts"
import { notFound } from "./errors.ts"
import { type HttpOptions, HttpState } from "./state.ts"
import * as State from "./state.ts"

/**
 * The server could not listen: a non-loopback address, or the address is in use.
 *
 * @since 0.1.0
 * @category errors
 */
export class HttpListenError extends Schema.TaggedError<HttpListenError>()("HttpListenError", {
  reason: Schema.String
}) {
  override get message() {
    return this.reason
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions extends HttpOptions {
  /** A loopback address (default `127.0.0.1`): `localhost`, `127.x.y.z` or `::1`. */
  readonly host?: string | undefined
  /** 0 picks a free port. */
  readonly port: number
}

/** The API's routes over an `HttpState`: the HttpApi, `/metrics` and the dashboard, behind the guard. */
export const routesWithState = (options: HttpOptions = {}) =>
  Layer.mergeAll(
    HttpApiBuilder.layer(Api, { openapiPath }).pipe(Layer.provide(Handlers.layer)),
    PrometheusMetrics.layerHttp({ path: "/metrics" }),
    options.dashboard === false ? Layer.empty : Dashboard.routes()
  ).pipe(
    Layer.provide(DurableReplies.middleware.layer),
    Layer.provide(Guard.middleware({ allowedHosts: options.allowedHosts, readOnly: options.readOnly }).layer)
  )

/**
 * The API's routes, to add to an `effect/http` router (`HttpRouter.serve`)
 * next to routes of your own. They need `Jobs`, and the platform's HTTP
 * services (`NodeHttpServer.layer` provides them). The guard learns the
 * server's address from its `HttpServer`; give `allowedHosts` for the names
 * it is reached by.
 *
 * The event streams end when this layer closes. `HttpRouter.serve` closes
 * the server first, and the server waits for open responses (for
 * `gracefulShutdownTimeout`, 20 seconds by default) before that: a server
 * with event streams open stops that much later. `layer` avoids that.
 *
 * @since 0.1.0
 * @category layers
 */
export const routes = (options: HttpOptions = {}) => routesWithState(options).pipe(Layer.provide(State.layer(options)))

/** Any other request: a 404 with a JSON body. */
const fallback = HttpRouter.add(
  "*",
  "*",
  (request) =>
    Effect.succeed(errorResponse(notFound(`No such resource: ${request.method} ${request.url.split("?")[0]}`), 404))
)

/**
 * The API served on `host:port` (a loopback address), until the layer closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ServeOptions): Layer.Layer<HttpServer.HttpServer, HttpListenError, Jobs> =>
  Layer.unwrap(Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    if (!isLoopbackHost(host)) {
      return yield* new HttpListenError({
        reason: `Refusing to serve HTTP on ${host}: it is not a loopback address, and the HTTP API has no ` +
          `authentication (anyone who reaches it can cancel every job)`
      })
    }
    // Its connections are counted in the metrics (`effect_jobs_connections_open{protocol="http"}`).
    const context = yield* Effect.context<never>()
    const evaluate = () => {
      const server = createServer()
      countServerConnections(server, context, "http")
      return server
    }
    const listen = Layer.mergeAll(
      Layer.effect(
        HttpServer.HttpServer,
        NodeHttpServer.make(evaluate, { host: host.startsWith("[") ? host.slice(1, -1) : host, port: options.port })
          .pipe(Effect.mapError((error) =>
            new HttpListenError({
              reason: `Cannot serve HTTP on ${host}:${options.port}: ${
                error.cause instanceof Error ? error.cause.message : String(error.cause)
              }`
            })
          ))
      ),
      NodeHttpServer.layerHttpServices
    )
    const server = HttpRouter.serve(Layer.mergeAll(routesWithState(options), fallback), {
      disableLogger: true,
      disableListenLog: true
    }).pipe(
      Layer.provideMerge(listen),
      Layer.provideMerge(State.layer(options))
    )
    // Built after the server, so closed before it: the streams end before the server waits for its responses.
    const endStreamsFirst = Layer.effectDiscard(
      Effect.gen(function*() {
        const state = yield* HttpState
        yield* Effect.addFinalizer(() => state.endStreams)
      })
    )
    return endStreamsFirst.pipe(Layer.provideMerge(server))
  }))

/**
 * A running server, as `make` returns it.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunningServer {
  /** `http://HOST:PORT`, with the port the server got. */
  readonly url: string
  readonly address: NetAddress.SocketAddress
}

/**
 * Starts `layer` in the current scope and says where it listens.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ServeOptions): Effect.Effect<RunningServer, HttpListenError, Jobs | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Layer.build(layer(options))
    const server = Context.get(context, HttpServer.HttpServer)
    return { url: HttpServer.formatAddress(server.address), address: server.address }
  })
