/**
 * The checks every request of the API passes before its handler runs:
 *
 * - `Host` must name this server: its own address (`127.0.0.1:8080`), or on
 *   a loopback address also `localhost`, `127.0.0.1` and `[::1]` with its
 *   port, or one of `allowedHosts`. A page on another site that a DNS name
 *   of its own points at 127.0.0.1 (DNS rebinding) sends its own name, and
 *   is refused: 403.
 * - `Origin`, when a browser sends one, must be `http://` or `https://` and
 *   one of those hosts: a page on another site cannot use the API, even by
 *   a plain form or a `fetch` with no CORS preflight: 403.
 * - On a read-only server (`readOnly`), every request that is not a GET or
 *   HEAD is refused before anything else is looked at: 403, `ReadOnly`.
 * - A POST must say `Content-Type: application/json` (what a plain HTML form
 *   cannot send, so no form posts to the API): 415.
 *
 * It also answers, as JSON with QMP's texts, the request parts that the
 * HttpApi runtime refuses itself (a path or query parameter of the wrong
 * shape), which it would otherwise answer with an empty 400.
 */
import { Effect } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { HttpApiError } from "effect/http-api"
import * as NetAddress from "effect/net/NetAddress"
import { issueText } from "../qmp/args.ts"
import { type ApiError, badRequest, forbidden, readOnly, unsupportedMediaType } from "./errors.ts"

/** An error of the API as its response. */
export const errorResponse = (error: ApiError, status: number): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe({ error: error.error }, { status })

/**
 * The `Host` values (`name:port`, lower case) a server at `address` answers
 * to, with `extra`. A server bound to every address (`0.0.0.0`, `::`) is
 * reached locally by the loopback names; any other name it should answer to
 * goes in `extra`.
 */
export const ownHosts = (
  address: NetAddress.SocketAddress | undefined,
  extra: ReadonlyArray<string> = []
): ReadonlySet<string> => {
  const hosts = new Set(extra.map((host) => host.toLowerCase()))
  if (address === undefined || address._tag === "UnixPathAddress") return hosts
  const port = address.port
  const add = (host: string) => {
    hosts.add(`${host}:${port}`)
    // Port 80 is the default: a client may leave it out.
    if (port === 80) hosts.add(host)
  }
  add(NetAddress.isInetAddressV6(address) ? `[${NetAddress.formatHost(address)}]` : NetAddress.formatHost(address))
  if (NetAddress.isLoopback(address.address) || NetAddress.isUnspecified(address.address)) {
    add("localhost")
    add("127.0.0.1")
    add("[::1]")
  }
  return hosts
}

/** Requests that change nothing: all a read-only server answers. */
const reading = new Set(["GET", "HEAD"])

/** Why the request is refused, or `undefined`. */
export const check = (
  request: HttpServerRequest.HttpServerRequest,
  hosts: ReadonlySet<string>,
  options: { readonly readOnly?: boolean | undefined } = {}
): HttpServerResponse.HttpServerResponse | undefined => {
  const host = request.headers.host?.trim().toLowerCase()
  if (host === undefined || host === "") return errorResponse(forbidden("The request has no Host header"), 403)
  if (!hosts.has(host)) return errorResponse(forbidden(`Host '${host}' is not this server`), 403)
  const origin = request.headers.origin
  if (origin !== undefined && !originAllowed(origin, hosts)) {
    return errorResponse(forbidden(`Origin '${origin}' is not this server`), 403)
  }
  if (options.readOnly === true && !reading.has(request.method)) {
    const path = request.url.split("?")[0]
    return errorResponse(readOnly(`The server is read-only: ${request.method} ${path} is refused`), 403)
  }
  if (request.method === "POST") {
    const mediaType = (request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase()
    if (mediaType !== "application/json") {
      const given = mediaType === "" ? "none" : `'${mediaType}'`
      return errorResponse(unsupportedMediaType(`Content-Type must be application/json, not ${given}`), 415)
    }
  }
  return undefined
}

const originAllowed = (origin: string, hosts: ReadonlySet<string>): boolean => {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    // Also `null`, which a sandboxed or local page sends.
    return false
  }
  return (url.protocol === "http:" || url.protocol === "https:") && hosts.has(url.host.toLowerCase())
}

/** A request part the HttpApi runtime refused (it dies with it): the same as JSON. */
const schemaErrorResponse = (defect: unknown): HttpServerResponse.HttpServerResponse | undefined => {
  if (!HttpApiError.HttpApiSchemaError.is(defect)) return undefined
  if (defect.kind === "Body" || defect.kind === "ResponseHeaders") return undefined
  return errorResponse(badRequest(issueText(defect.cause.issue, undefined)), 400)
}

/**
 * The guard, for the routes it is provided to. The server's address comes
 * from its `HttpServer`, when there is one; `allowedHosts` adds to it.
 */
export const middleware = (
  options: {
    readonly allowedHosts?: ReadonlyArray<string> | undefined
    readonly readOnly?: boolean | undefined
  } = {}
) =>
  HttpRouter.middleware(Effect.gen(function*() {
    const server = yield* Effect.serviceOption(HttpServer.HttpServer)
    const hosts = ownHosts(server._tag === "Some" ? server.value.address : undefined, options.allowedHosts)
    return (httpEffect) =>
      Effect.gen(function*() {
        const refused = check(yield* HttpServerRequest.HttpServerRequest, hosts, options)
        return refused !== undefined ? refused : yield* httpEffect
      }).pipe(
        Effect.catchDefect((defect) => {
          const response = schemaErrorResponse(defect)
          return response === undefined ? Effect.die(defect) : Effect.succeed(response)
        })
      )
  }))
