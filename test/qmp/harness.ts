/**
 * Test harness: a QMP server in a fresh temporary directory (Unix socket) and,
 * optionally, on TCP 127.0.0.1 port 0, over `Jobs` with the test driver and the
 * backup/mirror stand-ins; clients that connect to it; and a client that keeps
 * replies and events in the order they arrived (`wireClient`).
 */
import { NodeServices } from "@effect/platform-node"
import { Deferred, Effect, Exit, FileSystem, Layer, Logger, type Path, type Scope } from "effect"
import * as net from "node:net"
import type { Jobs } from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"
import * as Testing from "../../src/testing.ts"
import * as StandIn from "./standIn.ts"

/** Jobs + test driver + stand-ins + Node file system. */
export const layer = StandIn.layer.pipe(
  Layer.provideMerge(Testing.layer),
  Layer.provideMerge(NodeServices.layer)
)

export type Transport = "unix" | "tcp"

export interface Harness {
  readonly dir: string
  readonly server: Qmp.QmpServerShape
  readonly unix: Qmp.Target
  readonly tcp: Qmp.Target
  /** A negotiated client on the given transport (default unix). */
  readonly client: (transport?: Transport) => Effect.Effect<Qmp.QmpClient, Qmp.QmpClientError, Scope.Scope>
  /** A client that has only read the greeting. */
  readonly fresh: (transport?: Transport) => Effect.Effect<Qmp.QmpClient, Qmp.QmpClientError, Scope.Scope>
}

export const startServer = (
  options: Omit<Qmp.ServerOptions, "socket" | "tcp"> = {}
): Effect.Effect<Harness, Qmp.QmpServerError, Jobs | FileSystem.FileSystem | Path.Path | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* Effect.orDie(fs.makeTempDirectoryScoped({ prefix: "qmp-test-" }))
    const server = yield* Qmp.make({
      blockJobTypes: [...Qmp.defaultBlockJobTypes],
      ...options,
      socket: `${dir}/effect-jobs.sock`,
      tcp: { host: "127.0.0.1", port: 0 }
    })
    const unixAddress = server.addresses.find((a) => a._tag === "Unix")!
    const tcpAddress = server.addresses.find((a) => a._tag === "Tcp")!
    const unix: Qmp.Target = { path: unixAddress._tag === "Unix" ? unixAddress.path : "" }
    const tcp: Qmp.Target = tcpAddress._tag === "Tcp" ? { host: tcpAddress.host, port: tcpAddress.port } : { path: "" }
    const target = (transport: Transport = "unix") => (transport === "unix" ? unix : tcp)
    return {
      dir,
      server,
      unix,
      tcp,
      client: (transport) => Qmp.connect(target(transport)),
      fresh: (transport) => Qmp.connect(target(transport), { negotiate: false })
    }
  })

/** Log lines captured instead of printed, with a way to wait for one. */
export interface LogCapture {
  readonly lines: Array<{ readonly level: string; readonly text: string }>
  readonly layer: Layer.Layer<never>
  /** Waits until a line matching `pattern` (at `level`) has been logged. */
  readonly waitFor: (pattern: RegExp, level?: string) => Effect.Effect<string>
}

export const captureLogs = (): LogCapture => {
  const lines: Array<{ readonly level: string; readonly text: string }> = []
  const waiters: Array<{ readonly test: (l: { level: string; text: string }) => boolean; readonly done: Deferred.Deferred<string> }> = []
  const logger = Logger.make(({ logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m))).join(" ")
    const line = { level: logLevel, text }
    lines.push(line)
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.test(line)) Deferred.doneUnsafe(waiters.splice(i, 1)[0]!.done, Exit.succeed(text))
    }
  })
  return {
    lines,
    layer: Logger.layer([logger]),
    waitFor: (pattern, level) =>
      Effect.suspend(() => {
        const test = (l: { level: string; text: string }) => pattern.test(l.text) && (level === undefined || l.level === level)
        const seen = lines.find(test)
        if (seen !== undefined) return Effect.succeed(seen.text)
        const done = Deferred.makeUnsafe<string>()
        waiters.push({ test, done })
        return Deferred.await(done)
      })
  }
}

/** One message as received: a reply (`return`/`error`, with its `id`) or an event. */
export type WireMessage = Readonly<Record<string, unknown>> & {
  readonly event?: string
  readonly data?: Readonly<Record<string, unknown>>
}

