/**
 * The job store's contract, as one suite that runs against every store: the
 * memory store, a SQLite file and a Postgres database. A store under test is
 * a layer that opens the same store each time it is built (a new connection
 * for SQLite and Postgres: what a restarted or a second server gets).
 *
 * Time is the TestClock's; the lease of a process that has stalled is played
 * by an owner whose clock stands still, so it never renews its lease.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Context, Duration, Effect, Exit, Layer, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { JobEvent } from "../../src/JobEvent.ts"
import type { JobStatus } from "../../src/JobStatus.ts"
import * as JobStore from "../../src/JobStore.ts"

/** Opens the store under test; each build of the layer is another connection to the same store. */
export type StoreUnderTest = Layer.Layer<JobStore.JobStore, unknown>

/** Opens `store` for the life of the current scope. */
export const open = <E>(store: Layer.Layer<JobStore.JobStore, E>) =>
  Effect.map(Layer.build(store), (context) => Context.get(context, JobStore.JobStore))

/** Runs `f` with the store opened in a scope of its own, closed (lease released, connection closed) at the end. */
const session = <A, E>(
  store: StoreUnderTest,
  f: (service: JobStore.JobStoreService) => Effect.Effect<A, E, Scope.Scope>
) => Effect.scoped(Effect.flatMap(open(store), f))

/** Runs `f` as `owner` of the store, in a scope of its own. */
const owning = <A, E>(
  store: StoreUnderTest,
  owner: JobStore.LeaseOwner,
  f: (owned: JobStore.OwnedStore) => Effect.Effect<A, E, Scope.Scope>
) => session(store, (service) => Effect.flatMap(service.acquire(owner), f))

/** What the store holds, as the next owner finds it. */
const snapshotOf = (store: StoreUnderTest, owner: JobStore.LeaseOwner) =>
  owning(store, owner, (owned) => Effect.succeed(owned.snapshot))

const eventsOf = (store: StoreUnderTest, afterSeq = 0, limit = 10_000) =>
  session(store, (service) => service.readEvents(afterSeq, limit))

const ownerA = JobStore.processOwner("owner-a")
const ownerB = JobStore.processOwner("owner-b")

const job = (id: string, fields: Partial<JobStore.StoredJob> = {}): JobStore.StoredJob => ({
  id,
  type: "backup",
  params: { source: `/data/${id}.img`, target: "/backup/é ☃ \"quoted\".img", options: [1, 2.5, null, true] },
  txn: `txn-${id}`,
  status: "running",
  manualFinalize: false,
  manualDismiss: true,
  progress: { current: 3, total: 10 },
  speed: 0,
  userPaused: false,
  pauseHolds: [],
  createdAt: 1_000,
  updatedAt: 2_000,
  ...fields
})

const statusChange = (seq: number, id: string, status: JobStatus): JobEvent => ({
  _tag: "StatusChange",
  seq,
  timestamp: seq * 10,
  id,
  status
})

const ready = (seq: number, id: string): JobEvent => ({
  _tag: "Ready",
  seq,
  timestamp: seq * 10,
  id,
  type: "mirror",
  len: 100,
  offset: 100,
  speed: 0
})

const completed = (seq: number, id: string, error?: string): JobEvent => ({
  _tag: "Completed",
  seq,
  timestamp: seq * 10,
  id,
  type: "backup",
  len: 10,
  offset: 3,
  speed: 0,
  ...(error === undefined ? {} : { error })
})

/** `count` status changes of job `id`, with sequence numbers from `from`. */
const eventsFrom = (from: number, count: number, id = "j1"): Array<JobEvent> =>
  Array.from({ length: count }, (_, i) => statusChange(from + i, id, "running"))

