/**
 * `Jobs.layerDurable`: the engine on a real SQLite store in a temp dir —
 * events written before anyone sees them, sequence numbers that go on after a
 * restart, recovery of what a crashed server left (written into the store
 * directly, as the crashed process's last commit), one owner at a time, and
 * new jobs refused while the store cannot be written.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Ref, Schema, Stream } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import * as JobDriver from "../src/JobDriver.ts"
import type { JobEvent } from "../src/JobEvent.ts"
import * as Jobs from "../src/Jobs.ts"
import * as JobStore from "../src/JobStore.ts"
import type { StoredJob, StoredTxn } from "../src/store/records.ts"
import * as Testing from "../src/testing.ts"
import { failingStore } from "./helpers/failingStore.ts"

const tempDb = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-durable-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
).pipe(Effect.map((dir) => join(dir, "jobs.db")))

/** The durable engine with the test driver, on `store`. */
const engineOn = (store: Layer.Layer<JobStore.JobStore, unknown, never>) =>
  JobDriver.layer(Testing.TestDriver).pipe(
    Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable().pipe(Layer.provide(store)), Testing.CallbackLog.layer)),
    Layer.orDie
  )

/** What a crashed server's last commit left, written the way the engine writes it. */
const crashedState = (filename: string, jobs: ReadonlyArray<StoredJob>, txns: ReadonlyArray<StoredTxn>, events: ReadonlyArray<JobEvent>) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* JobStore.JobStore
    const owned = yield* store.acquire(JobStore.processOwner(), { ttl: "1 millis" })
    yield* owned.commit({ jobs, txns, events })
  })).pipe(Effect.provide(JobStore.sqlite({ filename })))

const job = (id: string, txn: string, status: StoredJob["status"], extra: Partial<StoredJob> = {}): StoredJob => ({
  id,
  type: "test",
  params: { iterations: 1000, sleepMillis: 10 },
  txn,
  status,
  manualFinalize: false,
  manualDismiss: true,
  progress: { current: 3, total: 1000 },
  speed: 0,
  userPaused: false,
  pauseHolds: [],
  createdAt: 1,
  startedAt: 2,
  updatedAt: 3,
  ...extra
})

const statusEvent = (seq: number, id: string, status: StoredJob["status"]): JobEvent => ({
  _tag: "StatusChange",
  seq,
  timestamp: seq,
  id,
  status
})

