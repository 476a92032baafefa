/**
 * The QMP management server: any QMP client — QEMU's own tooling, `socat`, a
 * library in any language — can list, pause, resume, cancel, complete,
 * finalize and dismiss jobs, start `backup`/`mirror` jobs and transactions,
 * and follow their events, over a Unix socket or TCP, with QEMU's replies,
 * error classes and texts. `docs/qmp.md` is the reference of every command,
 * argument, event and error.
 *
 * The server needs `Jobs` (with the drivers it should run), `FileSystem` and
 * `Path` (for the socket file):
 *
 * ```ts
 * import { NodeRuntime, NodeServices } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { Jobs, Qmp } from "effect-jobs"
 *
 * Qmp.serve({ socket: "./effect-jobs.sock" }).pipe(
 *   Effect.provide(Layer.mergeAll(Jobs.layer, NodeServices.layer)),
 *   (program) => NodeRuntime.runMain(program, { teardown: Qmp.teardown })
 * )
 * ```
 *
 * TCP is on 127.0.0.1 by default. Any non-loopback address also needs
 * `allowRemote` and mutual TLS (`tcp: { host, port, allowRemote: true, tls:
 * { cert, key, ca } }`): only clients whose certificate the CA signed get as
 * far as the greeting. `connect` takes the matching `tls` in its target.
 *
 * `serve` returns when a client sends `quit`; a signal interrupts it. In both
 * cases the server sends `SHUTDOWN`, force-cancels every job and delivers the
 * jobs' events (then, for `quit`, its reply), closes its connections and
 * removes its socket file.
 *
 * @since 0.1.0
 */
import { Runtime } from "effect"

/** @since 0.1.0 */
export type { ShutdownReason } from "./qmp/command.ts"
/** @since 0.1.0 */
export type { ListenAddress, TcpOptions, TlsServerOptions } from "./qmp/transport.ts"
/** @since 0.1.0 */
export { formatAddress, QmpServerError } from "./qmp/transport.ts"
/** @since 0.1.0 */
export { defaultSocketPath, layer, make, QmpServer, type QmpServerShape, serve, type ServerOptions } from "./qmp/server.ts"
/** @since 0.1.0 */
export { defaultBlockJobTypes } from "./qmp/events.ts"
/** @since 0.1.0 */
export { maxLineBytes } from "./qmp/framing.ts"
/** @since 0.1.0 */
export { commandNames } from "./qmp/commands/index.ts"
/** @since 0.1.0 */
export { version, type VersionInfo } from "./qmp/wire.ts"
/** @since 0.1.0 */
export {
  connect,
  type EventMessage,
  type QmpClient,
  QmpClientError,
  QmpCommandError,
  type Reply,
  type Target,
  type TlsClientOptions
} from "./qmp/client.ts"

/**
 * A `runMain` teardown for a server process: a signal that interrupted the
 * program (SIGINT, SIGTERM) is a clean shutdown, exit code 0; other endings
 * keep their usual codes.
 *
 * @since 0.1.0
 * @category running
 */
export const teardown: Runtime.Teardown = (exit, onExit) => {
  const interruptedOnly = exit._tag === "Failure" && exit.cause.reasons.length > 0 &&
    exit.cause.reasons.every((reason) => reason._tag === "Interrupt")
  if (interruptedOnly) onExit(0)
  else Runtime.defaultTeardown(exit, onExit)
}
