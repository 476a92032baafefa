/**
 * The HTTP API: the engine's jobs as JSON over HTTP — list them, create
 * them and transactions of them, pause, resume, cancel, complete, finalize,
 * dismiss and rate-limit them — their events and progress as Server-Sent
 * Events, and a dashboard page at `/` that uses nothing else, built on
 * effect's own `effect/http` and `effect/http-api` modules. `docs/http.md`
 * is the reference of every endpoint, with curl examples; `docs/dashboard.md`
 * describes the page.
 *
 * A server of its own, on a loopback address:
 *
 * ```ts
 * import { NodeRuntime, NodeServices } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { FileDrivers, Http, Jobs } from "effect-jobs"
 *
 * Layer.launch(Http.layer({ port: 8080 })).pipe(
 *   Effect.provide(FileDrivers.layer.pipe(Layer.provideMerge(Layer.mergeAll(Jobs.layer, NodeServices.layer)))),
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * Or the routes, in an `effect/http` server of your own:
 *
 * ```ts
 * const Hello = HttpRouter.add("GET", "/hello", HttpServerResponse.text("hello"))
 * const Server = HttpRouter.serve(Layer.mergeAll(Http.routes(), Hello)).pipe(
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 }))
 * )
 * ```
 *
 * Every request must name the server in its `Host` (and `Origin`, if it
 * has one), and every POST must be `application/json`: a web page on another
 * site can neither read the API nor post to it. There is no authentication:
 * serve it on loopback only, or behind something that authenticates.
 * `readOnly: true` refuses every POST (403).
 *
 * @since 0.1.0
 */

/** @since 0.1.0 */
export {
  Api,
  CancelRequest,
  CreateJob,
  CreateTransaction,
  EventMessage,
  EventsGroup,
  JobDetail,
  JobsGroup,
  JobsSnapshot,
  JobView,
  Progress,
  ProgressMessage,
  Reset,
  ServerGroup,
  ServerInfo,
  SpeedRequest,
  StateMachineGroup,
  Tables,
  TransactionCreated,
  TransactionsGroup
} from "./http/api.ts"
/** @since 0.1.0 */
export {
  type ApiError,
  BadRequest,
  Conflict,
  ErrorDetail,
  Forbidden,
  NotFound,
  ReadOnly,
  Unavailable,
  UnsupportedMediaType
} from "./http/errors.ts"
/** @since 0.1.0 */
export { layer as handlers } from "./http/handlers.ts"
/** @since 0.1.0 */
export { HttpListenError, layer, make, routes, type RunningServer, type ServeOptions } from "./http/server.ts"
/** @since 0.1.0 */
export { type HttpOptions, HttpState, layer as layerState } from "./http/state.ts"
