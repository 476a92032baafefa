/**
 * Test harness for the HTTP API: a server on 127.0.0.1 port 0 over `Jobs`
 * with the test driver, a plain HTTP client (node:http, no keep-alive, any
 * headers — `Host` included), and an event-stream client that reads the
 * server's bytes as they arrive and parses them into messages.
 *
 * Nothing here sleeps: a test waits for a message (`take`, `takeUntil`) or
 * for the end of a stream (`ended`).
 */
import { Deferred, Effect, Exit, Layer, type Scope } from "effect"
import * as http from "node:http"
import * as Http from "../../src/Http.ts"
import type { Jobs } from "../../src/Jobs.ts"
import * as Testing from "../../src/testing.ts"

/** A server of the API, in the current scope. */
export const serve = (options: Omit<Http.ServeOptions, "port"> = {}) =>
  Effect.map(Http.make({ port: 0, ...options }), (server) => {
    const { port } = server.address as { readonly port: number }
    return { ...server, port, host: `127.0.0.1:${port}` }
  })

export type Server = Effect.Success<ReturnType<typeof serve>>

/** `Jobs` with the test driver (and its callback log). */
export const jobsLayer = Testing.layer

export interface Response {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
  /** The body parsed as JSON (`undefined` when empty). */
  readonly json: any
}

export interface RequestOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  /** Sent as it is; an object is sent as JSON with `Content-Type: application/json`. */
  readonly body?: string | object
}

/** One request, with no connection reuse. */
export const request = (server: Server, path: string, options: RequestOptions = {}): Effect.Effect<Response> =>
  Effect.callback<Response>((resume) => {
    const headers: Record<string, string> = { host: server.host, ...options.headers }
    let body: string | undefined
    if (typeof options.body === "string") body = options.body
    else if (options.body !== undefined) {
      body = JSON.stringify(options.body)
      headers["content-type"] ??= "application/json"
    }
    const req = http.request({
      host: "127.0.0.1",
      port: server.port,
      path,
      method: options.method ?? (body === undefined ? "GET" : "POST"),
      headers,
      agent: false
    }, (res) => {
      const chunks: Array<Buffer> = []
      res.on("data", (chunk: Buffer) => chunks.push(chunk))
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8")
        const isJson = res.headers["content-type"]?.startsWith("application/json") === true
        resume(Effect.succeed({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          json: isJson && text !== "" ? JSON.parse(text) : undefined
        }))
      })
    })
    req.on("error", (error) => resume(Effect.die(error)))
    req.end(body)
  })

/** A POST with a JSON body (`{}` unless given). */
export const post = (server: Server, path: string, body: object = {}) => request(server, path, { body })

/** One message of an event stream. */
export type Message =
  | { readonly _tag: "Comment"; readonly text: string }
  | { readonly _tag: "Event"; readonly id: string | undefined; readonly event: string; readonly data: string }

/** A job event message's parts. */
export const eventOf = (message: Message) => {
  if (message._tag !== "Event") throw new Error(`expected an event, got the comment ': ${message.text}'`)
  return { id: message.id === undefined ? undefined : Number(message.id), event: message.event, data: JSON.parse(message.data) }
}

/** How an event stream ended: `complete` when the body ended normally, not with a reset connection. */
export interface Ended {
  readonly complete: boolean
}

export interface EventStream {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  /** Every message received so far. */
  readonly received: ReadonlyArray<Message>
  /** The raw text received so far. */
  readonly raw: () => string
  /** The next message not taken yet (waits for it); fails if the stream ends first. */
  readonly take: Effect.Effect<Message, Error>
  /** Takes messages until one matches, returning all of them (the matching one last). */
  readonly takeUntil: (predicate: (message: Message) => boolean) => Effect.Effect<ReadonlyArray<Message>, Error>
  /** The stream's end (already, or later). */
  readonly ended: Effect.Effect<Ended>
  /** Drops the connection. */
  readonly close: Effect.Effect<void>
}

