/**
 * Traces, recorded by an in-memory tracer: a job's span (name, attributes,
 * one event per status change in order, ended at CONCLUDED with its outcome),
 * a child span for each driver callback that runs (with the driver's own
 * spans under it), transactions named alike on their members' spans, the link
 * to the span a job was created in, and a span per QMP command.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schema, Tracer } from "effect"
import { TestClock } from "effect/testing"
import type { JobRecord } from "../../src/internal/jobRecord.ts"
import * as JobDriver from "../../src/JobDriver.ts"
import { Jobs } from "../../src/Jobs.ts"
import * as JobTxn from "../../src/JobTxn.ts"
import * as Testing from "../../src/testing.ts"
import { startServer } from "../qmp/harness.ts"
import * as StandIn from "../qmp/standIn.ts"

/** A tracer that keeps every span it makes. */
const recorder = () => {
  const spans: Array<Tracer.NativeSpan> = []
  const tracer = Tracer.make({
    span: (options) => {
      const span = new Tracer.NativeSpan(options)
      spans.push(span)
      return span
    }
  })
  const named = (name: string) => spans.filter((span) => span.name === name)
  const one = (name: string) => {
    const found = named(name)
    if (found.length !== 1) throw new Error(`expected one span '${name}', found ${found.length}: ${spans.map((s) => s.name)}`)
    return found[0]!
  }
  const childrenOf = (parent: Tracer.Span) =>
    spans.filter((span) => Option.isSome(span.parent) && span.parent.value === parent).map((span) => span.name)
  return { spans, tracer, named, one, childrenOf }
}

/** Runs `effect` with `Testing.layer` built under `tracer`. */
const traced = <A, E>(tracer: Tracer.Tracer, effect: Effect.Effect<A, E, Jobs | Testing.CallbackLog>) =>
  effect.pipe(Effect.provide(Testing.layer), Effect.provideService(Tracer.Tracer, tracer))

const statusEvents = (span: Tracer.NativeSpan) => span.events.map(([name]) => name)

const ended = (span: Tracer.Span) => {
  if (span.status._tag !== "Ended") throw new Error(`span '${span.name}' has not ended`)
  return span.status
}

