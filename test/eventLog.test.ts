/**
 * The event log: every event gets a sequence number (1, 2, 3, … per engine) and
 * the engine clock's time; the last `retainedEvents` are kept, so a subscriber
 * can start after any retained sequence number — the replay, then the live
 * events, with no gap and no duplicate — or is told `CursorExpired`; `snapshot`
 * is the job list at one sequence number.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import type { JobEvent } from "../src/JobEvent.ts"
import { Jobs } from "../src/Jobs.ts"
import * as Testing from "../src/testing.ts"

/** Reads `stream` into `into` in a fiber of `scope`. */
const readInto = (stream: Stream.Stream<JobEvent, unknown>, into: Array<JobEvent>, scope: Scope.Scope) =>
  Effect.forkIn(Stream.runForEach(stream, (e) => Effect.sync(() => void into.push(e))), scope, {
    startImmediately: true
  })

const seqs = (events: ReadonlyArray<JobEvent>) => events.map((e) => e.seq)

describe("event log", () => {
  it.effect("sequence numbers grow by one from 1; timestamps are the engine clock's", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const seen: Array<JobEvent> = []
      yield* readInto(jobs.events, seen, yield* Effect.scope)
      yield* TestClock.adjust("5 seconds")
      const job = yield* jobs.run({ type: "test", id: "j", params: { iterations: 2, sleepMillis: 100 } })
      yield* TestClock.adjust("1 second")
      yield* jobs.awaitOutcome(job)
      yield* jobs.awaitDelivered
      assert.deepStrictEqual(seqs(seen), seen.map((_, i) => i + 1))
      assert.strictEqual(seen[0]!.timestamp, 5_000)
      assert.isTrue(seen.every((e, i) => i === 0 || e.timestamp >= seen[i - 1]!.timestamp))
      assert.strictEqual(seen.at(-1)!.timestamp, 5_200)
    }).pipe(Effect.scoped, Effect.provide(Testing.layer)))

  it.effect("subscribe({ since }) replays what came after, then goes on live; snapshot + since misses nothing", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const scope = yield* Effect.scope
      const all: Array<JobEvent> = []
      yield* readInto(jobs.events, all, scope)
      const a = yield* jobs.run({ type: "test", id: "a", params: { iterations: 5, sleepMillis: 10 } })
      yield* TestClock.adjust("20 millis")
      const snapshot = yield* jobs.snapshot
      assert.deepStrictEqual(snapshot.jobs.map((j) => [j.id, j.status]), [["a", "running"]])
      yield* TestClock.adjust("10 millis")
      // Later than the snapshot: the replay catches up on what happened since.
      const resumed: Array<JobEvent> = []
      yield* readInto(yield* jobs.subscribe({ since: snapshot.seq }), resumed, scope)
      yield* jobs.run({ type: "test", id: "b", params: { iterations: 1, sleepMillis: 10 } })
      yield* TestClock.adjust("100 millis")
      yield* jobs.awaitOutcome(a)
      yield* jobs.awaitDelivered
      assert.isAbove(resumed.length, 0)
      assert.deepStrictEqual(resumed, all.filter((e) => e.seq > snapshot.seq))
      // Since the last event: nothing to replay.
      const none: Array<JobEvent> = []
      yield* readInto(yield* jobs.subscribe({ since: all.at(-1)!.seq }), none, scope)
      yield* jobs.awaitDelivered
      assert.deepStrictEqual(none, [])
    }).pipe(Effect.scoped, Effect.provide(Testing.layer)))

  it.effect("a cursor older than what is retained fails with CursorExpired, naming the oldest retained", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.snapshot // the log keeps events from its first read on
      for (const id of ["a", "b", "c"]) yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id, params: { iterations: 0 } }))
      const { seq } = yield* jobs.snapshot
      assert.isAbove(seq, 5)
      const expired = yield* Effect.flip(Effect.scoped(jobs.subscribe({ since: seq - 6 })))
      assert.strictEqual(expired._tag, "CursorExpired")
      assert.strictEqual(expired.oldest, seq - 4)
      // The oldest retained event is still there to start after.
      const ok = yield* Effect.exit(Effect.scoped(jobs.subscribe({ since: seq - 5 })))
      assert.isTrue(Exit.isSuccess(ok))
    }).pipe(Effect.provide(Testing.layerWith({ retainedEvents: 5 }))))

  it.effect("the log opens at its first read: events before it are not built, every one after it is kept", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "unseen", params: { iterations: 0 } }))
      const first = yield* jobs.snapshot
      assert.strictEqual(first.seq, 0)
      yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "seen", params: { iterations: 0 } }))
      const last = (yield* jobs.snapshot).seq
      const replayed = yield* Effect.scoped(Effect.flatMap(jobs.subscribe({ since: first.seq }), (events) =>
        Stream.runCollect(Stream.take(events, last - first.seq))))
      assert.strictEqual(replayed.length, last)
      assert.deepStrictEqual(replayed.map((e) => e.seq), replayed.map((_, i) => i + 1))
      assert.isTrue(replayed.every((e) => e.id === "seen"))
      assert.deepStrictEqual(
        replayed.filter((e) => e._tag === "StatusChange").map((e) => (e as { status: string }).status),
        ["created", "running", "waiting", "pending", "concluded", "null"]
      )
    }).pipe(Effect.provide(Testing.layer)))
})