const parseBlock = (block: string): Message | undefined => {
  const lines = block.split("\n")
  if (lines.every((line) => line.startsWith(":"))) {
    return { _tag: "Comment", text: lines.map((line) => line.slice(1).trim()).join("\n") }
  }
  let id: string | undefined
  let event = "message"
  const data: Array<string> = []
  for (const line of lines) {
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "id") id = value
    else if (field === "event") event = value
    else if (field === "data") data.push(value)
  }
  return { _tag: "Event", id, event, data: data.join("\n") }
}

/**
 * `GET path` as an event stream; returns once the response's headers (and,
 * with them, its first message) have arrived: the server has subscribed by
 * then. The connection is dropped when the scope closes.
 */
export const events = (
  server: Server,
  path = "/api/events",
  headers: Record<string, string> = {}
): Effect.Effect<EventStream, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ stream: EventStream; req: http.ClientRequest }>((resume) => {
      const received: Array<Message> = []
      let raw = ""
      let taken = 0
      let pending = ""
      let waiter: (() => void) | undefined
      const ended = Deferred.makeUnsafe<Ended>()
      const wake = () => {
        const w = waiter
        waiter = undefined
        w?.()
      }
      const end = (complete: boolean) => {
        Deferred.doneUnsafe(ended, Exit.succeed({ complete }))
        wake()
      }
      const req = http.get({
        host: "127.0.0.1",
        port: server.port,
        path,
        headers: { host: server.host, ...headers },
        agent: false
      }, (res) => {
        let started = false
        const start = () => {
          if (started) return
          started = true
          resume(Effect.succeed({ stream, req }))
        }
        const take: Effect.Effect<Message, Error> = Effect.suspend(() => {
          if (taken < received.length) return Effect.succeed(received[taken++]!)
          if (Deferred.isDoneUnsafe(ended)) {
            return Effect.fail(new Error(`the event stream ended; received:\n${raw}`))
          }
          return Effect.andThen(
            Effect.callback<void>((wakeUp) => {
              waiter = () => wakeUp(Effect.void)
            }),
            take
          )
        })
        const stream: EventStream = {
          status: res.statusCode ?? 0,
          headers: res.headers,
          received,
          raw: () => raw,
          take,
          takeUntil: (predicate) =>
            Effect.gen(function*() {
              const out: Array<Message> = []
              while (true) {
                const message = yield* take
                out.push(message)
                if (predicate(message)) return out
              }
            }),
          ended: Deferred.await(ended),
          close: Effect.sync(() => {
            req.destroy()
          })
        }
        res.setEncoding("utf8")
        res.on("data", (chunk: string) => {
          raw += chunk
          pending += chunk
          let boundary: number
          while ((boundary = pending.indexOf("\n\n")) !== -1) {
            const message = parseBlock(pending.slice(0, boundary))
            pending = pending.slice(boundary + 2)
            if (message !== undefined) received.push(message)
          }
          start()
          wake()
        })
        res.on("end", () => {
          start()
          end(true)
        })
        res.on("error", () => end(false))
        res.on("close", () => {
          start()
          end(false)
        })
        // A response with a body that is not a stream (an error) arrives whole.
        if (res.headers["content-type"]?.startsWith("text/event-stream") !== true) start()
      })
      req.on("error", () => end(false))
    }),
    ({ req }) => Effect.sync(() => req.destroy())
  ).pipe(Effect.map(({ stream }) => stream))

/** The job events of `messages` (comments and other events left out). */
export const jobEvents = (messages: ReadonlyArray<Message>) =>
  messages.filter((m) => m._tag === "Event" && m.id !== undefined && m.event !== "reset").map(eventOf)

/** `Jobs` and the server's own layer for tests that need `Jobs` with options. */
export const layerWith = (options: Parameters<typeof Testing.layerWith>[0]): Layer.Layer<Jobs | Testing.CallbackLog> =>
  Testing.layerWith(options)
