/**
 * A private PostgreSQL server for tests: `initdb` into a temporary directory,
 * then `postgres` listening only on a unix socket in that directory, stopped
 * and removed when the scope closes. Nothing is shared with a system server.
 *
 * PostgreSQL refuses to run as root, so when the tests run as root the
 * cluster belongs to the `postgres` user (which Debian's package creates), or
 * to `nobody` when there is none. The binaries are found on the `PATH`, or
 * where Debian puts them (`/usr/lib/postgresql/<version>/bin`, newest first).
 */
import { PgClient } from "@effect/sql-pg"
import { Effect, Exit, Redacted, type Scope } from "effect"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { delimiter, join } from "node:path"

export interface PostgresCluster {
  /** The directory holding the data directory, the socket and the server's log. */
  readonly dir: string
  /** A connection URL for `database`. */
  readonly url: (database: string) => string
  /** Creates a new, empty database and gives its URL. */
  readonly createDatabase: (name: string) => Effect.Effect<string>
  /** What the server wrote to stderr so far (its log). */
  readonly log: () => string
}

/** The cluster's superuser: every test connects as it, over the socket, without a password. */
const superuser = "effect_jobs"
const port = 5432

/** The directory with `initdb` and `postgres`: on the PATH, else Debian's versioned one. */
const binDir = (): string => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir !== "" && fs.existsSync(join(dir, "initdb")) && fs.existsSync(join(dir, "postgres"))) {
      // A symlink (as in /usr/local/bin) is followed: `postgres` must sit beside the real initdb.
      return join(fs.realpathSync(join(dir, "initdb")), "..")
    }
  }
  const debian = "/usr/lib/postgresql"
  const versions = fs.existsSync(debian)
    ? fs.readdirSync(debian).filter((v) => fs.existsSync(join(debian, v, "bin", "initdb")))
      .sort((a, b) => Number(b) - Number(a))
    : []
  if (versions.length === 0) {
    throw new Error(
      "PostgreSQL is not installed: no initdb on the PATH or under /usr/lib/postgresql/*/bin " +
        "(on Debian: apt-get install postgresql; .ci/run does it)"
    )
  }
  return join(debian, versions[0]!, "bin")
}

/** Whom the server runs as: this process's user, or — for root — `postgres` or `nobody`. */
const serverUser = (): { readonly uid: number; readonly gid: number } | undefined => {
  if (process.getuid?.() !== 0) return undefined
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim())
      const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim())
      return { uid, gid }
    } catch {
      // no such user: try the next
    }
  }
  throw new Error("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL as")
}

/** How long the server may take to start or stop before the fixture gives up. */
const deadlineMillis = 20_000

/** Starts `postgres` and resolves once it accepts connections (it says so on stderr). */
const startServer = (
  bin: string,
  data: string,
  dir: string,
  user: { readonly uid: number; readonly gid: number } | undefined,
  durable: boolean
): Effect.Effect<{ readonly child: ChildProcess; readonly log: () => string }, Error> =>
  Effect.callback<{ readonly child: ChildProcess; readonly log: () => string }, Error>((resume) => {
    const child = spawn(join(bin, "postgres"), [
      "-D", data,
      "-k", dir,
      "-p", String(port),
      "-c", "listen_addresses=",
      // A test cluster is thrown away: it need not survive a power cut (a benchmark's must).
      ...(durable ? [] : ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"])
    ], { stdio: ["ignore", "ignore", "pipe"], ...(user ?? {}) })
    let log = ""
    let done = false
    const finish = (exit: Exit.Exit<{ readonly child: ChildProcess; readonly log: () => string }, Error>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resume(exit)
    }
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      finish(Exit.fail(new Error(`postgres did not start within ${deadlineMillis} ms:\n${log}`)))
    }, deadlineMillis)
    child.stderr!.on("data", (chunk: Buffer) => {
      log += chunk.toString()
      if (log.includes("database system is ready to accept connections")) {
        finish(Exit.succeed({ child, log: () => log }))
      }
    })
    child.on("error", (error) => finish(Exit.fail(error)))
    child.on("exit", (code, signal) => finish(Exit.fail(new Error(`postgres exited (${code ?? signal}):\n${log}`))))
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** Stops the server with a fast shutdown, and waits for it to exit (a kill if it will not). */
const stopServer = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => child.kill("SIGKILL"), deadlineMillis)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill("SIGINT")
  })

/**
 * A fresh cluster, running until the scope closes; then stopped and its directory removed.
 * `durable`: Postgres's own defaults (fsync on, every commit flushed); otherwise, for tests, off.
 */
export const postgresClusterWith = (
  options: { readonly durable: boolean }
): Effect.Effect<PostgresCluster, Error, Scope.Scope> => Effect.gen(function*() {
  const bin = yield* Effect.try({ try: binDir, catch: (e) => e as Error })
  const user = yield* Effect.try({ try: serverUser, catch: (e) => e as Error })
  // Short: a unix socket's path is limited to about 107 bytes.
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const dir = fs.mkdtempSync(join(os.tmpdir(), "ej-pg-"))
      if (user !== undefined) fs.chownSync(dir, user.uid, user.gid)
      return dir
    }),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
  )
  const data = join(dir, "data")
  yield* Effect.try({
    try: () =>
      execFileSync(join(bin, "initdb"), [
        "-D", data,
        "-U", superuser,
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--no-sync",
        "--no-instructions"
      ], { stdio: ["ignore", "pipe", "pipe"], ...(user ?? {}) }),
    catch: (e) => new Error(`initdb failed: ${(e as { stderr?: Buffer }).stderr?.toString() ?? String(e)}`)
  })
  const server = yield* Effect.acquireRelease(
    startServer(bin, data, dir, user, options.durable),
    ({ child }) => stopServer(child)
  )
  const url = (database: string) =>
    `postgres://${superuser}@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(dir)}&port=${port}`

  const createDatabase = (name: string): Effect.Effect<string> =>
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      // FILE_COPY: a plain copy of template1, quicker than WAL-logging it on a server that does not fsync.
      yield* sql`CREATE DATABASE ${sql(name)} STRATEGY = FILE_COPY`
      return url(name)
    }).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url("postgres")) })),
      Effect.orDie
    )

  return { dir, url, createDatabase, log: server.log }
})

/** A test cluster: fast, and nothing it holds survives a power cut. */
export const postgresCluster: Effect.Effect<PostgresCluster, Error, Scope.Scope> = postgresClusterWith({ durable: false })
