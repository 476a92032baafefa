/**
 * The CLI as a real process: `node src/cli/main.ts …` with Node 24 from the
 * dev dependencies, its output collected line by line.
 *
 * Nothing here sleeps: a test waits for a line (`waitFor`) or for the exit.
 */
import { Deferred, Effect, Exit, type Scope } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as http from "node:http"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const localNode = fileURLToPath(new URL("../../node_modules/.bin/node", import.meta.url))
export const node = fs.existsSync(localNode) ? localNode : process.execPath
export const main = fileURLToPath(new URL("../../src/cli/main.ts", import.meta.url))
/** Node's compile cache, shared by the test processes: each starts in about half the time. */
const compileCache = join(os.tmpdir(), "effect-jobs-cli-test-compile-cache")

export interface Exited {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export interface Cli {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** The first stdout line (seen already or later) matching `pattern`; fails if the process exits first. */
  readonly waitFor: (pattern: RegExp) => Effect.Effect<RegExpMatchArray, Error>
  readonly exited: Effect.Effect<Exited>
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

/** Starts `effect-jobs ARGS`; it is killed (SIGKILL) when the scope closes, if still running. */
export const start = (
  args: ReadonlyArray<string>,
  options: {
    readonly cwd?: string
    /** stdin: none (`ignore`, i.e. /dev/null), a pipe the test writes to, or the test's own. */
    readonly stdin?: "ignore" | "pipe"
    /** Run as this user and group (the tests run as root: to see what another user gets). */
    readonly user?: { readonly uid: number; readonly gid: number }
    /** On a terminal of this width: a pseudo-terminal made by `script` (util-linux); see `hasScript`. */
    readonly terminal?: { readonly columns: number }
    /** Another program to run with the same Node, e.g. a server fixture (default: the CLI). */
    readonly program?: string
  } = {}
): Effect.Effect<Cli, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const program = options.program ?? main
      const [command, argv] = options.terminal === undefined
        ? [node, [program, ...args]]
        : ["script", ["-qfec", `stty cols ${options.terminal.columns} rows 50; exec ${[node, program, ...args].map(quote).join(" ")}`, "/dev/null"]]
      const child = spawn(command, argv, {
        cwd: options.cwd,
        stdio: [options.stdin ?? "ignore", "pipe", "pipe"],
        // Another user could not write to the shared compile cache.
        env: { ...process.env, NO_COLOR: "1", ...(options.user === undefined ? { NODE_COMPILE_CACHE: compileCache } : {}) },
        ...(options.user === undefined ? {} : { uid: options.user.uid, gid: options.user.gid })
      })
      let out = ""
      let err = ""
      const waiters = new Set<{ readonly pattern: RegExp; readonly done: Deferred.Deferred<RegExpMatchArray, Error> }>()
      const exited = Deferred.makeUnsafe<Exited>()
      const firstMatch = (pattern: RegExp): RegExpMatchArray | undefined => {
        for (const line of out.split("\n").slice(0, -1)) { // complete lines only
          const match = line.match(pattern)
          if (match !== null) return match
        }
        return undefined
      }
      const check = () => {
        for (const waiter of waiters) {
          const match = firstMatch(waiter.pattern)
          if (match !== undefined) {
            waiters.delete(waiter)
            Deferred.doneUnsafe(waiter.done, Exit.succeed(match))
          }
        }
      }
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        check()
      })
      child.stderr!.on("data", (chunk: Buffer) => {
        err += chunk.toString()
      })
      child.on("close", (code, signal) => {
        for (const waiter of waiters) {
          Deferred.doneUnsafe(
            waiter.done,
            Exit.fail(
              new Error(
                `effect-jobs ${args.join(" ")} exited (${code ?? signal}) before printing ${waiter.pattern}\n` +
                  `stdout: ${out}\nstderr: ${err}`
              )
            )
          )
        }
        waiters.clear()
        Deferred.doneUnsafe(exited, Exit.succeed({ code, signal, stdout: out, stderr: err }))
      })
      const cli: Cli = {
        child,
        stdout: () => out,
        stderr: () => err,
        waitFor: (pattern) =>
          Effect.suspend(() => {
            const seen = firstMatch(pattern)
            if (seen !== undefined) return Effect.succeed(seen)
            if (Deferred.isDoneUnsafe(exited)) {
              return Effect.fail(new Error(`exited before printing ${pattern}\nstdout: ${out}\nstderr: ${err}`))
            }
            const done = Deferred.makeUnsafe<RegExpMatchArray, Error>()
            waiters.add({ pattern, done })
            return Deferred.await(done)
          }),
        exited: Deferred.await(exited),
        signal: (signal) =>
          Effect.sync(() => {
            child.kill(signal)
          })
      }
      return cli
    }),
    (cli) =>
      Effect.sync(() => {
        if (cli.child.exitCode === null && cli.child.signalCode === null) cli.child.kill("SIGKILL")
      })
  )

/**
 * Kills the process as a crash would (SIGKILL to its pid: it cleans nothing
 * up), and waits until it is gone and reaped, so that its pid no longer runs.
 */
export const crash = (cli: Cli): Effect.Effect<Exited> =>
  Effect.andThen(
    Effect.sync(() => {
      process.kill(cli.child.pid!, "SIGKILL")
    }),
    cli.exited
  )

/** A word for `sh -c`, quoted. */
const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`

/** Whether `script` (util-linux) is there to give a command a terminal. */
export const hasScript: boolean = spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0

/** Runs `effect-jobs ARGS` to its end. */
export const run = (
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly user?: { readonly uid: number; readonly gid: number } } = {}
): Effect.Effect<Exited> =>
  Effect.scoped(Effect.flatMap(start(args, options), (cli) => cli.exited))

/** A temporary directory, removed with the scope. Short: socket paths are limited to ~107 bytes. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-cli-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** `n` bytes of a pattern that differs from chunk to chunk. */
export const bytes = (n: number, seed = 7): Uint8Array => {
  const data = new Uint8Array(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    data[i] = x >>> 24
  }
  return data
}

export const entries = (dir: string): Array<string> => fs.readdirSync(dir).sort()

/** The server's addresses, from its `listening on …` lines. */
export const serve = (args: ReadonlyArray<string>, options: { readonly cwd?: string } = {}) =>
  Effect.gen(function*() {
    const server = yield* start(["serve", ...args], options)
    yield* server.waitFor(/^stop with/)
    const unix = server.stdout().match(/^listening on unix:(.+)$/m)?.[1]
    const tcp = server.stdout().match(/^listening on tcp:(.+)$/m)?.[1]
    return { server, unix, tcp }
  })

/** One HTTP request to `url` (a fresh connection); the status and the body, parsed as JSON when there is one. */
export const fetchJson = (url: string, options: { readonly method?: string; readonly body?: object } = {}) =>
  Effect.callback<{ readonly status: number; readonly json: any }>((resume) => {
    const req = http.request(url, {
      method: options.method ?? "GET",
      headers: options.body === undefined ? {} : { "content-type": "application/json" },
      agent: false
    }, (res) => {
      let text = ""
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        text += chunk
      })
      res.on("end", () => resume(Effect.succeed({ status: res.statusCode ?? 0, json: text === "" ? undefined : JSON.parse(text) })))
    })
    req.on("error", (error) => resume(Effect.die(error)))
    req.end(options.body === undefined ? undefined : JSON.stringify(options.body))
  })
