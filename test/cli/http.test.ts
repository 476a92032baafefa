/**
 * The HTTP API from the command line, as real processes: `serve --http
 * 127.0.0.1:0` prints the URL it got and serves the API next to QMP; a
 * `watch --http URL` follows a backup started over HTTP, sees the end of the
 * one still running when the server stops (the server cancels it), then the
 * server's end, and exits with code 0; a non-loopback `--http` is refused with exit
 * code 2; the last `--http` counts (`npm start`'s default is replaced by the
 * one given after `--`), and `off` serves none.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { bytes, fetchJson, run, start, tempDir } from "./harness.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

const time = String.raw`\d\d:\d\d:\d\d`

describe("effect-jobs serve --http, watch --http", () => {
  it.live("serve prints the URL it got; the API works; watch --http follows a job and ends with the server", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      fs.writeFileSync(join(dir, "src"), bytes(4 * 1024 * 1024))
      const server = yield* start(["serve", "--socket", join(dir, "s.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
      const [, url] = yield* server.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/)
      yield* server.waitFor(/^stop with/)
      assert.include(server.stdout(), `\n  curl ${url}/api/jobs\n`)
      assert.include(server.stdout(), `\n  npx effect-jobs watch --http ${url}\n`)
      assert.deepStrictEqual((yield* fetchJson(`${url!}/api/jobs`)).json, { seq: 0, jobs: [] })

      const watch = yield* start(["watch", "--http", url!])
      yield* watch.waitFor(/^watching http:\/\/127\.0\.0\.1:\d+: 0 jobs$/)
      // 256 KiB/s: 16 seconds for the whole copy; it is cancelled long before.
      const created = yield* fetchJson(`${url!}/api/jobs`, {
        method: "POST",
        body: { type: "backup", id: "b0", speed: 256 * 1024, params: { source: "src", target: "dst" } }
      })
      assert.strictEqual(created.status, 201, JSON.stringify(created.json))
      yield* watch.waitFor(new RegExp(`^${time} b0 backup running {2}[\\d.]+ (KiB|MiB) / 4\\.00 MiB {2}\\d+% .* limit 256 KiB/s$`))
      const cancelled = yield* fetchJson(`${url!}/api/jobs/b0/cancel`, { method: "POST", body: { force: true } })
      assert.strictEqual(cancelled.status, 204)
      yield* watch.waitFor(new RegExp(`^${time} b0 null$`))
      // A job still running when the server stops: the watch sees its end before the server's.
      yield* fetchJson(`${url!}/api/jobs`, {
        method: "POST",
        body: { type: "backup", id: "b1", speed: 256 * 1024, params: { source: "src", target: "dst" } }
      })
      yield* watch.waitFor(new RegExp(`^${time} b1 running$`))

      yield* server.signal("SIGTERM")
      const exited = yield* watch.exited
      assert.strictEqual(exited.code, 0, exited.stderr)
      const events = exited.stdout.split("\n").filter((line) => new RegExp(`^${time} (b\\d \\S+|server .*)$`).test(line))
        .map((line) => line.slice(9))
      const end = (id: string) => [`${id} aborting`, `${id} Cancelled`, `${id} concluded`, `${id} null`]
      assert.deepStrictEqual(events, [
        "b0 created",
        "b0 running",
        ...end("b0"),
        "b1 created",
        "b1 running",
        ...end("b1"),
        "server shutting down (server stopping)"
      ])
      assert.strictEqual(exited.stdout.split("\n").at(-2), "the server shut down")
      assert.strictEqual((yield* server.exited).code, 0)
      assert.isFalse(fs.existsSync(join(dir, "dst")))
    }).pipe(Effect.scoped), 60_000)

  it.live("a non-loopback --http is refused (exit 2); so is --http with another server address for watch", () =>
    Effect.gen(function*() {
      const [remote, bad, watchBoth, watchUrl] = yield* Effect.all([
        run(["serve", "--http", "0.0.0.0:8080"]),
        run(["serve", "--http", "localhost:port"]),
        run(["watch", "--http", "http://127.0.0.1:8080", "--socket", "x.sock"]),
        run(["watch", "--http", "ftp://127.0.0.1:8080"])
      ], { concurrency: "unbounded" })
      assert.strictEqual(remote.code, 2)
      assert.include(
        remote.stderr,
        "effect-jobs: --http 0.0.0.0:8080: the HTTP API has no authentication, so it listens on a loopback address only"
      )
      assert.strictEqual(remote.stdout, "")
      assert.strictEqual(bad.code, 2)
      assert.include(bad.stderr, "--http expects HOST:PORT with a port number, not 'port'")
      assert.strictEqual(watchBoth.code, 2)
      assert.include(watchBoth.stderr, "--http names the server by itself: it cannot be used with --socket")
      assert.strictEqual(watchUrl.code, 2)
      assert.include(watchUrl.stderr, "an http://HOST:PORT URL, not 'ftp://127.0.0.1:8080'")
    }), 60_000)

  it.live("the last --http counts, and off serves none", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const replaced = yield* start(["serve", "--socket", join(dir, "a.sock"), "--http", "127.0.0.1:1", "--http", "127.0.0.1:0"])
      yield* replaced.waitFor(/^stop with/)
      const [, port] = replaced.stdout().match(/^listening on http:\/\/127\.0\.0\.1:(\d+) \(HTTP API\)$/m)!
      assert.notStrictEqual(port, "1")
      yield* replaced.signal("SIGTERM")
      assert.strictEqual((yield* replaced.exited).code, 0)

      const off = yield* start(["serve", "--socket", join(dir, "b.sock"), "--http", "127.0.0.1:0", "--http", "off"])
      yield* off.waitFor(/^stop with/)
      assert.notInclude(off.stdout(), "http://")
      yield* off.signal("SIGTERM")
      assert.strictEqual((yield* off.exited).code, 0)
    }).pipe(Effect.scoped), 60_000)

  it.live("npm start serves the API on 127.0.0.1:8080 unless told otherwise after --", () =>
    Effect.gen(function*() {
      const pkg = JSON.parse(fs.readFileSync(join(root, "package.json"), "utf8")) as { scripts: { start: string } }
      assert.match(pkg.scripts.start, / serve .*--http 127\.0\.0\.1:8080$/)
      // Port 8080 may be taken on a test machine: what counts is that an --http after -- replaces it.
      const dir = yield* tempDir
      const started = yield* Deferred.make<string>()
      const child = spawn("npm", ["start", "--", "--socket", join(dir, "s.sock"), "--http", "127.0.0.1:0"], {
        cwd: root,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          PATH: `${join(root, "node_modules", ".bin")}:${process.env.PATH ?? ""}`,
          npm_config_update_notifier: "false"
        }
      })
      yield* Effect.addFinalizer(() =>
        Effect.sync(() => {
          try {
            process.kill(-child.pid!, "SIGKILL")
          } catch {
            // Gone already.
          }
        })
      )
      let out = ""
      child.stdout!.on("data", (chunk: Buffer) => {
        out += chunk.toString()
        const url = out.match(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/m)?.[1]
        if (url !== undefined) Deferred.doneUnsafe(started, Exit.succeed(url))
      })
      const exited = Deferred.makeUnsafe<number | null>()
      child.on("close", (code) => {
        Deferred.doneUnsafe(started, Exit.die(new Error(`npm start exited (${code}) early:\n${out}`)))
        Deferred.doneUnsafe(exited, Exit.succeed(code))
      })
      const url = yield* Deferred.await(started)
      assert.notStrictEqual(url, "http://127.0.0.1:8080")
      assert.deepStrictEqual((yield* fetchJson(`${url}/api/jobs`)).json, { seq: 0, jobs: [] })
      process.kill(-child.pid!, "SIGTERM")
      assert.strictEqual(yield* Deferred.await(exited), 0)
    }).pipe(Effect.scoped), 60_000)
})
