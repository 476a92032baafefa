/**
 * Creating jobs: QEMU's id rules in their order (spec §3.2, test-blockjob.c "ids"),
 * parameters decoded by the driver's schema, and early fail (spec §3.15).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { Jobs } from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const reason = exit.cause.reasons[0]!
  if (reason._tag !== "Fail") throw new Error(`expected a typed failure, got ${reason._tag}`)
  return reason.error
}

describe("create (spec §3.2, §8.1 ids)", () => {
  it.effect("ids: the four rules, their texts, and reuse of a dismissed job's id", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const create = (id: string | undefined, internal = false) =>
        Effect.exit(jobs.create({ type: "test", id, internal }))

      const missing = failureOf(yield* create(undefined))
      assert.strictEqual(missing._tag, "JobIdRequired")
      assert.strictEqual(missing.message, "An explicit job ID is required")

      for (const bad of ["0id", "", "   ", "123", "_id", "-id", ".id", "#id"]) {
        const e = failureOf(yield* create(bad))
        assert.strictEqual(e._tag, "InvalidJobId", bad)
        assert.strictEqual(e.message, `Invalid job ID '${bad}'`)
      }

      const internalWithId = failureOf(yield* create("id0", true))
      assert.strictEqual(internalWithId.message, "Cannot specify job ID for internal job")

      const id0 = yield* jobs.create({ type: "test", id: "id0" })
      yield* jobs.create({ type: "test", id: "id1" })
      const dup = failureOf(yield* create("id0"))
      assert.strictEqual(dup._tag, "JobIdInUse")
      assert.strictEqual(dup.message, "Job ID 'id0' already in use")

      // Once the job is gone its id is free again.
      yield* jobs.cancelSync(id0, { force: true })
      assert.strictEqual(id0.status, "null")
      const again = yield* jobs.create({ type: "test", id: "id0" })
      assert.strictEqual(again.status, "created")
      yield* jobs.create({ type: "test", id: "id_2" })
      yield* jobs.create({ type: "test", id: "a.b-c_9" })

      const internal = yield* jobs.create({ type: "test", internal: true })
      assert.strictEqual(internal.id, undefined)
      const ids = (yield* jobs.list).map((j) => j.id)
      assert.deepStrictEqual(ids, ["id1", "id0", "id_2", "a.b-c_9"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("an unknown type and bad parameters are typed errors; no job is created", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const unknown = failureOf(yield* Effect.exit(jobs.create({ type: "nope", id: "a" })))
      assert.strictEqual(unknown._tag, "UnknownJobType")
      const bad = failureOf(yield* Effect.exit(jobs.create({ type: "test", id: "a", params: { iterations: "x" } })))
      assert.strictEqual(bad._tag, "InvalidParameters")
      assert.match(bad.message, /^Invalid parameters for job type 'test': /)
      assert.match(bad.message, /iterations/)
      assert.deepStrictEqual(yield* jobs.list, [])
      yield* jobs.create({ type: "test", id: "a" })
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("early fail: a driver that cannot set the job up leaves it CREATED → NULL with only free", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const e = failureOf(yield* Effect.exit(jobs.create({ type: "test", id: "j", params: { fail: ["make"] } })))
      assert.strictEqual(e._tag, "JobSetupFailed")
      assert.strictEqual(e.message, "test job: make failed")
      yield* rec.until("j", "null")
      assert.deepStrictEqual(rec.trace("j"), ["created", "null"])
      assert.deepStrictEqual(yield* jobs.list, [])
      const log = yield* Testing.CallbackLog
      // The driver never built its callbacks, so not even free exists to be called.
      assert.deepStrictEqual(log.of("j"), ["make"])
      const ok = yield* jobs.create({ type: "test", id: "j" })
      assert.strictEqual(ok.status, "created")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("validate checks like create, and creates nothing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.validate({ type: "test", id: "ok", params: { iterations: 2 } })
      const bad = failureOf(yield* Effect.exit(jobs.validate({ type: "test", id: "ok", params: { iterations: 1.5 } })))
      assert.strictEqual(bad._tag, "InvalidParameters")
      assert.strictEqual(failureOf(yield* Effect.exit(jobs.validate({ type: "test", id: "0" })))._tag, "InvalidJobId")
      assert.strictEqual(failureOf(yield* Effect.exit(jobs.validate({ type: "x", id: "a" })))._tag, "UnknownJobType")
      assert.deepStrictEqual(yield* jobs.list, [])
      yield* jobs.create({ type: "test", id: "ok" })
      assert.strictEqual(failureOf(yield* Effect.exit(jobs.validate({ type: "test", id: "ok" })))._tag, "JobIdInUse")
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("an initial speed is recorded before the driver builds the job; a negative one is refused", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.create({ type: "test", id: "fast", speed: 1024 })
      assert.strictEqual(job.speed, 1024)
      const negative = failureOf(yield* Effect.exit(jobs.create({ type: "test", id: "neg", speed: -1 })))
      assert.strictEqual(negative.message, "Parameter 'speed' expects a non-negative value")
      assert.deepStrictEqual((yield* jobs.list).map((j) => j.id), ["fast"])
    }).pipe(Effect.provide(Testing.layer)))

  it.effect("lookup is by id among jobs that have one; list is in creation order", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      for (const id of ["c", "a", "b"]) yield* jobs.create({ type: "test", id })
      assert.deepStrictEqual((yield* jobs.list).map((j) => j.id), ["c", "a", "b"])
      const a = yield* jobs.get("a")
      assert.strictEqual(a.id, "a")
      const missing = failureOf(yield* Effect.exit(jobs.get("zzz")))
      assert.strictEqual(missing.message, "Job not found")
      const row = (yield* jobs.list)[0]!
      assert.deepStrictEqual(row, { id: "c", type: "test", status: "created", currentProgress: 0, totalProgress: 0 })
    }).pipe(Effect.provide(Testing.layer)))
})