/** One step of the property: a job action, the clock, or a subscriber leaving or coming back. */
type Step =
  | { readonly _tag: "Run"; readonly iterations: number }
  | { readonly _tag: "Verb"; readonly job: number; readonly verb: "pause" | "resume" | "cancel" }
  | { readonly _tag: "Adjust"; readonly millis: number }
  | { readonly _tag: "Leave"; readonly subscriber: number }
  | { readonly _tag: "Return"; readonly subscriber: number; readonly from: "last" | number }

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ _tag: fc.constant("Run" as const), iterations: fc.integer({ min: 0, max: 4 }) }),
  fc.record({
    _tag: fc.constant("Verb" as const),
    job: fc.nat(9),
    verb: fc.constantFrom("pause" as const, "resume" as const, "cancel" as const)
  }),
  fc.record({ _tag: fc.constant("Adjust" as const), millis: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ _tag: fc.constant("Leave" as const), subscriber: fc.nat(2) }),
  fc.record({
    _tag: fc.constant("Return" as const),
    subscriber: fc.nat(2),
    from: fc.oneof(fc.constant("last" as const), fc.nat(80))
  })
)

interface Session {
  readonly since: number
  readonly events: Array<JobEvent>
  readonly scope: Scope.Closeable
}

const runs = Number(process.env.FC_RUNS ?? 150)

describe("event log (property)", () => {
  it.effect("subscribers that leave and resume from any cursor see exactly the published sequence", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(fc.integer({ min: 3, max: 40 }), fc.array(stepArb, { maxLength: 40 }), (retained, steps) =>
          Effect.runPromise(Effect.gen(function*() {
            const jobs = yield* Jobs
            const outer = yield* Effect.scope
            const reference: Array<JobEvent> = []
            yield* readInto(yield* jobs.subscribe({ capacity: 100_000 }), reference, outer)
            const sessions: Array<Array<Session>> = [[], [], []]
            const live: Array<Session | undefined> = [undefined, undefined, undefined]
            const expired: Array<{ since: number; oldest: number; seq: number }> = []
            let created = 0
            const connect = (subscriber: number, since: number) =>
              Effect.gen(function*() {
                const { seq } = yield* jobs.snapshot
                const scope = yield* Scope.make()
                const exit = yield* Effect.exit(Scope.provide(jobs.subscribe({ since, capacity: 100_000 }), scope))
                if (Exit.isFailure(exit)) {
                  yield* Scope.close(scope, Exit.void)
                  const error = exit.cause.reasons[0] as { readonly error?: { readonly oldest: number } }
                  expired.push({ since, oldest: error.error!.oldest, seq })
                  return
                }
                const session: Session = { since, events: [], scope }
                yield* readInto(exit.value, session.events, scope)
                sessions[subscriber]!.push(session)
                live[subscriber] = session
              })
            for (let s = 0; s < 3; s++) yield* connect(s, 0)
            for (const step of steps) {
              switch (step._tag) {
                case "Run":
                  yield* jobs.run({ type: "test", id: `j${created++}`, params: { iterations: step.iterations, sleepMillis: 10 } })
                  break
                case "Verb": {
                  const id = `j${step.job}`
                  const act = step.verb === "cancel" ? jobs.cancel(id, { force: true }) : jobs[step.verb](id)
                  yield* Effect.ignore(act)
                  break
                }
                case "Adjust":
                  yield* TestClock.adjust(step.millis)
                  break
                case "Leave": {
                  const session = live[step.subscriber]
                  if (session !== undefined) yield* Scope.close(session.scope, Exit.void)
                  live[step.subscriber] = undefined
                  break
                }
                case "Return": {
                  const previous = live[step.subscriber] ?? sessions[step.subscriber]!.at(-1)
                  if (live[step.subscriber] !== undefined) yield* Scope.close(live[step.subscriber]!.scope, Exit.void)
                  const since = step.from === "last"
                    ? (previous?.events.at(-1)?.seq ?? previous?.since ?? 0)
                    : Math.min(step.from, (yield* jobs.snapshot).seq)
                  yield* connect(step.subscriber, since)
                  break
                }
              }
            }
            yield* TestClock.adjust("10 seconds")
            yield* jobs.awaitDelivered
            // Every session saw the events after its cursor, one by one, as the reference did.
            const bySeq = new Map(reference.map((e) => [e.seq, e]))
            assert.deepStrictEqual(seqs(reference), reference.map((_, i) => i + 1))
            for (const list of sessions) {
              for (const session of list) {
                session.events.forEach((e, i) => {
                  assert.strictEqual(e.seq, session.since + 1 + i, "no gap, no duplicate")
                  assert.deepStrictEqual(e, bySeq.get(e.seq))
                })
              }
            }
            // A cursor is refused exactly when events after it were no longer retained.
            for (const { oldest, seq, since } of expired) {
              assert.strictEqual(oldest, Math.max(1, seq - retained + 1))
              assert.isBelow(since + 1, oldest)
            }
          }).pipe(
            Effect.scoped,
            Effect.provide(Testing.layerWith({ retainedEvents: retained })),
            Effect.provide(TestClock.layer())
          ))
        ),
        { numRuns: runs }
      )
    ))
})
