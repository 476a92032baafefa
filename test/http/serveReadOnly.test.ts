/**
 * `effect-jobs serve --http … --http-read-only` as a real process: it prints
 * the dashboard's URL, says it is read-only, refuses a POST with a 403, tells
 * `GET /api/server` so, with the flags of `effect-jobs qmp` that reach its
 * QMP socket; without an `--http` the flag is a usage error (exit code 2).
 * Without the flag, the same server creates jobs and prints the plain URL.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { join } from "node:path"
import { fetchJson, run, start, tempDir } from "../cli/harness.ts"

describe("serve --http-read-only", () => {
  it.live("prints the dashboard's URL, refuses every POST with 403, and says so in GET /api/server", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const socket = join(dir, "s.sock")
      const [readOnly, plain] = yield* Effect.all([
        start(["serve", "--socket", socket, "--http", "127.0.0.1:0", "--http-read-only"], { cwd: dir }),
        // A store of its own: the default one, beside the socket, is the other server's.
        start(["serve", "--socket", join(dir, "p.sock"), "--store", `sqlite:${join(dir, "p.db")}`, "--http", "127.0.0.1:0"], {
          cwd: dir
        })
      ])
      const [, url] = yield* readOnly.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/)
      yield* readOnly.waitFor(/^stop with/)
      assert.include(readOnly.stdout(), `\ndashboard: ${url}/ (read-only: the API refuses every POST)\n`)
      const refused = yield* fetchJson(`${url!}/api/jobs`, { method: "POST", body: { type: "backup", id: "b0", params: { source: "a", target: "b" } } })
      assert.strictEqual(refused.status, 403)
      assert.deepStrictEqual(refused.json, {
        error: { class: "GenericError", desc: "The server is read-only: POST /api/jobs is refused" }
      })
      assert.deepStrictEqual((yield* fetchJson(`${url!}/api/server`)).json, {
        readOnly: true,
        seq: 0,
        qmpFlags: ["--socket", socket]
      })

      const [, plainUrl] = yield* plain.waitFor(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/)
      yield* plain.waitFor(/^stop with/)
      assert.include(plain.stdout(), `\ndashboard: ${plainUrl}/\n`)
      assert.strictEqual((yield* fetchJson(`${plainUrl!}/api/server`)).json.readOnly, false)
      // The plain server takes POSTs: a refusal for a missing source is the driver's, not the mode's.
      const created = yield* fetchJson(`${plainUrl!}/api/jobs`, { method: "POST", body: { type: "backup", id: "b0", params: { source: "nope", target: "b" } } })
      assert.strictEqual(created.status, 400)
    }).pipe(Effect.scoped), 60_000)

  it.live("without --http it is a usage error", () =>
    Effect.gen(function*() {
      const exited = yield* run(["serve", "--http", "off", "--http-read-only"])
      assert.strictEqual(exited.code, 2)
      assert.include(exited.stderr, "--http-read-only needs --http HOST:PORT")
    }), 60_000)
})