describe("Jobs.layerDurable", () => {
  it.live("every event is in the store before a subscriber sees it", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      const storeLayer = JobStore.sqlite({ filename })
      const seenWhenDurable = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const store = yield* JobStore.JobStore
        yield* jobs.recover
        const events = yield* jobs.subscribe()
        const seen = yield* Ref.make<Array<readonly [number, boolean]>>([])
        const reader = yield* Effect.forkChild(Stream.runForEach(events, (event) =>
          Effect.flatMap(store.readEvents(event.seq - 1, 1), (stored) =>
            Ref.update(seen, (all) => [...all, [event.seq, stored[0]?.seq === event.seq] as const])
          )
        ))
        const created = yield* jobs.run({ type: "test", id: "w", params: { iterations: 2 } })
        yield* jobs.awaitOutcome(created)
        yield* jobs.durable
        yield* jobs.awaitDelivered
        yield* Fiber.interrupt(reader)
        return yield* Ref.get(seen)
      }).pipe(Effect.provide(Layer.merge(engineOn(storeLayer), storeLayer))))
      assert.isAbove(seenWhenDurable.length, 3)
      for (const [seq, durable] of seenWhenDurable) assert.isTrue(durable, `event ${seq} was seen before it was stored`)
      assert.deepStrictEqual(seenWhenDurable.map(([seq]) => seq), seenWhenDurable.map((_, i) => i + 1))
    }))

  it.live("brings back what a crashed server left, and its sequence numbers go on", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      yield* crashedState(
        filename,
        [
          job("done", "job:done", "concluded", { error: "boom" }),
          job("parked", "job:parked", "paused", { userPaused: true }),
          job("a", "txn:t", "waiting"),
          job("b", "txn:t", "running"),
          job("c1", "txn:c", "pending"),
          job("c2", "txn:c", "pending")
        ],
        [
          { id: "job:done", explicit: false, phase: "aborted", error: "boom" },
          { id: "job:parked", explicit: false, phase: "running" },
          { id: "txn:t", explicit: true, phase: "running" },
          { id: "txn:c", explicit: true, phase: "committing" }
        ],
        [statusEvent(1, "done", "concluded"), statusEvent(2, "parked", "paused"), statusEvent(3, "b", "running")]
      )
      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const log = yield* Testing.CallbackLog
        // Subscribed from the start of the log: the stored events, then the recovery's.
        const events = yield* jobs.subscribe({ since: 0 })
        const report = yield* jobs.recover
        yield* jobs.durable
        const { seq, jobs: list } = yield* jobs.snapshot
        const seen = yield* Stream.runCollect(Stream.takeUntil(events, (event) => event.seq === seq))
        return { report, list, seen, aborts: ["a", "b", "c1"].map((id) => log.of(id)) }
      }).pipe(Effect.provide(engineOn(JobStore.sqlite({ filename })))))

      assert.deepStrictEqual(outcome.report.concluded, ["done"])
      assert.deepStrictEqual([...outcome.report.committed].sort(), ["c1", "c2"])
      assert.deepStrictEqual(outcome.report.interrupted, [
        { id: "parked", status: "paused" },
        { id: "a", status: "waiting" },
        { id: "b", status: "running" }
      ])
      const byId = new Map(outcome.list.map((row) => [row.id, row]))
      assert.strictEqual(byId.get("done")?.error, "boom")
      assert.strictEqual(byId.get("parked")?.error, "interrupted: the server stopped while the job was paused")
      assert.strictEqual(byId.get("b")?.error, "interrupted: the server stopped while the job was running")
      // `a` did not fail itself: it aborts with its transaction.
      assert.strictEqual(byId.get("a")?.status, "concluded")
      assert.strictEqual(byId.get("c1")?.status, "concluded")
      assert.isUndefined(byId.get("c1")?.error)
      // The aborted transaction's members were aborted by their drivers, made again from the stored parameters.
      assert.include(outcome.aborts[0], "abort")
      assert.include(outcome.aborts[1], "abort")
      assert.notInclude(outcome.aborts[2], "commit")

      const seqs = outcome.seen.map((event) => event.seq)
      assert.deepStrictEqual(seqs, seqs.map((_, i) => i + 1))
      const parked = outcome.seen.filter((e) => e._tag === "StatusChange" && e.id === "parked").map((e) =>
        e._tag === "StatusChange" ? e.status : ""
      )
      assert.deepStrictEqual(parked, ["paused", "running", "aborting", "concluded"])

      // Restarted again: the numbers go on after the recovery's, and nothing is recovered twice.
      const again = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        const snapshot = yield* jobs.snapshot
        return { report, seq: snapshot.seq, ids: snapshot.jobs.map((row) => row.id).sort() }
      }).pipe(Effect.provide(engineOn(JobStore.sqlite({ filename })))))
      assert.strictEqual(again.seq, seqs[seqs.length - 1])
      assert.deepStrictEqual(again.report.interrupted, [])
      assert.deepStrictEqual(again.ids, ["a", "b", "c1", "c2", "done", "parked"])
    }))

  it.live("a second engine on the same store is refused, naming the owner", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      const storeLayer = JobStore.sqlite({ filename })
      const refused = yield* Effect.scoped(Effect.gen(function*() {
        const scope = yield* Effect.scope
        yield* Layer.buildWithScope(Jobs.layerDurable().pipe(Layer.provide(storeLayer)), scope)
        return yield* Effect.flip(Effect.scoped(Layer.build(Jobs.layerDurable().pipe(Layer.provide(storeLayer)))))
      }))
      assert.strictEqual(refused._tag, "StoreOwned")
      assert.include(refused.message, `pid ${process.pid}`)
    }))

  it.live("refuses new jobs while the store cannot be written, loses nothing, and goes on when it can", () =>
    Effect.gen(function*() {
      const failing = yield* Ref.make(false)
      // The memory store, with commits that fail while `failing` is set (a full disk).
      const flaky = failingStore(JobStore.memory, failing)
      yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        const events = yield* jobs.subscribe()
        const notices = yield* Effect.forkScoped(Stream.runCollect(Stream.take(jobs.storeNotices, 2)), { startImmediately: true })
        yield* Ref.set(failing, true)
        // Its commit waits for the store: a decision is stored before any driver commits.
        const first = yield* jobs.run({ type: "test", id: "first", params: { iterations: 1 } })
        // Once the writer has tried and failed, the next job is refused, with the store's reason.
        const second = { type: "test", id: "second" }
        while (Exit.isSuccess(yield* Effect.exit(jobs.validate(second)))) yield* Effect.yieldNow
        const refused = yield* Effect.flip(jobs.create(second))
        // A listener that starts during the outage hears of it first.
        const lateNotice = yield* Stream.runHead(jobs.storeNotices)
        assert.strictEqual(Option.getOrUndefined(lateNotice)?._tag, "StoreUnwritable")
        assert.strictEqual(refused._tag, "StoreNotWritable")
        assert.include(refused.message, "no space left on device")
        // Replies do not wait for a store that cannot be written (the server goes on answering).
        yield* jobs.durable
        assert.notStrictEqual((yield* jobs.get("first")).status, "null")
        yield* Ref.set(failing, false)
        assert.strictEqual((yield* jobs.awaitOutcome(first))._tag, "Succeeded")
        yield* jobs.durable
        // What waited is delivered, in order, once written.
        const seen = yield* Stream.runCollect(Stream.takeUntil(events, (e) => e._tag === "StatusChange" && e.status === "null"))
        assert.strictEqual(seen[0]?.seq, 1)
        assert.deepStrictEqual(seen.map((e) => e.seq), seen.map((_, i) => i + 1))
        const again = yield* jobs.run({ type: "test", id: "third", params: { iterations: 1 } })
        assert.strictEqual((yield* jobs.awaitOutcome(again))._tag, "Succeeded")
        // The outage was told as it began and as it ended, once each.
        const [unwritable, writable] = yield* Fiber.join(notices)
        assert.strictEqual(unwritable?._tag, "StoreUnwritable")
        assert.include(unwritable?._tag === "StoreUnwritable" ? unwritable.error : "", "no space left on device")
        assert.strictEqual(writable?._tag, "StoreWritable")
        assert.isAtLeast(writable?._tag === "StoreWritable" ? writable.unwritableMillis : -1, 0)
      }).pipe(Effect.provide(engineOn(flaky))))
    }))

  it.live("keeps the newest events in the store, however many are published", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      const storeLayer = JobStore.sqlite({ filename })
      const engine = JobDriver.layer(Testing.TestDriver).pipe(
        Layer.provideMerge(Layer.mergeAll(Jobs.layerDurable({ retainedEvents: 1000 }).pipe(Layer.provide(storeLayer)), Testing.CallbackLog.layer)),
        Layer.orDie
      )
      const { kept, seq } = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const store = yield* JobStore.JobStore
        yield* jobs.recover
        for (let i = 0; i < 600; i++) {
          yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: `r${i}`, params: { iterations: 1 } }))
        }
        yield* jobs.durable
        const seq = (yield* jobs.snapshot).seq
        return { kept: yield* store.readEvents(0, 1_000_000), seq }
      }).pipe(Effect.provide(Layer.merge(engine, storeLayer))))
      assert.isAbove(seq, 2000)
      assert.isAtLeast(kept.length, 1000)
      assert.isBelow(kept.length, 2000)
      // The newest, without a gap.
      assert.strictEqual(kept[kept.length - 1]!.seq, seq)
      assert.deepStrictEqual(kept.map((e) => e.seq), kept.map((_, i) => seq - kept.length + 1 + i))
    }))

  it.live("a resumable driver's jobs go on after a restart: from their checkpoint, paused by their user, PENDING", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      // A counter that records each step it takes, and a checkpoint after each.
      const steps: Array<string> = []
      const Counter = JobDriver.make({
        type: "counter",
        resumable: true,
        params: Schema.Struct({ to: Schema.Int }),
        make: (params, handle) =>
          Effect.succeed({
            run: Effect.gen(function*() {
              const from = (handle.resumedFrom as { readonly done?: number } | undefined)?.done ?? 0
              yield* handle.setRemaining(params.to)
              yield* handle.update(from)
              for (let i = from + 1; i <= params.to; i++) {
                yield* handle.pausePoint
                steps.push(`${handle.id}:${i}`)
                yield* handle.update(1)
                yield* handle.checkpoint({ done: i })
              }
            }),
            commit: Effect.sync(() => {
              steps.push(`${handle.id}:commit`)
            })
          })
      })
      const counter = (id: string, status: StoredJob["status"], extra: Partial<StoredJob> = {}) =>
        job(id, `job:${id}`, status, { type: "counter", params: { to: 5 }, ...extra })
      yield* crashedState(
        filename,
        [counter("r1", "running"), counter("r2", "paused", { userPaused: true }), counter("r3", "pending", { manualFinalize: true })],
        [
          { id: "job:r1", explicit: false, phase: "running" },
          { id: "job:r2", explicit: false, phase: "running" },
          { id: "job:r3", explicit: false, phase: "pending" }
        ],
        []
      )
      // The crashed server's last checkpoint of r1.
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* JobStore.JobStore
        const owned = yield* store.acquire(JobStore.processOwner(), { ttl: "1 millis" })
        yield* owned.commit({ checkpoints: [{ job: "r1", data: { done: 3 } }] })
      })).pipe(Effect.provide(JobStore.sqlite({ filename })))

      const storeLayer = JobStore.sqlite({ filename })
      const engine = JobDriver.layer(Counter).pipe(Layer.provideMerge(Jobs.layerDurable().pipe(Layer.provide(storeLayer))), Layer.orDie)
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        yield* jobs.awaitStatus("r1", "concluded")
        yield* jobs.awaitStatus("r2", "paused")
        const r3 = (yield* jobs.get("r3")).status
        const beforeResume = [...steps]
        yield* jobs.resume("r2")
        yield* jobs.awaitStatus("r2", "concluded")
        yield* jobs.finalize("r3")
        yield* jobs.awaitStatus("r3", "concluded")
        const rows = new Map((yield* jobs.list).map((row) => [row.id, row]))
        return { report, r3, beforeResume, rows }
      }).pipe(Effect.provide(engine)))

      assert.deepStrictEqual(result.report.resumed, [
        { id: "r1", status: "running" },
        { id: "r2", status: "paused" },
        { id: "r3", status: "pending" }
      ])
      assert.deepStrictEqual(result.report.interrupted, [])
      // r1 went on after its checkpoint; r2 stayed parked until its user resumed it; r3 waited in PENDING.
      assert.deepStrictEqual(result.beforeResume.filter((s) => s.startsWith("r2")), [])
      assert.deepStrictEqual(steps.filter((s) => s.startsWith("r1")), ["r1:4", "r1:5", "r1:commit"])
      assert.deepStrictEqual(steps.filter((s) => s.startsWith("r2")), ["r2:1", "r2:2", "r2:3", "r2:4", "r2:5", "r2:commit"])
      assert.strictEqual(result.r3, "pending")
      assert.deepStrictEqual(steps.filter((s) => s.startsWith("r3")), ["r3:commit"])
      for (const id of ["r1", "r2", "r3"]) {
        assert.strictEqual(result.rows.get(id)?.status, "concluded")
        assert.isUndefined(result.rows.get(id)?.error)
      }
      // Progress is reported again by the driver: what its checkpoint covered, then the steps it took.
      assert.strictEqual(result.rows.get("r1")?.currentProgress, 5)
      assert.strictEqual(result.rows.get("r1")?.totalProgress, 5)
    }))
  it.live("pause holds come back unclaimed: the job stays parked until a holder takes the hold over and lets it go", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      const steps: Array<number> = []
      const Stepper = JobDriver.make({
        type: "stepper",
        resumable: true,
        params: Schema.Struct({ to: Schema.Int }),
        make: (params, handle) =>
          Effect.succeed({
            run: Effect.gen(function*() {
              yield* handle.setRemaining(params.to)
              for (let i = 1; i <= params.to; i++) {
                yield* handle.pausePoint
                steps.push(i)
                yield* handle.update(1)
              }
            })
          })
      })
      yield* crashedState(
        filename,
        [job("h1", "job:h1", "paused", { type: "stepper", params: { to: 3 }, pauseHolds: ["maintenance", "quota"] })],
        [{ id: "job:h1", explicit: false, phase: "running" }],
        []
      )
      const engine = JobDriver.layer(Stepper).pipe(
        Layer.provideMerge(Jobs.layerDurable().pipe(Layer.provide(JobStore.sqlite({ filename })))),
        Layer.orDie
      )
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        yield* jobs.recover
        yield* jobs.awaitStatus("h1", "paused")
        // Read now: `get` gives the live job.
        const parked = (yield* jobs.get("h1")).pauseHolds
        // Not the user's pause: resume is refused, and the holds stay.
        const resumed = yield* Effect.exit(jobs.resume("h1"))
        // Holding for one reason and letting go leaves the other hold in place.
        yield* Effect.scoped(jobs.hold("h1", "maintenance"))
        const afterOne = { pauseHolds: (yield* jobs.get("h1")).pauseHolds, status: (yield* jobs.get("h1")).status }
        const stepsAfterOne = steps.length
        // A hold for a reason that was not restored is a hold of its own: released, the job is still held.
        yield* Effect.scoped(jobs.hold("h1", "other"))
        const stillHeld = (yield* jobs.get("h1")).pauseHolds
        yield* Effect.scoped(jobs.hold("h1", "quota"))
        yield* jobs.awaitStatus("h1", "concluded")
        return { parked, resumed, afterOne, stepsAfterOne, stillHeld }
      }).pipe(Effect.provide(engine)))

      assert.deepStrictEqual(result.parked, ["maintenance", "quota"])
      assert.isTrue(Exit.isFailure(result.resumed))
      assert.deepStrictEqual(result.afterOne.pauseHolds, ["quota"])
      assert.strictEqual(result.afterOne.status, "paused")
      assert.strictEqual(result.stepsAfterOne, 0)
      assert.deepStrictEqual(result.stillHeld, ["quota"])
      assert.deepStrictEqual(steps, [1, 2, 3])
    }))

  it.live("a transaction whose commit was decided commits after a restart: its members' commits run again from their checkpoints", () =>
    Effect.gen(function*() {
      const filename = yield* tempDb
      const calls: Array<string> = []
      const Committer = JobDriver.make({
        type: "committer",
        resumable: true,
        params: Schema.Struct({ failPrepare: Schema.Boolean }),
        make: (params, handle) =>
          Effect.succeed({
            run: Effect.void,
            prepare: params.failPrepare
              ? Effect.fail(new Error("its copy is gone"))
              : Effect.sync(() => calls.push(`${handle.id}:prepare:${JSON.stringify(handle.resumedFrom)}`)),
            commit: Effect.sync(() => calls.push(`${handle.id}:commit`)),
            abort: Effect.sync(() => calls.push(`${handle.id}:abort`))
          })
      })
      const member = (id: string, failPrepare: boolean) =>
        job(id, "t1", "pending", { type: "committer", params: { failPrepare }, manualDismiss: true })
      yield* crashedState(
        filename,
        [member("m1", false), member("m2", false), member("m3", true)],
        [{ id: "t1", explicit: true, phase: "committing" }],
        []
      )
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* JobStore.JobStore
        const owned = yield* store.acquire(JobStore.processOwner(), { ttl: "1 millis" })
        yield* owned.commit({ checkpoints: [{ job: "m1", data: { copy: 1 } }, { job: "m2", data: { copy: 2 } }] })
      })).pipe(Effect.provide(JobStore.sqlite({ filename })))
      const engine = JobDriver.layer(Committer).pipe(
        Layer.provideMerge(Jobs.layerDurable().pipe(Layer.provide(JobStore.sqlite({ filename })))),
        Layer.orDie
      )
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const jobs = yield* Jobs.Jobs
        const report = yield* jobs.recover
        const rows = new Map((yield* jobs.list).map((row) => [row.id, row]))
        return { report, rows }
      }).pipe(Effect.provide(engine)))

      // Newest first, every prepare before any commit, as when the decision was taken.
      assert.deepStrictEqual(calls, ["m2:prepare:{\"copy\":2}", "m1:prepare:{\"copy\":1}", "m3:abort", "m2:commit", "m1:commit"])
      assert.deepStrictEqual(result.report.committed, ["m2", "m1"])
      assert.deepStrictEqual(result.report.commitFailed.map((f) => f.id), ["m3"])
      assert.match(result.report.commitFailed[0]!.error, /the server stopped during the commit, which could not be completed: .*its copy is gone/)
      assert.isUndefined(result.rows.get("m1")?.error)
      assert.isUndefined(result.rows.get("m2")?.error)
      assert.match(result.rows.get("m3")?.error ?? "", /its copy is gone/)
      for (const id of ["m1", "m2", "m3"]) assert.strictEqual(result.rows.get(id)?.status, "concluded")
    }))
})