describe("job spans", () => {
  it.effect("one span per job, with id, type and txn, an event per status change, ended at CONCLUDED", () => {
    const r = recorder()
    return traced(
      r.tracer,
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 2, sleepMillis: 1000 } })
        yield* TestClock.adjust("2 seconds")
        yield* jobs.awaitOutcome(job)

        const span = r.one("job test")
        assert.strictEqual(span.attributes.get("job.id"), "j")
        assert.strictEqual(span.attributes.get("job.type"), "test")
        assert.match(String(span.attributes.get("job.txn")), /^txn-\d+$/)
        assert.strictEqual(span.attributes.get("job.outcome"), "Succeeded")
        assert.isTrue(Option.isNone(span.parent))
        assert.deepStrictEqual(statusEvents(span), ["created", "running", "waiting", "pending", "concluded"])
        assert.deepStrictEqual(span.events[1]![2], { "job.status": "running", "job.previous_status": "created" })
        const status = ended(span)
        assert.isTrue(Exit.isSuccess(status.exit))
        // On the engine's clock: created at 0, concluded 2 s later.
        assert.strictEqual(status.endTime - status.startTime, 2_000_000_000n)
      })
    )
  })

  it.effect("a failed job's span ends with its error; a cancelled one's as interrupted", () => {
    const r = recorder()
    return traced(
      r.tracer,
      Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "f", params: { result: "fail" }, manualDismiss: true }))
        const c = yield* jobs.run({ type: "test", id: "c", params: { iterations: 1, sleepMillis: 60_000 } })
        yield* jobs.cancel(c, { force: true })
        yield* jobs.awaitOutcome(c)

        const [failed, cancelled] = r.named("job test")
        assert.strictEqual(failed!.attributes.get("job.id"), "f")
        assert.strictEqual(failed!.attributes.get("job.error"), "test job: run failed")
        const failedExit = ended(failed!).exit
        assert.isTrue(Exit.isFailure(failedExit) && !Exit.hasInterrupts(failedExit))
        assert.deepStrictEqual(statusEvents(failed!), ["created", "running", "aborting", "concluded"])
        assert.strictEqual(cancelled!.attributes.get("job.outcome"), "Cancelled")
        assert.isTrue(Exit.hasInterrupts(ended(cancelled!).exit))
      })
    )
  })

  it.effect("each driver callback that runs gets a child span of the job's span", () => {
    const r = recorder()
    return traced(
      r.tracer,
      Effect.gen(function*() {
        const jobs = yield* Jobs
        // Succeeds: run, prepare, commit, clean.
        yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "ok" }))
        // Fails: run, abort, clean.
        yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "bad", params: { result: "fail" } }))
        // A speed change, then a soft cancel in READY (which finishes it successfully, as a mirror's does).
        const ready = yield* jobs.run({ type: "test", id: "ready", params: { converge: true, softCancel: true, wait: "yield" } })
        yield* jobs.enter(ready)
        yield* jobs.awaitStatus(ready, "ready")
        yield* jobs.setSpeed(ready, 10)
        yield* jobs.cancel(ready)
        yield* jobs.awaitOutcome(ready)

        const byId = (id: string) => r.named("job test").find((span) => span.attributes.get("job.id") === id)!
        assert.deepStrictEqual(r.childrenOf(byId("ok")), ["run", "prepare", "commit", "clean"])
        assert.deepStrictEqual(r.childrenOf(byId("bad")), ["run", "abort", "clean"])
        assert.deepStrictEqual(r.childrenOf(byId("ready")), ["run", "setSpeed", "cancel", "prepare", "commit", "clean"])
        const run = r.spans.find((span) => span.name === "run" && Option.getOrUndefined(span.parent) === byId("bad"))!
        assert.isTrue(Exit.isFailure(ended(run).exit))
        assert.strictEqual(run.attributes.get("job.callback"), "run")
        // Every callback span has ended.
        for (const span of r.spans) ended(span)
      })
    )
  })

  it.effect("completing a job runs `complete` in a span; spans the driver makes go under the callback's", () => {
    const r = recorder()
    const Traced = JobDriver.make({
      type: "traced",
      params: Schema.Struct({}),
      make: (_params, job) =>
        Effect.sync(() => {
          let done = false
          return {
            run: Effect.gen(function*() {
              yield* Effect.withSpan(Effect.void, "driver work")
              yield* job.transitionToReady
              while (!done) yield* job.yield
            }),
            complete: Effect.sync(() => {
              done = true
            }).pipe(Effect.andThen(job.enter))
          }
        })
    })
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* jobs.run({ type: "traced", id: "t" })
      yield* jobs.awaitStatus(job, "ready")
      yield* jobs.complete(job)
      yield* jobs.awaitOutcome(job)
      const span = r.one("job traced")
      assert.deepStrictEqual(r.childrenOf(span), ["run", "complete"])
      assert.deepStrictEqual(r.childrenOf(r.one("run")), ["driver work"])
    }).pipe(
      Effect.provide(JobDriver.layer(Traced).pipe(Layer.provideMerge(Testing.layer))),
      Effect.provideService(Tracer.Tracer, r.tracer)
    )
  })

  it.effect("the members of a transaction carry the same txn; the job's span links to the span that created it", () => {
    const r = recorder()
    return traced(
      r.tracer,
      Effect.gen(function*() {
        const jobs = yield* Jobs
        const txn = yield* JobTxn.make
        yield* Effect.gen(function*() {
          const a = yield* jobs.create({ type: "test", id: "a", txn })
          const b = yield* jobs.create({ type: "test", id: "b", txn })
          yield* jobs.start(a)
          yield* jobs.start(b)
        }).pipe(Effect.withSpan("request"))
        yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "alone" }))
        yield* JobTxn.awaitOutcome(txn)

        const spans = r.named("job test")
        const txnOf = (id: string) => spans.find((span) => span.attributes.get("job.id") === id)!.attributes.get("job.txn")
        assert.strictEqual(txnOf("a"), txnOf("b"))
        assert.notStrictEqual(txnOf("a"), txnOf("alone"))
        const a = spans.find((span) => span.attributes.get("job.id") === "a")!
        assert.strictEqual(a.attributes.get("job.txn.explicit"), true)
        assert.isTrue(Option.isNone(a.parent))
        assert.deepStrictEqual(a.links.map((link) => link.span), [r.one("request")])
        assert.deepStrictEqual(spans.find((span) => span.attributes.get("job.id") === "alone")!.links, [])
      })
    )
  })
})

describe("without a tracer", () => {
  it.effect("an engine built without a tracer makes no span, whatever its callers have", () => {
    const r = recorder()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const job = yield* Effect.provideService(jobs.run({ type: "test", id: "j" }), Tracer.Tracer, r.tracer)
      yield* jobs.awaitOutcome(job)
      assert.deepStrictEqual(r.spans, [])
      assert.isUndefined((job as JobRecord).span)
    }).pipe(Effect.provide(Testing.layer))
  })
})

describe("QMP spans", () => {
  it.live("each command runs in a span 'qmp <command>'; a job it creates links to it", () => {
    const r = recorder()
    return Effect.gen(function*() {
      const h = yield* startServer()
      const client = yield* h.client()
      yield* client.execute("query-jobs")
      const refused = yield* Effect.exit(client.execute("job-pause", { id: "nope" }))
      assert.isTrue(Exit.isFailure(refused))
      yield* client.execute("backup", { "job-id": "q", source: "s", target: "t", speed: 1 })

      const query = r.one("qmp query-jobs")
      assert.strictEqual(query.kind, "server")
      assert.strictEqual(query.attributes.get("rpc.method"), "query-jobs")
      assert.isTrue(Exit.isSuccess(ended(query).exit))
      assert.isTrue(Exit.isFailure(ended(r.one("qmp job-pause")).exit))
      // qmp_capabilities ran before any of them.
      assert.strictEqual(r.spans[0]!.name, "qmp qmp_capabilities")
      const job = r.one("job backup")
      assert.strictEqual(job.attributes.get("job.id"), "q")
      assert.deepStrictEqual(job.links.map((link) => link.span), [r.one("qmp backup")])
    }).pipe(
      Effect.scoped,
      Effect.provide(StandIn.layer.pipe(Layer.provideMerge(Testing.layer), Layer.provideMerge(NodeServices.layer))),
      Effect.provideService(Tracer.Tracer, r.tracer)
    )
  })
})
