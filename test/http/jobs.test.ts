/**
 * The job endpoints over a real HTTP port: listing and looking up jobs,
 * creating one, every verb, and every error code — 404 for an unknown job,
 * 409 for a verb the job's state refuses, 400 for bad parameters (the
 * parameter's path in `desc`) — each with QMP's `{"error": {"class",
 * "desc"}}` and QEMU's text; also the tables, the OpenAPI document and
 * `/metrics`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { Jobs } from "../../src/Jobs.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import * as JobVerb from "../../src/JobVerb.ts"
import { jobsLayer, post, request, serve } from "./harness.ts"

const error = (desc: string) => ({ error: { class: "GenericError", desc } })

/** A test job that waits (yields) until entered, `iterations` times. */
const idle = (id: string, extra: object = {}) => ({
  type: "test",
  id,
  params: { iterations: 5, wait: "yield", ...extra }
})

describe("GET /api/jobs, GET /api/jobs/:id, POST /api/jobs", () => {
  it.live("a created job is listed with QEMU's JobInfo fields and the API's own, under the snapshot's seq", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const empty = yield* request(server, "/api/jobs")
      assert.strictEqual(empty.status, 200)
      assert.deepStrictEqual(empty.json, { seq: 0, jobs: [] })

      const created = yield* post(server, "/api/jobs", { ...idle("j1"), speed: 100, manualDismiss: true })
      assert.strictEqual(created.status, 201)
      const expected = {
        id: "j1",
        type: "test",
        status: "running",
        currentProgress: 0,
        totalProgress: 5,
        txn: null,
        manualFinalize: false,
        manualDismiss: true,
        speed: 100,
        rate: null,
        eta: null,
        busy: false,
        paused: false,
        userPaused: false
      }
      assert.deepStrictEqual(created.json, expected)

      const listed = yield* request(server, "/api/jobs")
      assert.strictEqual(listed.status, 200)
      assert.strictEqual(listed.json.seq, (yield* jobs.snapshot).seq)
      assert.strictEqual(listed.json.seq, 2) // created, running
      assert.deepStrictEqual(listed.json.jobs, [expected])

      // One job has its parameters too: they were given over this API.
      const one = yield* request(server, "/api/jobs/j1")
      assert.strictEqual(one.status, 200)
      assert.deepStrictEqual(one.json, { ...expected, params: { iterations: 5, wait: "yield" } })

      const missing = yield* request(server, "/api/jobs/nope")
      assert.strictEqual(missing.status, 404)
      assert.deepStrictEqual(missing.json, error("Job not found"))
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("a job that failed carries its error", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const created = yield* post(server, "/api/jobs", {
        type: "test",
        id: "bad",
        manualDismiss: true,
        params: { iterations: 0, result: "fail" }
      })
      assert.strictEqual(created.status, 201)
      yield* jobs.awaitOutcome("bad")
      const one = yield* request(server, "/api/jobs/bad")
      assert.strictEqual(one.json.status, "concluded")
      assert.strictEqual(one.json.error, "test job: run failed")
      assert.strictEqual(one.json.eta, null)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("bad parameters are a 400 naming the parameter; an id in use a 409; nothing is created", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      assert.strictEqual((yield* post(server, "/api/jobs", idle("j1"))).status, 201)
      const seq = (yield* jobs.snapshot).seq
      const cases: ReadonlyArray<readonly [object | string, number, string]> = [
        [{ type: "test" }, 400, "Parameter 'id' is missing"],
        [{ id: "x" }, 400, "Parameter 'type' is missing"],
        [{ type: "test", id: "x", speed: "fast" }, 400, "Invalid parameter type for 'speed', expected: integer"],
        [{ type: "test", id: "x", speed: 1.5 }, 400, "Invalid parameter type for 'speed', expected: integer"],
        [{ type: "test", id: "x", manualFinalize: "yes" }, 400, "Invalid parameter type for 'manualFinalize', expected: boolean"],
        [{ type: "test", id: "x", bogus: 1 }, 400, "Parameter 'bogus' is unexpected"],
        [{ type: "test", id: "x", speed: -1 }, 400, "Parameter 'speed' expects a non-negative value"],
        [{ type: "nope", id: "x" }, 400, "Job type 'nope' is not registered"],
        [{ type: "test", id: "1x" }, 400, "Invalid job ID '1x'"],
        [
          { type: "test", id: "x", params: { iterations: "many" } },
          400,
          `Invalid parameters for job type 'test': Expected number at ["iterations"]`
        ],
        [idle("j1"), 409, "Job ID 'j1' already in use"],
        ["{\"type\": ", 400, "JSON parse error,"],
        ["[1, 2]", 400, "The request body must be a JSON object"]
      ]
      for (const [body, status, desc] of cases) {
        const response = yield* request(server, "/api/jobs", {
          body,
          headers: { "content-type": "application/json" }
        })
        assert.strictEqual(response.status, status, `${JSON.stringify(body)}: ${response.text}`)
        assert.strictEqual(response.json.error.class, "GenericError")
        assert.isTrue(response.json.error.desc.startsWith(desc), `${response.json.error.desc} (expected ${desc})`)
      }
      // No job was created, and no event was published.
      assert.strictEqual((yield* jobs.snapshot).seq, seq)
      assert.deepStrictEqual((yield* jobs.list).map((job) => job.id), ["j1"])
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("the verbs: POST /api/jobs/:id/<verb>", () => {
  it.live("pause and resume: 204, then 409 with QEMU's texts when repeated; 404 for an unknown job", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* post(server, "/api/jobs", idle("j"))
      const paused = yield* post(server, "/api/jobs/j/pause")
      assert.strictEqual(paused.status, 204)
      assert.strictEqual(paused.text, "")
      yield* jobs.awaitStatus("j", "paused")
      const view = (yield* request(server, "/api/jobs/j")).json
      assert.strictEqual(view.status, "paused")
      assert.isTrue(view.userPaused)
      assert.isTrue(view.paused)

      const again = yield* post(server, "/api/jobs/j/pause")
      assert.strictEqual(again.status, 409)
      assert.deepStrictEqual(again.json, error("Job is already paused"))

      assert.strictEqual((yield* post(server, "/api/jobs/j/resume")).status, 204)
      const resumedTwice = yield* post(server, "/api/jobs/j/resume")
      assert.strictEqual(resumedTwice.status, 409)
      assert.deepStrictEqual(resumedTwice.json, error("Can't resume a job that was not paused"))

      for (const verb of ["pause", "resume", "cancel", "complete", "finalize", "dismiss"]) {
        const unknown = yield* post(server, `/api/jobs/nope/${verb}`)
        assert.strictEqual(unknown.status, 404, verb)
        assert.deepStrictEqual(unknown.json, error("Job not found"))
      }
      const unknownSpeed = yield* post(server, "/api/jobs/nope/speed", { speed: 1 })
      assert.strictEqual(unknownSpeed.status, 404)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("a verb the job's state does not accept is a 409 with the verb table's text", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* post(server, "/api/jobs", idle("j"))
      const cases = [
        ["complete", "Job 'j' in state 'running' cannot accept command verb 'complete'"],
        ["finalize", "Job 'j' in state 'running' cannot accept command verb 'finalize'"],
        ["dismiss", "Job 'j' in state 'running' cannot accept command verb 'dismiss'"]
      ] as const
      for (const [verb, desc] of cases) {
        const response = yield* post(server, `/api/jobs/j/${verb}`)
        assert.strictEqual(response.status, 409, verb)
        assert.deepStrictEqual(response.json, error(desc))
      }
      // A driver that cannot complete, once READY.
      yield* post(server, "/api/jobs", { type: "test", id: "c", params: { iterations: 0, converge: true, wait: "yield", completable: false } })
      yield* jobs.awaitStatus("c", "ready")
      const cannot = yield* post(server, "/api/jobs/c/complete")
      assert.strictEqual(cannot.status, 409)
      assert.deepStrictEqual(cannot.json, error("The active block job 'c' cannot be completed"))
      // A concluded job accepts only dismiss.
      yield* post(server, "/api/jobs", { type: "test", id: "done", manualDismiss: true, params: { iterations: 0 } })
      yield* jobs.awaitStatus("done", "concluded")
      for (const verb of ["pause", "cancel", "complete"]) {
        const response = yield* post(server, `/api/jobs/done/${verb}`)
        assert.strictEqual(response.status, 409, verb)
        assert.deepStrictEqual(response.json, error(`Job 'done' in state 'concluded' cannot accept command verb '${verb}'`))
      }
      // QEMU checks the user's pause before the verb table.
      const resume = yield* post(server, "/api/jobs/done/resume")
      assert.strictEqual(resume.status, 409)
      assert.deepStrictEqual(resume.json, error("Can't resume a job that was not paused"))
      const speed = yield* post(server, "/api/jobs/done/speed", { speed: 5 })
      assert.strictEqual(speed.status, 409)
      assert.deepStrictEqual(speed.json, error("Job 'done' in state 'concluded' cannot accept command verb 'set-speed'"))
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("complete, finalize and dismiss move a job to its end", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* post(server, "/api/jobs", {
        type: "test",
        id: "m",
        manualFinalize: true,
        manualDismiss: true,
        params: { iterations: 0, converge: true, wait: "yield" }
      })
      const m = yield* jobs.get("m")
      yield* jobs.awaitStatus("m", "ready")
      assert.strictEqual((yield* post(server, "/api/jobs/m/complete")).status, 204)
      yield* jobs.awaitStatus("m", "pending")
      const view = (yield* request(server, "/api/jobs/m")).json
      assert.strictEqual(view.status, "pending")
      assert.isTrue(view.manualFinalize)
      assert.strictEqual((yield* post(server, "/api/jobs/m/finalize")).status, 204)
      yield* jobs.awaitStatus("m", "concluded")
      assert.strictEqual((yield* post(server, "/api/jobs/m/dismiss")).status, 204)
      assert.strictEqual((yield* request(server, "/api/jobs/m")).status, 404)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(m), { _tag: "Succeeded" })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("cancel is soft unless {\"force\": true}: the driver decides what a soft cancel means", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      // This driver treats every soft cancel as "stop early, successfully".
      yield* post(server, "/api/jobs", idle("soft", { softCancelAlways: true }))
      yield* post(server, "/api/jobs", idle("hard", { softCancelAlways: true }))
      const softJob = yield* jobs.get("soft")
      const hardJob = yield* jobs.get("hard")
      assert.strictEqual((yield* post(server, "/api/jobs/soft/cancel")).status, 204)
      assert.strictEqual((yield* post(server, "/api/jobs/hard/cancel", { force: true })).status, 204)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(softJob), { _tag: "Succeeded" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(hardJob), { _tag: "Cancelled" })
      const bad = yield* post(server, "/api/jobs/nope/cancel", { force: "yes" })
      assert.strictEqual(bad.status, 400)
      assert.deepStrictEqual(bad.json, error("Invalid parameter type for 'force', expected: boolean"))
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("speed sets the rate limit; a negative or missing speed is a 400; a verb takes no other member", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      yield* post(server, "/api/jobs", idle("j"))
      assert.strictEqual((yield* post(server, "/api/jobs/j/speed", { speed: 4096 })).status, 204)
      assert.strictEqual((yield* request(server, "/api/jobs/j")).json.speed, 4096)
      const cases = [
        [{ speed: -1 }, "Parameter 'speed' expects a non-negative value"],
        [{}, "Parameter 'speed' is missing"],
        [{ speed: "1" }, "Invalid parameter type for 'speed', expected: integer"],
        [{ speed: 1, extra: true }, "Parameter 'extra' is unexpected"]
      ] as const
      for (const [body, desc] of cases) {
        const response = yield* post(server, "/api/jobs/j/speed", body)
        assert.strictEqual(response.status, 400, JSON.stringify(body))
        assert.deepStrictEqual(response.json, error(desc))
      }
      const extra = yield* post(server, "/api/jobs/j/pause", { now: true })
      assert.strictEqual(extra.status, 400)
      assert.deepStrictEqual(extra.json, error("Parameter 'now' is unexpected"))
      assert.isFalse((yield* request(server, "/api/jobs/j")).json.userPaused)
      // An empty body is no arguments.
      assert.strictEqual((yield* request(server, "/api/jobs/j/pause", {
        method: "POST",
        headers: { "content-type": "application/json" }
      })).status, 204)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

describe("GET /api/tables, /api/openapi.json, /metrics", () => {
  it.live("the state machine's tables as data", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const response = yield* request(server, "/api/tables")
      assert.strictEqual(response.status, 200)
      assert.deepStrictEqual(response.json, {
        statuses: [...JobStatus.all],
        transitions: JobStatus.transitions,
        verbs: [...JobVerb.all],
        acceptedIn: JobVerb.acceptedIn
      })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("the OpenAPI document describes every endpoint", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const response = yield* request(server, "/api/openapi.json")
      assert.strictEqual(response.status, 200)
      const doc = response.json
      assert.strictEqual(doc.openapi, "3.1.0")
      assert.strictEqual(doc.info.title, "effect-jobs")
      const operations = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) =>
        Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`)
      ).sort()
      const verbs = ["cancel", "complete", "dismiss", "finalize", "pause", "resume", "speed"]
      assert.deepStrictEqual(operations, [
        "GET /api/events",
        "GET /api/jobs",
        "GET /api/jobs/{id}",
        "GET /api/progress",
        "GET /api/server",
        "GET /api/tables",
        "POST /api/jobs",
        ...verbs.map((verb) => `POST /api/jobs/{id}/${verb}`),
        "POST /api/transactions",
        "POST /api/transactions/validate",
        "POST /api/transactions/{id}/cancel"
      ].sort())
      const create = doc.paths["/api/jobs"].post
      assert.includeMembers(Object.keys(create.responses), ["201", "400", "403", "409", "415"])
      assert.property(doc.paths["/api/jobs/{id}/pause"].post.responses, "404")
      assert.property(doc.paths["/api/events"].get.responses["200"].content, "text/event-stream")
      assert.property(doc.paths["/api/progress"].get.responses["200"].content, "text/event-stream")
      assert.deepStrictEqual(Object.keys(doc.paths["/api/server"].get.responses["200"].content["application/json"].schema.properties ?? {}).sort(), ["qmpFlags", "readOnly", "seq"])
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("/metrics: every metric in effect's registry, as Prometheus text", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const counter = Metric.counter("http_test_requests", { description: "A counter of this test" })
      yield* Metric.update(counter, 3)
      const response = yield* request(server, "/metrics")
      assert.strictEqual(response.status, 200)
      assert.match(String(response.headers["content-type"]), /^text\/plain; version=0\.0\.4/)
      assert.include(response.text, "# TYPE http_test_requests counter")
      assert.match(response.text, /^http_test_requests 3$/m)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("an unknown path is a 404 with a JSON body", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const response = yield* request(server, "/api/nothing?x=1")
      assert.strictEqual(response.status, 404)
      assert.deepStrictEqual(response.json, error("No such resource: GET /api/nothing"))
      const wrongMethod = yield* request(server, "/api/jobs/j/pause")
      assert.strictEqual(wrongMethod.status, 404)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})
