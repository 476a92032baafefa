/**
 * Test harness: a QMP server in a fresh temporary directory (Unix socket) and,
 * optionally, on TCP 127.0.0.1 port 0, over `Jobs` with the test driver and the
 * backup/mirror stand-ins; and clients that connect to it.
 */
import { NodeServices } from "@effect/platform-node"
import { Deferred, Effect, Exit, FileSystem, Layer, Logger, type Path, type Scope } from "effect"
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