/**
 * A negotiated client that records every message after the greeting — replies
 * and events alike — in the order the bytes arrived, so that a test can tell
 * whether an event came before or after a reply. (`Qmp.connect` matches replies
 * to commands and keeps events apart, which loses that order.)
 */
export interface WireClient {
  readonly messages: ReadonlyArray<WireMessage>
  /** Sends a command; returns the index of its reply in `messages` once it has arrived. */
  readonly execute: (command: string, args?: Readonly<Record<string, unknown>>) => Effect.Effect<number, Error>
  /** The index of the first message (arrived already or later) from `from` on matching `predicate`. */
  readonly awaitMessage: (predicate: (message: WireMessage) => boolean, from?: number) => Effect.Effect<number, Error>
  /** Completes when the server has closed the connection. */
  readonly closed: Effect.Effect<void>
}

export const wireClient = (
  target: Qmp.Target,
  options: {
    /** Ends each message with a newline (default); QEMU's own client library sends none. */
    readonly newline?: boolean | undefined
  } = {}
): Effect.Effect<WireClient, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* Effect.acquireRelease(
      Effect.callback<net.Socket, Error>((resume) => {
        const s = "path" in target ? net.createConnection(target.path) : net.createConnection(target.port, target.host)
        s.once("connect", () => resume(Effect.succeed(s)))
        s.once("error", (e) => resume(Effect.fail(e)))
      }),
      (s) => Effect.sync(() => s.destroy())
    )
    const messages: Array<WireMessage> = []
    const waiters = new Set<{ readonly test: () => number | undefined; readonly done: Deferred.Deferred<number, Error> }>()
    const closed = Deferred.makeUnsafe<void>()
    const find = (predicate: (message: WireMessage) => boolean, from: number) => {
      for (let i = from; i < messages.length; i++) if (predicate(messages[i]!)) return i
      return undefined
    }
    let pending = ""
    let greeted = false
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => {
      pending += chunk
      let newline: number
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim()
        pending = pending.slice(newline + 1)
        if (line === "") continue
        if (!greeted) greeted = true // the greeting
        else messages.push(JSON.parse(line) as WireMessage)
      }
      for (const waiter of waiters) {
        const index = waiter.test()
        if (index !== undefined) {
          waiters.delete(waiter)
          Deferred.doneUnsafe(waiter.done, Exit.succeed(index))
        }
      }
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      for (const waiter of waiters) Deferred.doneUnsafe(waiter.done, Exit.fail(new Error("connection closed")))
      waiters.clear()
      Deferred.doneUnsafe(closed, Exit.void)
    })
    const awaitMessage = (predicate: (message: WireMessage) => boolean, from = 0) =>
      Effect.suspend(() => {
        const test = () => find(predicate, from)
        const seen = test()
        if (seen !== undefined) return Effect.succeed(seen)
        if (Deferred.isDoneUnsafe(closed)) return Effect.fail(new Error("connection closed"))
        const done = Deferred.makeUnsafe<number, Error>()
        waiters.add({ test, done })
        return Deferred.await(done)
      })
    let nextId = 0
    const execute = (command: string, args?: Readonly<Record<string, unknown>>) =>
      Effect.suspend(() => {
        const id = `c${nextId++}`
        const message = JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })
        socket.write(options.newline === false ? message : message + "\n")
        return awaitMessage((m) => m.id === id && ("return" in m || "error" in m))
      })
    yield* execute("qmp_capabilities")
    return { messages, execute, awaitMessage, closed: Deferred.await(closed) }
  })

/** A message as `job:status` for a status change, the event's name for other events, `reply` for a reply. */
export const wireLabel = (m: WireMessage): string =>
  m.event === "JOB_STATUS_CHANGE" ? `${m.data?.id}:${m.data?.status}` : m.event ?? "reply"

/**
 * Starts backup `b1` at 64 KiB/s (still copying when the test stops the server)
 * and waits until it runs; returns where the messages after that begin.
 */
export const startSlowBackup = (client: WireClient, source: string, target: string) =>
  Effect.map(
    Effect.andThen(
      client.execute("backup", { "job-id": "b1", source, target, speed: 65_536 }),
      client.awaitMessage((m) => wireLabel(m) === "b1:running")
    ),
    () => client.messages.length
  )

/** What a client sees, in `wireLabel`s, when the server stops while `b1` is copying. */
export const stoppedWhileB1Copies = ["SHUTDOWN", "b1:aborting", "BLOCK_JOB_CANCELLED", "b1:concluded", "b1:null"]
