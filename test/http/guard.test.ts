/**
 * The guard in front of every route: a `Host` that is not the server's (DNS
 * rebinding) and an `Origin` of another site are refused with 403; a POST
 * that is not `application/json` (what a plain HTML form sends) with 415;
 * and nothing they ask for happens. Also: the routes mounted in a server of
 * one's own, next to its own routes.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"
import * as Http from "../../src/Http.ts"
import { Jobs } from "../../src/Jobs.ts"
import { events, jobsLayer, post, request, type Server, serve } from "./harness.ts"

const job = { type: "test", id: "j", params: { iterations: 5, wait: "yield" } }

describe("Host and Origin", () => {
  it.live("another Host is refused with 403 (DNS rebinding), for reads, posts and event streams alike", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const rebound = { host: `attacker.example:${server.port}` }
      const read = yield* request(server, "/api/jobs", { headers: rebound })
      assert.strictEqual(read.status, 403)
      assert.deepStrictEqual(read.json, {
        error: { class: "GenericError", desc: `Host 'attacker.example:${server.port}' is not this server` }
      })
      const created = yield* request(server, "/api/jobs", { headers: rebound, body: job })
      assert.strictEqual(created.status, 403)
      const stream = yield* events(server, "/api/events", rebound)
      assert.strictEqual(stream.status, 403)
      // The right name with another port is another server.
      assert.strictEqual((yield* request(server, "/api/jobs", { headers: { host: "127.0.0.1:1" } })).status, 403)
      assert.strictEqual((yield* request(server, "/metrics", { headers: rebound })).status, 403)
      assert.strictEqual((yield* request(server, "/api/openapi.json", { headers: rebound })).status, 403)
      assert.deepStrictEqual(yield* jobs.list, [])
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("the loopback names of the server's port are its own", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      for (const host of [`127.0.0.1:${server.port}`, `localhost:${server.port}`, `LOCALHOST:${server.port}`, `[::1]:${server.port}`]) {
        assert.strictEqual((yield* request(server, "/api/jobs", { headers: { host } })).status, 200, host)
      }
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("an Origin of another site (or 'null') is refused with 403; the server's own is accepted", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      for (const origin of ["http://attacker.example", `http://attacker.example:${server.port}`, "null", `file://x`, "nonsense"]) {
        const read = yield* request(server, "/api/jobs", { headers: { origin } })
        assert.strictEqual(read.status, 403, origin)
        assert.deepStrictEqual(read.json, { error: { class: "GenericError", desc: `Origin '${origin}' is not this server` } })
        const posted = yield* request(server, "/api/jobs", { headers: { origin }, body: job })
        assert.strictEqual(posted.status, 403, origin)
      }
      assert.deepStrictEqual(yield* jobs.list, [])
      for (const origin of [`http://127.0.0.1:${server.port}`, `http://localhost:${server.port}`, `https://localhost:${server.port}`]) {
        assert.strictEqual((yield* request(server, "/api/jobs", { headers: { origin } })).status, 200, origin)
      }
      const created = yield* request(server, "/api/jobs", { headers: { origin: `http://localhost:${server.port}` }, body: job })
      assert.strictEqual(created.status, 201)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("allowedHosts adds names the server is reached by", () =>
    Effect.gen(function*() {
      const server = yield* serve({ allowedHosts: ["jobs.internal:8443"] })
      assert.strictEqual((yield* request(server, "/api/jobs", { headers: { host: "jobs.internal:8443" } })).status, 200)
      assert.strictEqual(
        (yield* request(server, "/api/jobs", { headers: { origin: "https://jobs.internal:8443" } })).status,
        200
      )
      assert.strictEqual((yield* request(server, "/api/jobs", { headers: { host: "jobs.internal:1" } })).status, 403)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("Content-Type of a POST", () => {
  it.live("anything but application/json is refused with 415, and nothing happens", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const body = JSON.stringify(job)
      const cases: ReadonlyArray<readonly [Record<string, string>, string]> = [
        [{ "content-type": "text/plain" }, "Content-Type must be application/json, not 'text/plain'"],
        [{ "content-type": "application/x-www-form-urlencoded" }, "Content-Type must be application/json, not 'application/x-www-form-urlencoded'"],
        [{ "content-type": "multipart/form-data; boundary=x" }, "Content-Type must be application/json, not 'multipart/form-data'"],
        [{}, "Content-Type must be application/json, not none"]
      ]
      for (const [headers, desc] of cases) {
        const response = yield* request(server, "/api/jobs", { method: "POST", headers, body })
        assert.strictEqual(response.status, 415, JSON.stringify(headers))
        assert.deepStrictEqual(response.json, { error: { class: "GenericError", desc } })
      }
      assert.deepStrictEqual(yield* jobs.list, [])
      const created = yield* request(server, "/api/jobs", {
        method: "POST",
        headers: { "content-type": "Application/JSON; charset=utf-8" },
        body
      })
      assert.strictEqual(created.status, 201)
      // A verb too: the job stays unpaused.
      const paused = yield* request(server, "/api/jobs/j/pause", { method: "POST", headers: { "content-type": "text/plain" }, body: "{}" })
      assert.strictEqual(paused.status, 415)
      assert.isFalse((yield* jobs.get("j")).userPaused)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("the routes in a server of one's own", () => {
  it.live("Http.routes next to other routes: both answer, and the guard knows the server's address", () =>
    Effect.gen(function*() {
      const app = Layer.mergeAll(
        Http.routes(),
        HttpRouter.add("GET", "/hello", HttpServerResponse.text("hello"))
      )
      const context = yield* Layer.build(
        HttpRouter.serve(app, { disableLogger: true, disableListenLog: true }).pipe(
          Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 }))
        )
      )
      const { port } = Context.get(context, HttpServer.HttpServer).address as { readonly port: number }
      const server: Server = { url: `http://127.0.0.1:${port}`, port, host: `127.0.0.1:${port}`, address: Context.get(context, HttpServer.HttpServer).address }
      assert.strictEqual((yield* request(server, "/hello")).text, "hello")
      assert.strictEqual((yield* post(server, "/api/jobs", job)).status, 201)
      assert.deepStrictEqual((yield* request(server, "/api/jobs")).json.jobs.map((j: { id: string }) => j.id), ["j"])
      assert.strictEqual((yield* request(server, "/api/jobs", { headers: { host: `attacker.example:${port}` } })).status, 403)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})
