/**
 * What the dashboard needs of the HTTP server, over a real port: the page at
 * `/` and its modules under a strict Content-Security-Policy (from the
 * TypeScript sources with their types stripped, or from a build's
 * JavaScript); `GET /api/server`; a read-only server refusing every POST with
 * a 403 and a typed error before anything happens; `GET /api/progress`
 * sending only what changed; `POST /api/transactions/validate` creating
 * nothing; `POST /api/transactions/:id/cancel` aborting every member.
 */
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as fs from "node:fs"
import { createServer } from "node:http"
import * as os from "node:os"
import { join } from "node:path"
import { contentSecurityPolicy, routes as dashboardRoutes } from "../../src/http/dashboard.ts"
import { Jobs } from "../../src/Jobs.ts"
import { eventOf, events, jobsLayer, post, request, type Server, serve } from "./harness.ts"

const error = (desc: string) => ({ error: { class: "GenericError", desc } })

const idle = (id: string) => ({ type: "test", id, params: { iterations: 5, wait: "yield" } })

describe("the dashboard's files", () => {
  it.live("/ is the page and /dashboard/*.ts its modules, types stripped, under a strict CSP; nothing else is served", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const page = yield* request(server, "/")
      assert.strictEqual(page.status, 200)
      assert.strictEqual(page.headers["content-type"], "text/html; charset=utf-8")
      assert.strictEqual(page.headers["content-security-policy"], contentSecurityPolicy)
      assert.include(contentSecurityPolicy, "default-src 'none'; script-src 'self'; style-src 'self'")
      assert.strictEqual(page.headers["x-content-type-options"], "nosniff")
      // From the sources the entry module is TypeScript, and no script is inline.
      assert.include(page.text, `<script type="module" src="dashboard/main.ts"></script>`)
      assert.notMatch(page.text, /<script>|<style|style="/)

      const module = yield* request(server, "/dashboard/format.ts")
      assert.strictEqual(module.status, 200)
      assert.strictEqual(module.headers["content-type"], "text/javascript; charset=utf-8")
      assert.strictEqual(module.headers["content-security-policy"], contentSecurityPolicy)
      const source = fs.readFileSync(new URL("../../src/dashboard/format.ts", import.meta.url), "utf8")
      assert.include(source, "export const bytes = (n: number): string =>")
      // Types are blanked out where they were: the browser's line numbers are the source's.
      assert.match(module.text, /export const bytes = \(n\s+\)\s+=>/)
      assert.strictEqual(module.text.split("\n").length, source.split("\n").length)
      assert.strictEqual((yield* request(server, "/dashboard/main.ts")).status, 200)

      const css = yield* request(server, "/dashboard/dashboard.css")
      assert.strictEqual(css.status, 200)
      assert.strictEqual(css.headers["content-type"], "text/css; charset=utf-8")

      for (const path of ["/dashboard/main.js", "/dashboard/tsconfig.json", "/dashboard/../http/server.ts", "/dashboard/%2e%2e%2fHttp.ts", "/dashboard/.hidden.ts", "/dashboard/nothing.ts"]) {
        const refused = yield* request(server, path)
        assert.strictEqual(refused.status, 404, path)
        assert.strictEqual(refused.json.error.class, "GenericError", path)
      }
      // The guard covers the page as every route: another site's name is refused.
      const rebound = yield* request(server, "/", { headers: { host: "attacker.example" } })
      assert.strictEqual(rebound.status, 403)
      // A server that leaves the dashboard out.
      const without = yield* serve({ dashboard: false })
      assert.strictEqual((yield* request(without, "/")).status, 404)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("from a build, the compiled .js modules are served and the page's entry points at them", () =>
    Effect.gen(function*() {
      const directory = fs.mkdtempSync(join(os.tmpdir(), "ej-dashboard-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true })))
      fs.copyFileSync(new URL("../../src/dashboard/index.html", import.meta.url), join(directory, "index.html"))
      fs.writeFileSync(join(directory, "main.js"), "export const built = true\n")
      fs.writeFileSync(join(directory, "main.ts"), "export const source: boolean = true\n")
      const built = yield* Layer.build(
        HttpRouter.serve(dashboardRoutes({ directory, fromSources: false }), { disableLogger: true, disableListenLog: true })
          .pipe(Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })))
      )
      const { port } = Context.get(built, HttpServer.HttpServer).address as { readonly port: number }
      const server = { port, host: `127.0.0.1:${port}` } as Server
      const page = yield* request(server, "/")
      assert.include(page.text, `<script type="module" src="dashboard/main.js"></script>`)
      const module = yield* request(server, "/dashboard/main.js")
      assert.strictEqual(module.status, 200)
      assert.strictEqual(module.text, "export const built = true\n")
      assert.strictEqual((yield* request(server, "/dashboard/main.ts")).status, 404)
    }).pipe(Effect.scoped))
})

describe("GET /api/server and a read-only server", () => {
  it.live("GET /api/server: not read-only, the latest seq, no QMP flags unless given", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      assert.deepStrictEqual((yield* request(server, "/api/server")).json, { readOnly: false, seq: 0, qmpFlags: null })
      yield* Effect.orDie(jobs.run(idle("j")))
      assert.deepStrictEqual((yield* request(server, "/api/server")).json, { readOnly: false, seq: 2, qmpFlags: null })
      const withQmp = yield* serve({ qmpFlags: () => ["--socket", "/run/jobs.sock"] })
      assert.deepStrictEqual((yield* request(withQmp, "/api/server")).json.qmpFlags, ["--socket", "/run/jobs.sock"])
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("readOnly: every POST is a 403 ReadOnly before anything happens; every GET is answered", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve({ readOnly: true })
      yield* Effect.orDie(jobs.run({ ...idle("j"), manualDismiss: true }))
      const seq = (yield* jobs.snapshot).seq
      const posts: ReadonlyArray<readonly [string, object]> = [
        ["/api/jobs", idle("new")],
        ...["pause", "resume", "complete", "finalize", "dismiss"].map((verb) => [`/api/jobs/j/${verb}`, {}] as const),
        ["/api/jobs/j/cancel", { force: true }],
        ["/api/jobs/j/speed", { speed: 1 }],
        ["/api/transactions", { jobs: [idle("t")] }],
        ["/api/transactions/validate", { jobs: [idle("t")] }],
        ["/api/transactions/t1/cancel", {}]
      ]
      for (const [path, body] of posts) {
        const refused = yield* post(server, path, body)
        assert.strictEqual(refused.status, 403, path)
        assert.deepStrictEqual(refused.json, error(`The server is read-only: POST ${path} is refused`))
      }
      // Refused whatever it sends: the mode is checked before the body's type.
      const form = yield* request(server, "/api/jobs/j/cancel", {
        method: "POST",
        body: "force=true",
        headers: { "content-type": "application/x-www-form-urlencoded" }
      })
      assert.strictEqual(form.status, 403)
      assert.deepStrictEqual(form.json, error("The server is read-only: POST /api/jobs/j/cancel is refused"))
      // Nothing happened: no event since, the job runs on.
      assert.strictEqual((yield* jobs.snapshot).seq, seq)
      assert.strictEqual((yield* jobs.get("j")).status, "running")
      // The Host check still comes first.
      const rebound = yield* request(server, "/api/jobs", { method: "POST", body: idle("x"), headers: { host: "evil.example" } })
      assert.deepStrictEqual(rebound.json, error("Host 'evil.example' is not this server"))

      for (const path of ["/api/jobs", "/api/jobs/j", "/api/tables", "/api/openapi.json", "/", "/dashboard/main.ts"]) {
        assert.strictEqual((yield* request(server, path)).status, 200, path)
      }
      assert.deepStrictEqual((yield* request(server, "/api/server")).json, { readOnly: true, seq, qmpFlags: null })
      // The OpenAPI document says which error it is.
      const doc = (yield* request(server, "/api/openapi.json")).json
      assert.include(JSON.stringify(doc.paths["/api/jobs/{id}/pause"].post.responses["403"]), "read-only")
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("GET /api/progress", () => {
  it.live("the first message has every job, the next ones only the jobs whose view changed", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve({ sampleInterval: "20 millis" })
      yield* Effect.orDie(jobs.run(idle("a")))
      yield* Effect.orDie(jobs.run(idle("b")))
      const stream = yield* events(server, "/api/progress")
      assert.strictEqual(stream.headers["content-type"], "text/event-stream")
      assert.deepStrictEqual(yield* stream.take, { _tag: "Comment", text: "effect-jobs progress" })
      const first = eventOf(yield* stream.take)
      assert.strictEqual(first.event, "progress")
      assert.strictEqual(first.id, undefined)
      assert.strictEqual(first.data.seq, (yield* jobs.snapshot).seq)
      assert.deepStrictEqual(first.data.jobs.map((j: { id: string }) => j.id), ["a", "b"])
      assert.strictEqual(first.data.jobs[0].status, "running")
      // Once both rates are measured (0: neither moves), a's view stays as it is.
      const rated = new Set<string>()
      yield* stream.takeUntil((m) => {
        if (m._tag !== "Event") return false
        for (const job of eventOf(m).data.jobs) if (job.rate !== null) rated.add(job.id)
        return rated.size === 2
      })
      // One unit of work for b: b's view changes, a's does not.
      yield* Effect.orDie(jobs.enter("b"))
      const messages = yield* stream.takeUntil((m) =>
        m._tag === "Event" && eventOf(m).data.jobs.some((j: { currentProgress: number }) => j.currentProgress === 1)
      )
      const next = eventOf(messages.at(-1)!)
      assert.deepStrictEqual(next.data.jobs.map((j: { id: string }) => j.id), ["b"])
      assert.strictEqual(next.data.seq, (yield* jobs.snapshot).seq)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("as the server stops: event: shutdown, then the end", () =>
    Effect.gen(function*() {
      const serverScope = yield* Scope.make()
      const server = yield* Scope.provide(serve(), serverScope)
      const stream = yield* events(server, "/api/progress")
      assert.deepStrictEqual(yield* stream.take, { _tag: "Comment", text: "effect-jobs progress" })
      yield* Scope.close(serverScope, Exit.void)
      const messages = yield* stream.takeUntil((m) => m._tag === "Event" && m.event === "shutdown")
      assert.deepStrictEqual(messages.at(-1), { _tag: "Event", id: undefined, event: "shutdown", data: "{}" })
      assert.deepStrictEqual(yield* stream.ended, { complete: true })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("POST /api/transactions/validate, POST /api/transactions/:id/cancel", () => {
  it.live("validate answers as the creation would, and creates nothing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* Effect.orDie(jobs.run(idle("taken")))
      const seq = (yield* jobs.snapshot).seq
      const ok = yield* post(server, "/api/transactions/validate", { completionMode: "grouped", jobs: [idle("a"), idle("b")] })
      assert.strictEqual(ok.status, 204)
      assert.strictEqual(ok.text, "")
      const cases: ReadonlyArray<readonly [object, number, string]> = [
        [{ jobs: [idle("1bad")] }, 400, "Invalid job ID '1bad'"],
        [{ jobs: [idle("taken")] }, 409, "Job ID 'taken' already in use"],
        [{ jobs: [idle("a"), idle("a")] }, 409, "Job ID 'a' already in use"],
        [{ jobs: [{ ...idle("a"), type: "nope" }] }, 400, "Job type 'nope' is not registered"],
        [{ jobs: [{ ...idle("a"), speed: 1.5 }] }, 400, "Invalid parameter type for 'jobs[0].speed', expected: integer"]
      ]
      for (const [body, status, desc] of cases) {
        const refused = yield* post(server, "/api/transactions/validate", body)
        assert.strictEqual(refused.status, status, desc)
        assert.strictEqual(refused.json.error.desc, desc)
        // The creation itself says the same.
        assert.deepStrictEqual((yield* post(server, "/api/transactions", body)).json, refused.json)
      }
      assert.strictEqual((yield* jobs.snapshot).seq, seq)
      assert.deepStrictEqual((yield* request(server, "/api/jobs")).json.jobs.map((j: { id: string }) => j.id), ["taken"])
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("cancel aborts every member at once; an unknown transaction is a 404", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const created = yield* post(server, "/api/transactions", {
        completionMode: "grouped",
        jobs: [{ ...idle("m0"), manualDismiss: true }, { ...idle("m1"), manualDismiss: true }]
      })
      assert.strictEqual(created.status, 201)
      assert.strictEqual(created.json.txn, "t1")
      const cancelled = yield* post(server, "/api/transactions/t1/cancel")
      assert.strictEqual(cancelled.status, 204)
      assert.deepStrictEqual(yield* jobs.awaitOutcome("m0"), { _tag: "Cancelled" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome("m1"), { _tag: "Cancelled" })
      // Ended already: nothing to do, and said so by no error.
      assert.strictEqual((yield* post(server, "/api/transactions/t1/cancel")).status, 204)
      const unknown = yield* post(server, "/api/transactions/t9/cancel")
      assert.strictEqual(unknown.status, 404)
      assert.deepStrictEqual(unknown.json, error("Transaction not found"))
      const body = yield* post(server, "/api/transactions/t1/cancel", { force: true })
      assert.strictEqual(body.status, 400)
      assert.deepStrictEqual(body.json, error("Parameter 'force' is unexpected"))
      // Once its members are dismissed, the transaction is gone.
      yield* Effect.orDie(jobs.dismiss("m0"))
      yield* Effect.orDie(jobs.dismiss("m1"))
      assert.strictEqual((yield* post(server, "/api/transactions/t1/cancel")).status, 404)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})
