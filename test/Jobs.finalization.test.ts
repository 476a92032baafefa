/**
 * Finalization is atomic to observers, as in QEMU, where prepare, commit/abort,
 * clean, CONCLUDED and auto-dismiss run under one lock: from the decision to
 * finalize until every member has concluded, members report busy, every verb
 * naming a member waits and is then checked against what finalization left,
 * queries answer at once, and no driver gets a `cancel` call.
 *
 * The driver here holds its `prepare` and `commit` on gates the test opens, so
 * the test can act in the middle of finalization.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"
import * as JobTxn from "../src/JobTxn.ts"
import * as JobsModule from "../src/Jobs.ts"
import { Jobs } from "../src/Jobs.ts"
import { recordEvents } from "./helpers/eventRecorder.ts"

interface Gates {
  /** Callbacks in the order they were called, as `callback:job`. */
  readonly calls: Array<string>
  /** The gate each job's `prepare` (or `commit`) waits on; absent means open. */
  readonly prepare: Map<string, Deferred.Deferred<void>>
  readonly commit: Map<string, Deferred.Deferred<void>>
  /** Completed when the job's gated callback has been entered. */
  readonly entered: Map<string, Deferred.Deferred<void>>
}

const makeGates = (): Gates => ({ calls: [], prepare: new Map(), commit: new Map(), entered: new Map() })

const gatedDriver = (gates: Gates) =>
  JobDriver.make({
    type: "gated",
    params: Schema.Struct({}),
    make: (_params, handle) =>
      Effect.sync(() => {
        const name = handle.id!
        const note = (callback: string) => Effect.sync(() => void gates.calls.push(`${callback}:${name}`))
        const gated = (callback: "prepare" | "commit") =>
          Effect.andThen(
            note(callback),
            Effect.suspend(() => {
              const gate = gates[callback].get(name)
              if (gate === undefined) return Effect.void
              const entered = gates.entered.get(name)
              return Effect.andThen(entered === undefined ? Effect.void : Deferred.succeed(entered, undefined), Deferred.await(gate))
            })
          )
        return {
          run: note("run"),
          prepare: gated("prepare"),
          commit: gated("commit"),
          abort: note("abort"),
          clean: note("clean"),
          cancel: (force: boolean) => Effect.as(note(`cancel(${force})`), true)
        }
      })
  })

const layerWith = (gates: Gates) => JobDriver.layer(gatedDriver(gates)).pipe(Layer.provideMerge(JobsModule.layer))

const gate = (gates: Gates, callback: "prepare" | "commit", id: string) =>
  Effect.gen(function*() {
    const open = yield* Deferred.make<void>()
    const entered = yield* Deferred.make<void>()
    gates[callback].set(id, open)
    gates.entered.set(id, entered)
    return { open: Deferred.succeed(open, undefined), entered: Deferred.await(entered) }
  })

/** Forks `effect` and lets every other fiber run until it has to wait: returns the fiber, still running if it waits. */
const forkWaiting = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.tap(Effect.forkChild(effect, { startImmediately: true }), () =>
    Effect.forEach(Array.from({ length: 20 }), () => Effect.yieldNow, { discard: true }))