/** A clock that stands still at `millis`: its owner never renews its lease (a stalled or crashed process). */
const stoppedClock = (millis: number): Clock.Clock => ({
  currentTimeMillisUnsafe: () => millis,
  currentTimeMillis: Effect.succeed(millis),
  currentTimeNanosUnsafe: () => BigInt(millis) * 1_000_000n,
  currentTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => BigInt(millis) * 1_000_000n,
  monotonicTimeNanos: Effect.succeed(BigInt(millis) * 1_000_000n),
  sleep: () => Effect.never
})

const withStoppedClock = <A, E, R>(effect: Effect.Effect<A, E, R>, millis = 0) =>
  Effect.provideService(effect, Clock.Clock, stoppedClock(millis))

/** Polls `probe` until it holds, for at most 10 seconds of real time (the store may answer over a socket). */
const eventually = <E, R>(probe: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 10_000
    while (!(yield* probe)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting until ${what}`))
      yield* TestClock.withLive(Effect.sleep("5 millis"))
    }
  })

/** A refused commit as [tag, seq, after]. */
const refusal = (error: { readonly _tag: string }) =>
  error instanceof JobStore.SeqNotIncreasing ? [error._tag, error.seq, error.after] : [error._tag]

/** Acquires in a scope of its own and returns the failure (a success is a test failure). */
const refused = (service: JobStore.JobStoreService, owner: JobStore.LeaseOwner) =>
  Effect.scoped(Effect.flip(service.acquire(owner)))

export const storeSuite = (name: string, fresh: Effect.Effect<StoreUnderTest, unknown, Scope.Scope>) =>
  describe(`JobStore (${name})`, () => {
    it.effect("a new store is empty, and its sequence starts at 0", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        assert.deepStrictEqual(yield* snapshotOf(store, ownerA), {
          jobs: [],
          txns: [],
          checkpoints: [],
          lastSeq: 0,
          oldestSeq: 1,
          takenOver: undefined
        })
      }))

    it.effect("keeps jobs, transactions, checkpoints and events, and gives them back on reopening", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const a = job("a", { txn: "t1", error: "boom: no space left", startedAt: 1_500, status: "concluded" })
        const b = job("b", { txn: "t1", userPaused: true, pauseHolds: ["snapshot", "snapshot", "quota"] })
        const c = job("c", { params: null, manualFinalize: true, status: "pending" })
        const txns: Array<JobStore.StoredTxn> = [
          { id: "t1", explicit: true, phase: "aborting", error: "boom: no space left" },
          { id: "txn-c", explicit: false, phase: "pending" }
        ]
        const checkpoints: Array<JobStore.Checkpoint> = [
          { job: "b", data: { temp: "/backup/.b.tmp", offset: 64 * 1024 * 1024, source: { dev: 1, ino: 2 } } },
          { job: "c", data: [1, "two"] }
        ]
        const events = [statusChange(1, "a", "created"), ready(2, "b"), completed(3, "a", "boom"), completed(4, "c")]
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            yield* owned.commit({ jobs: [a, b], txns: [txns[0]!], events: events.slice(0, 2) })
            yield* owned.commit({ jobs: [c], txns: [txns[1]!], checkpoints, events: events.slice(2) })
          }))
        const snapshot = yield* snapshotOf(store, ownerB)
        assert.deepStrictEqual(snapshot.jobs, [a, b, c])
        assert.deepStrictEqual(snapshot.txns, txns)
        assert.deepStrictEqual([...snapshot.checkpoints].sort((x, y) => x.job.localeCompare(y.job)), checkpoints)
        assert.deepStrictEqual([snapshot.lastSeq, snapshot.oldestSeq], [4, 1])
        // The previous owner released its lease: nothing was taken over.
        assert.strictEqual(snapshot.takenOver, undefined)
        assert.deepStrictEqual(yield* eventsOf(store), events)
      }))

    it.effect("a job keeps its place when it changes; removals go first, so a removed id written again is new", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            yield* owned.commit({
              jobs: [job("a"), job("b"), job("c"), job("d")],
              txns: [{ id: "t", explicit: true, phase: "running" }, { id: "u", explicit: true, phase: "running" }],
              checkpoints: [{ job: "a", data: 1 }, { job: "b", data: 2 }, { job: "c", data: 3 }]
            })
            yield* owned.commit({
              // "a" changes twice in one batch (the last wins, in its place); "b" is dismissed and a new "b"
              // takes its id in the same tick; "c" is dismissed with its checkpoint; "d" gets a checkpoint
              // and "a" loses its own.
              jobs: [job("a", { status: "paused" }), job("b", { type: "mirror" }), job("a", { status: "ready" })],
              removedJobs: ["b", "c", "c"],
              removedTxns: ["t"],
              txns: [{ id: "u", explicit: true, phase: "committed" }],
              removedCheckpoints: ["a"],
              checkpoints: [{ job: "d", data: { at: 4 } }]
            })
          }))
        const snapshot = yield* snapshotOf(store, ownerA)
        assert.deepStrictEqual(snapshot.jobs.map((j) => [j.id, j.status, j.type]), [
          ["a", "ready", "backup"],
          ["d", "running", "backup"],
          ["b", "running", "mirror"]
        ])
        assert.deepStrictEqual(snapshot.txns, [{ id: "u", explicit: true, phase: "committed" }])
        assert.deepStrictEqual(snapshot.checkpoints, [{ job: "d", data: { at: 4 } }])
      }))

    it.effect("a commit whose events do not come after the stored ones writes nothing at all", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            yield* owned.commit({
              jobs: [job("a")],
              txns: [{ id: "t", explicit: true, phase: "running" }],
              checkpoints: [{ job: "a", data: 1 }],
              events: eventsFrom(1, 3)
            })
            // The jobs, transactions and checkpoints come before the events in the commit: they are undone.
            const repeated = yield* Effect.flip(owned.commit({
              jobs: [job("a", { status: "paused" }), job("x")],
              removedJobs: ["a"],
              txns: [{ id: "t", explicit: true, phase: "aborted" }],
              checkpoints: [{ job: "x", data: 2 }],
              removedCheckpoints: ["a"],
              events: eventsFrom(3, 2)
            }))
            assert.deepStrictEqual(refusal(repeated), ["SeqNotIncreasing", 3, 3])
            assert.include(repeated.message, "Event sequence number 3 does not come after 3")
            const backwards = yield* Effect.flip(
              owned.commit({ jobs: [job("y")], events: [statusChange(2, "y", "created")] })
            )
            assert.deepStrictEqual(refusal(backwards), ["SeqNotIncreasing", 2, 3])
            // Within one batch too.
            const unordered = yield* Effect.flip(
              owned.commit({ jobs: [job("z")], events: [...eventsFrom(5, 2), ...eventsFrom(6, 1)] })
            )
            assert.deepStrictEqual(refusal(unordered), ["SeqNotIncreasing", 6, 6])
          }))
        const snapshot = yield* snapshotOf(store, ownerA)
        assert.deepStrictEqual(snapshot.jobs, [job("a")])
        assert.deepStrictEqual(snapshot.txns, [{ id: "t", explicit: true, phase: "running" }])
        assert.deepStrictEqual(snapshot.checkpoints, [{ job: "a", data: 1 }])
        assert.strictEqual(snapshot.lastSeq, 3)
        assert.deepStrictEqual(yield* eventsOf(store), eventsFrom(1, 3))
      }))

    it.effect("sequence numbers continue after reopening; gaps are allowed, repeats are not", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        yield* owning(store, ownerA, (owned) => owned.commit({ events: eventsFrom(1, 5) }))
        yield* owning(store, ownerB, (owned) =>
          Effect.gen(function*() {
            assert.strictEqual(owned.snapshot.lastSeq, 5)
            const repeat = yield* Effect.flip(owned.commit({ events: [statusChange(5, "j1", "paused")] }))
            assert.deepStrictEqual(refusal(repeat), ["SeqNotIncreasing", 5, 5])
            yield* owned.commit({ events: [statusChange(6, "j1", "paused"), statusChange(10, "j1", "running")] })
          }))
        assert.strictEqual((yield* snapshotOf(store, ownerA)).lastSeq, 10)
        assert.deepStrictEqual((yield* eventsOf(store, 4)).map((e) => e.seq), [5, 6, 10])
      }))

    it.effect("reads the event log in pages", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const events = eventsFrom(1, 1_203) // more than one INSERT's worth of rows
        yield* owning(store, ownerA, (owned) => owned.commit({ events }))
        const pages = yield* session(store, (service) =>
          Effect.gen(function*() {
            const pages: Array<ReadonlyArray<JobEvent>> = []
            let after = 0
            while (true) {
              const page = yield* service.readEvents(after, 500)
              if (page.length === 0) return pages
              pages.push(page)
              after = page[page.length - 1]!.seq
            }
          }))
        assert.deepStrictEqual(pages.map((page) => page.length), [500, 500, 203])
        assert.deepStrictEqual(pages.flat(), events)
        assert.deepStrictEqual(yield* eventsOf(store, 1_203, 10), [])
        assert.deepStrictEqual(yield* eventsOf(store, 1_200, 0), [])
      }))

    it.effect("keeps the newest events it is told to, and the sequence goes on after them", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            yield* owned.commit({ events: eventsFrom(1, 10) })
            assert.strictEqual(yield* owned.trimEvents(4), 7)
            assert.strictEqual(yield* owned.trimEvents(100), 7) // fewer than that: nothing goes
          }))
        assert.deepStrictEqual((yield* eventsOf(store)).map((e) => e.seq), [7, 8, 9, 10])
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            assert.deepStrictEqual([owned.snapshot.lastSeq, owned.snapshot.oldestSeq], [10, 7])
            assert.strictEqual(yield* owned.trimEvents(0), 11) // none kept
          }))
        assert.deepStrictEqual(yield* eventsOf(store), [])
        yield* owning(store, ownerA, (owned) =>
          Effect.gen(function*() {
            assert.deepStrictEqual([owned.snapshot.lastSeq, owned.snapshot.oldestSeq], [10, 11])
            const repeat = yield* Effect.flip(owned.commit({ events: eventsFrom(10, 1) }))
            assert.deepStrictEqual(refusal(repeat), ["SeqNotIncreasing", 10, 10])
            yield* owned.commit({ events: eventsFrom(11, 2) })
          }))
        const snapshot = yield* snapshotOf(store, ownerA)
        assert.deepStrictEqual([snapshot.lastSeq, snapshot.oldestSeq], [12, 11])
      }))

    it.effect("a second owner is refused while the first holds the store, with the first named", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const first = yield* open(store)
        const owned = yield* first.acquire(ownerA)
        yield* TestClock.adjust("1 second")
        const error = yield* refused(yield* open(store), ownerB)
        assert.strictEqual(error._tag, "StoreOwned")
        if (error._tag !== "StoreOwned") return
        assert.deepStrictEqual(error.holder, {
          owner: "owner-a",
          pid: process.pid,
          host: ownerA.host,
          since: 0,
          heartbeatAt: 0,
          expiresAt: 15_000
        })
        assert.strictEqual(error.store, first.location)
        assert.include(
          error.message,
          `is in use by owner-a (pid ${process.pid} on ${ownerA.host}) since 1970-01-01T00:00:00.000Z`
        )
        // The first owner is untouched by the refusal.
        yield* owned.commit({ events: eventsFrom(1, 1) })
      }))

    it.effect("closing the owner's scope releases the lease: the next owner takes the store at once", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const scope = yield* Scope.make()
        const first = yield* Scope.provide(open(store), scope)
        const owned = yield* Scope.provide(first.acquire(ownerA), scope)
        yield* owned.commit({ jobs: [job("a")], events: eventsFrom(1, 2) })
        yield* Scope.close(scope, Exit.void)
        const snapshot = yield* snapshotOf(store, ownerB)
        assert.deepStrictEqual(snapshot.jobs, [job("a")])
        assert.strictEqual(snapshot.lastSeq, 2)
        assert.strictEqual(snapshot.takenOver, undefined)
      }))

    it.effect("an owner writes no more once it has released the store", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const service = yield* open(store)
        const owned = yield* Effect.scoped(service.acquire(ownerA))
        const lost = yield* Effect.flip(owned.commit({ jobs: [job("late")], events: eventsFrom(1, 1) }))
        assert.strictEqual(lost._tag, "StoreLeaseLost")
        assert.include(lost.message, "nobody holds it now")
        assert.strictEqual((yield* Effect.flip(owned.trimEvents(0)))._tag, "StoreLeaseLost")
        const snapshot = yield* snapshotOf(store, ownerB)
        assert.deepStrictEqual([snapshot.jobs, snapshot.lastSeq], [[], 0])
      }))

    it.effect("heartbeats keep the lease while its scope is open", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const owned = yield* Effect.flatMap(
          open(store),
          (s) => s.acquire(ownerA, { ttl: "3 seconds", heartbeat: "1 second" })
        )
        const second = yield* open(store)
        // Ten leases' worth of time, a beat at a time: after each, the lease was renewed at that beat.
        for (let beat = 1; beat <= 30; beat++) {
          yield* TestClock.adjust("1 second")
          const at = yield* Clock.currentTimeMillis
          yield* eventually(
            Effect.map(refused(second, ownerB), (e) => e._tag === "StoreOwned" && e.holder.heartbeatAt === at),
            `the lease is renewed at ${at}`
          )
        }
        yield* owned.commit({ events: eventsFrom(1, 1) })
      }))

    it.effect("an owner that stops renewing loses the store once its lease expires, and can write no more", () =>
      Effect.gen(function*() {
        const store = yield* fresh
        const stalled = yield* withStoppedClock(
          Effect.flatMap(open(store), (s) => s.acquire(ownerA, { ttl: "10 seconds" }))
        )
        yield* withStoppedClock(stalled.commit({ jobs: [job("a")], events: eventsFrom(1, 1) }))
        const next = yield* open(store)
        yield* TestClock.adjust(Duration.millis(9_999))
        assert.strictEqual((yield* refused(next, ownerB))._tag, "StoreOwned")
        yield* TestClock.adjust("1 millis")
        const owned = yield* next.acquire(ownerB)
        assert.deepStrictEqual(owned.snapshot.jobs, [job("a")])
        assert.strictEqual(owned.snapshot.lastSeq, 1)
        assert.deepStrictEqual(owned.snapshot.takenOver, {
          owner: "owner-a",
          pid: process.pid,
          host: ownerA.host,
          since: 0,
          heartbeatAt: 0,
          expiresAt: 10_000
        })
        // The stalled owner wakes up: its writes are refused, naming who holds the store now.
        const lost = yield* Effect.flip(stalled.commit({ jobs: [job("stale")], events: eventsFrom(2, 1) }))
        assert.strictEqual(lost._tag, "StoreLeaseLost")
        if (lost._tag !== "StoreLeaseLost") return
        assert.strictEqual(lost.holder?.owner, "owner-b")
        assert.include(lost.message, "The lease of owner-a on the job store")
        assert.include(lost.message, "it is now held by owner-b")
        assert.strictEqual((yield* Effect.flip(stalled.trimEvents(0)))._tag, "StoreLeaseLost")
        // The new owner goes on from where the store was.
        yield* owned.commit({ events: eventsFrom(2, 1) })
        assert.deepStrictEqual((yield* next.readEvents(0, 10)).map((e) => e.seq), [1, 2])
        assert.deepStrictEqual(owned.snapshot.jobs.map((j) => j.id), ["a"])
      }))
  })
