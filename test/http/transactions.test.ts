/**
 * `POST /api/transactions`: every job is created or none is. A job refused
 * by a check leaves nothing behind (not even an event); a job whose set-up
 * fails after the others were created has them torn down, newest first,
 * before the answer, none of them ever running. `grouped` jobs share one
 * transaction with an id of its own, and commit or abort together.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import type { JobEvent } from "../../src/JobEvent.ts"
import { Jobs } from "../../src/Jobs.ts"
import { events, jobEvents, jobsLayer, post, request, serve } from "./harness.ts"

const idle = (id: string, extra: object = {}) => ({ type: "test", id, params: { iterations: 5, wait: "yield", ...extra } })

describe("POST /api/transactions", () => {
  it.live("grouped: one transaction with its own id; a force cancel of one member aborts them all", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const response = yield* post(server, "/api/transactions", {
        completionMode: "grouped",
        jobs: [idle("a"), idle("b")]
      })
      assert.strictEqual(response.status, 201)
      assert.strictEqual(response.json.txn, "t1")
      assert.deepStrictEqual(response.json.jobs.map((j: { id: string; txn: string; status: string }) => [j.id, j.txn, j.status]), [
        ["a", "t1", "running"],
        ["b", "t1", "running"]
      ])
      const second = yield* post(server, "/api/transactions", { completionMode: "grouped", jobs: [idle("c")] })
      assert.strictEqual(second.json.txn, "t2")
      const listed = (yield* request(server, "/api/jobs")).json.jobs
      assert.deepStrictEqual(listed.map((j: { id: string; txn: string }) => [j.id, j.txn]), [["a", "t1"], ["b", "t1"], ["c", "t2"]])

      const [a, b, c] = [yield* jobs.get("a"), yield* jobs.get("b"), yield* jobs.get("c")]
      assert.strictEqual((yield* post(server, "/api/jobs/a/cancel", { force: true })).status, 204)
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), { _tag: "Cancelled" })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(b), { _tag: "Cancelled" })
      assert.strictEqual(c.status, "running")
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("individual (the default): the jobs are created together, each in a transaction of its own", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const response = yield* post(server, "/api/transactions", { jobs: [idle("a"), idle("b")] })
      assert.strictEqual(response.status, 201)
      assert.strictEqual(response.json.txn, null)
      assert.deepStrictEqual(response.json.jobs.map((j: { txn: null }) => j.txn), [null, null])
      const [a, b] = [yield* jobs.get("a"), yield* jobs.get("b")]
      yield* post(server, "/api/jobs/a/cancel", { force: true })
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), { _tag: "Cancelled" })
      assert.strictEqual(b.status, "running")
      const empty = yield* post(server, "/api/transactions", { completionMode: "grouped", jobs: [] })
      assert.deepStrictEqual(empty.json, { txn: null, jobs: [] })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("a member refused by a check: 400 or 409, no job created and no event published", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const cases: ReadonlyArray<readonly [object, number, string]> = [
        [{ completionMode: "grouped", jobs: [idle("a"), { type: "test", id: "b", params: { iterations: -1.5 } }] }, 400, "Invalid parameters for job type 'test':"],
        [{ completionMode: "grouped", jobs: [idle("a"), idle("a")] }, 409, "Job ID 'a' already in use"],
        [{ jobs: [idle("a"), { type: "nope", id: "b" }] }, 400, "Job type 'nope' is not registered"],
        [{ jobs: [idle("a"), { type: "test" }] }, 400, "Parameter 'jobs[1].id' is missing"],
        [{ jobs: [idle("a"), { ...idle("b"), speed: -5 }] }, 400, "Parameter 'speed' expects a non-negative value"],
        [{ completionMode: "together", jobs: [] }, 400, "Parameter 'completionMode' does not accept value 'together'"],
        [{ jobs: {} }, 400, "Invalid parameter type for 'jobs', expected: array"]
      ]
      for (const [body, status, desc] of cases) {
        const response = yield* post(server, "/api/transactions", body)
        assert.strictEqual(response.status, status, JSON.stringify(body))
        assert.isTrue(response.json.error.desc.startsWith(desc), response.json.error.desc)
      }
      assert.deepStrictEqual(yield* jobs.list, [])
      assert.strictEqual((yield* jobs.snapshot).seq, 0)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("a member whose set-up fails: the others are torn down newest first before the answer, none ever ran", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const stream = yield* events(server)
      const response = yield* post(server, "/api/transactions", {
        completionMode: "grouped",
        jobs: [idle("a"), idle("b"), idle("c", { fail: ["make"] })]
      })
      assert.strictEqual(response.status, 409)
      assert.deepStrictEqual(response.json, { error: { class: "GenericError", desc: "test job: make failed" } })
      // Nothing is left once the answer is in.
      assert.deepStrictEqual(yield* jobs.list, [])
      const seq = (yield* jobs.snapshot).seq
      const seen = jobEvents(yield* stream.takeUntil((m) => m._tag === "Event" && Number(m.id) === seq))
      const trail = seen.map((e) => {
        const event = e.data as JobEvent
        return event._tag === "StatusChange" ? `${event.id} ${event.status}` : `${event.id} ${event._tag}`
      })
      assert.notInclude(trail.join(","), "running")
      // a and b were created, then c failed (created → null), then b, then a went.
      assert.deepStrictEqual(trail.slice(0, 4), ["a created", "b created", "c created", "c null"])
      assert.isBelow(trail.indexOf("b null"), trail.indexOf("a null"))
      assert.strictEqual(trail.at(-1), "a null")
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})