describe("finalization is atomic to observers", () => {
  it.effect("a cancel during prepare waits for the end and is refused as QEMU refuses it: the backup commits", () => {
    const gates = makeGates()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const prepare = yield* gate(gates, "prepare", "a")
      const a = yield* jobs.run({ type: "gated", id: "a" })
      yield* prepare.entered
      // Mid-prepare: PENDING, busy, visible to queries at once.
      assert.strictEqual(a.status, "pending")
      assert.isTrue(a.busy)
      const listed = yield* jobs.list
      assert.deepStrictEqual(listed.map((j) => [j.id, j.status]), [["a", "pending"]])

      const byId = yield* forkWaiting(Effect.exit(jobs.cancel("a", { force: true })))
      const byObject = yield* forkWaiting(Effect.exit(jobs.cancel(a, { force: true })))
      const dismiss = yield* forkWaiting(Effect.exit(jobs.dismiss("a")))
      assert.isUndefined(byId.pollUnsafe(), "the cancel waits while finalization runs")
      assert.isUndefined(dismiss.pollUnsafe(), "the dismiss waits while finalization runs")

      yield* prepare.open
      const cancelled = yield* Fiber.join(byId)
      assert.isTrue(Exit.isFailure(cancelled))
      assert.strictEqual(Exit.isFailure(cancelled) ? (cancelled.cause.reasons[0] as any).error._tag : "", "JobNotFound")
      const viaObject = yield* Fiber.join(byObject)
      assert.strictEqual(Exit.isFailure(viaObject) ? (viaObject.cause.reasons[0] as any).error.message : "", "Job 'a' in state 'null' cannot accept command verb 'cancel'")
      const dismissed = yield* Fiber.join(dismiss)
      assert.strictEqual(Exit.isFailure(dismissed) ? (dismissed.cause.reasons[0] as any).error.message : "", "Job not found")
      assert.deepStrictEqual(gates.calls, ["run:a", "prepare:a", "commit:a", "clean:a"])
      assert.deepStrictEqual(yield* jobs.awaitOutcome(a), { _tag: "Succeeded" })
      assert.isFalse(a.busy)
    }).pipe(Effect.provide(layerWith(gates)))
  })

  it.effect("dismiss of a manual-dismiss job during its finalization waits, then dismisses the CONCLUDED job", () => {
    const gates = makeGates()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const rec = yield* recordEvents
      const prepare = yield* gate(gates, "prepare", "a")
      const a = yield* jobs.run({ type: "gated", id: "a", manualDismiss: true })
      yield* prepare.entered
      const dismiss = yield* forkWaiting(jobs.dismiss("a"))
      assert.isUndefined(dismiss.pollUnsafe())
      yield* prepare.open
      yield* Fiber.join(dismiss)
      assert.strictEqual(a.status, "null")
      yield* rec.until("a", "null")
      assert.deepStrictEqual(rec.trace("a"), ["created", "running", "waiting", "pending", "COMPLETED", "concluded", "null"])
    }).pipe(Effect.provide(layerWith(gates)))
  })

  it.effect("a force cancel of B while A commits: B's cancel callback is never called, and B commits", () => {
    const gates = makeGates()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      // Members commit newest first: B, then A. Hold A's commit, then cancel B (already CONCLUDED/NULL) and A.
      const commit = yield* gate(gates, "commit", "a")
      const a = yield* jobs.create({ type: "gated", id: "a", txn, manualDismiss: true })
      const b = yield* jobs.create({ type: "gated", id: "b", txn, manualDismiss: true })
      yield* jobs.start(a)
      yield* jobs.start(b)
      yield* commit.entered
      assert.isTrue(a.busy)
      assert.isTrue(b.busy, "every member is busy until the whole transaction has concluded")
      assert.strictEqual(b.status, "concluded")
      const cancelB = yield* forkWaiting(Effect.exit(jobs.cancel("b", { force: true })))
      const cancelA = yield* forkWaiting(Effect.exit(jobs.cancel("a", { force: true })))
      assert.isUndefined(cancelB.pollUnsafe())
      yield* commit.open
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Committed" })
      const verbError = (exit: Exit.Exit<void, { readonly message: string }>) =>
        Exit.isFailure(exit) ? (exit.cause.reasons[0] as any).error.message : "ok"
      assert.strictEqual(verbError(yield* Fiber.join(cancelB)), "Job 'b' in state 'concluded' cannot accept command verb 'cancel'")
      assert.strictEqual(verbError(yield* Fiber.join(cancelA)), "Job 'a' in state 'concluded' cannot accept command verb 'cancel'")
      assert.isFalse(gates.calls.some((c) => c.startsWith("cancel")), gates.calls.join(" "))
      assert.deepStrictEqual(gates.calls.filter((c) => !c.startsWith("run")), [
        "prepare:b",
        "prepare:a",
        "commit:b",
        "clean:b",
        "commit:a",
        "clean:a"
      ])
      assert.isFalse(a.busy)
      yield* jobs.dismiss("a")
      yield* jobs.dismiss("b")
    }).pipe(Effect.provide(layerWith(gates)))
  })

  it.effect("manual-finalize members in PENDING accept cancel until finalize is called: the transaction aborts", () => {
    const gates = makeGates()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const a = yield* jobs.create({ type: "gated", id: "a", txn, manualFinalize: true })
      const b = yield* jobs.create({ type: "gated", id: "b", txn, manualFinalize: true })
      yield* jobs.start(a)
      yield* jobs.start(b)
      assert.strictEqual(a.status, "pending")
      assert.isFalse(a.busy, "waiting for finalize is not finalizing")
      yield* jobs.cancel("a", { force: true })
      assert.deepStrictEqual(yield* JobTxn.awaitOutcome(txn), { _tag: "Aborted", error: "Operation canceled" })
      assert.deepStrictEqual(gates.calls.filter((c) => !c.startsWith("run")), [
        "cancel(true):a",
        "cancel(true):b",
        "abort:b",
        "clean:b",
        "abort:a",
        "clean:a"
      ])
    }).pipe(Effect.provide(layerWith(gates)))
  })

  it.effect("finalize during finalization waits and then gets the CONCLUDED verb error", () => {
    const gates = makeGates()
    return Effect.gen(function*() {
      const jobs = yield* Jobs
      const txn = yield* JobTxn.make
      const prepare = yield* gate(gates, "prepare", "a")
      const a = yield* jobs.create({ type: "gated", id: "a", txn, manualFinalize: true, manualDismiss: true })
      yield* jobs.start(a)
      const first = yield* Effect.forkChild(jobs.finalize("a"), { startImmediately: true })
      yield* prepare.entered
      assert.isTrue(a.busy)
      const second = yield* forkWaiting(Effect.exit(jobs.finalize("a")))
      assert.isUndefined(second.pollUnsafe())
      yield* prepare.open
      yield* Fiber.join(first)
      const exit = yield* Fiber.join(second)
      assert.strictEqual(
        Exit.isFailure(exit) ? (exit.cause.reasons[0] as any).error.message : "ok",
        "Job 'a' in state 'concluded' cannot accept command verb 'finalize'"
      )
      yield* jobs.dismiss(a)
    }).pipe(Effect.provide(layerWith(gates)))
  })
})
