/**
 * `npm start` passes signals on: the machine's npm runs the start script
 * (with the project's Node 24), a client starts a slow backup, and then the
 * npm process itself gets SIGTERM, SIGINT or SIGHUP — or its whole process
 * group gets SIGINT, as Ctrl-C in a terminal does. Each time the server
 * cancels the backup (its client sees the job end), removes its socket and
 * exits, and npm exits with 0 (npm itself dies of a SIGHUP: there, what counts
 * is that the server is not left running).
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { serverNodeOptions } from "../../src/cli/serverHeap.ts"
import { startSlowBackup, stoppedWhileB1Copies, wireClient, wireLabel } from "../qmp/harness.ts"
import { bytes, entries, tempDir } from "./harness.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface NpmExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** The processes below `pid` (Linux: read from /proc). */
const descendants = (pid: number): Array<number> => {
  const parents = new Map<number, Array<number>>()
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      // pid (comm) state ppid …: the command name may hold spaces, so read after its closing parenthesis.
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)])
    } catch {
      // It ended while we looked.
    }
  }
  const found: Array<number> = []
  const visit = (p: number) => {
    for (const child of parents.get(p) ?? []) {
      found.push(child)
      visit(child)
    }
  }
  visit(pid)
  return found
}

/** Whether `pid` is still running (an orphan that exited may stay a zombie: that counts as ended). */
const running = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

/**
 * `npm start -- ARGS` in the project, in a process group of its own; whatever
 * it started and left running is killed (SIGKILL) when the scope closes.
 */
const npmStart = (args: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child: ChildProcess = spawn("npm", ["start", "--", ...args], {
        cwd: root,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
          NO_COLOR: "1",
          npm_config_update_notifier: "false"
        }
      })
      let stdout = ""
      let stderr = ""
      const stopLine = Deferred.makeUnsafe<void, Error>()
      const exited = Deferred.makeUnsafe<NpmExit>()
      const closed = Deferred.makeUnsafe<void>()
      child.stdout!.on("data", (chunk: Buffer) => {
        stdout += chunk.toString()
        if (/^stop with /m.test(stdout)) Deferred.doneUnsafe(stopLine, Exit.void)
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        stderr += chunk.toString()
      })
      child.on("exit", (code, signal) => {
        Deferred.doneUnsafe(stopLine, Exit.fail(new Error(`npm start exited early\n${stdout}\n${stderr}`)))
        Deferred.doneUnsafe(exited, Exit.succeed({ code, signal }))
      })
      // Every end of the pipes is closed: npm has exited, and so has the server, which shares them.
      child.on("close", () => Deferred.doneUnsafe(closed, Exit.void))
      return {
        pid: child.pid!,
        stdout: () => stdout,
        stderr: () => stderr,
        started: Deferred.await(stopLine),
        exited: Deferred.await(exited),
        closed: Deferred.await(closed),
        /** The processes npm started, as seen once the server runs (killed with the scope if still running). */
        seen: [] as Array<number>
      }
    }),
    (npm) =>
      Effect.sync(() => {
        for (const pid of [npm.pid, ...npm.seen]) if (running(pid)) process.kill(pid, "SIGKILL")
      })
  )

/** Waits (at most 5 s) until `pid` no longer runs, checking every 20 ms. */
const awaitGone = (pid: number) =>
  Effect.suspend(() => (running(pid) ? Effect.fail("running" as const) : Effect.void)).pipe(
    Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 250 }),
    Effect.ignore
  )


/** Starts the server with npm, a slow backup in it, then signals npm (or its group); checks the server ended cleanly. */
const stopWith = (signal: NodeJS.Signals, to: "npm" | "group") =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const socket = join(dir, "s.sock")
    fs.writeFileSync(join(dir, "src"), bytes(3_000_000))
    // A free port for the HTTP API: the default 8080 may be taken on the machine.
    const npm = yield* npmStart(["--socket", socket, "--http", "127.0.0.1:0"])
    yield* npm.started
    npm.seen.push(...descendants(npm.pid))
    assert.isNotEmpty(npm.seen)
    // The server runs with its V8 options (a bounded young generation).
    const commandLines = npm.seen.map((pid) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0"))
    assert.isTrue(
      commandLines.some((argv) => argv.includes("src/cli/start.ts") && serverNodeOptions.every((o) => argv.includes(o))),
      JSON.stringify(commandLines)
    )
    assert.include(npm.stdout(), `listening on unix:${socket}\n`)
    assert.include(npm.stdout(), `jobs kept in sqlite:${join(dir, "effect-jobs.db")}\n`)

    // The server's directory is the project's: the backup's paths are absolute.
    const client = yield* wireClient({ path: socket })
    const from = yield* startSlowBackup(client, join(dir, "src"), join(dir, "dst"))

    process.kill(to === "npm" ? npm.pid : -npm.pid, signal)
    yield* client.closed
    assert.deepStrictEqual(client.messages.slice(from).map(wireLabel), stoppedWhileB1Copies)
    const exit = yield* npm.exited
    // npm has no handler for SIGHUP, so it dies of it; every other signal it passes on, and exits as the server did.
    const npmDiesOfIt = signal === "SIGHUP"
    assert.deepStrictEqual(exit, npmDiesOfIt ? { code: null, signal: "SIGHUP" } : { code: 0, signal: null }, npm.stderr())
    yield* npm.closed
    // Output closed is not the process gone: a process may still be exiting (no event tells another process when).
    for (const pid of npm.seen) yield* awaitGone(pid)
    for (const pid of npm.seen) assert.isFalse(running(pid), `process ${pid} that npm started is still running`)
    assert.match(npm.stdout(), /shutting down \(signal\)\ncancelling 1 job: b1\nstopped\n$/)
    if (npmDiesOfIt && to === "npm") assert.match(npm.stderr(), /the parent process \(\d+\) is gone; stopping/)
    assert.deepStrictEqual(entries(dir), ["effect-jobs.db", "src"])
  }).pipe(Effect.scoped)

describe("npm start", () => {
  it.live("SIGTERM to npm: the server cancels its jobs, removes its socket and exits; npm exits with 0", () =>
    stopWith("SIGTERM", "npm"))

  it.live("SIGINT to npm: the same", () => stopWith("SIGINT", "npm"))

  it.live("SIGINT to npm's process group (Ctrl-C in a terminal): the same", () => stopWith("SIGINT", "group"))

  it.live("SIGHUP to npm: npm dies of it, and the server, left without it, stops cleanly all the same", () =>
    stopWith("SIGHUP", "npm"))
})
