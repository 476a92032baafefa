/**
 * `GET /api/events` over a real HTTP port: one SSE message per job event
 * (`id` its seq, `event` its kind, one JSON `data` line); a client that lost
 * its connection resumes with `Last-Event-ID` (or `?since=`) while jobs keep
 * changing and misses nothing, repeats nothing; an expired cursor gets
 * `event: reset` with a fresh snapshot, then the live events; a comment
 * every 15 s (TestClock); `event: shutdown` as the server stops; and 100
 * clients at once, one of which does not read: it is cut off, and the 99
 * others get every event without waiting for it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Logger, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as http from "node:http"
import * as net from "node:net"
import { Jobs } from "../../src/Jobs.ts"
import { eventOf, events, jobEvents, jobsLayer, layerWith, type Message, request, serve } from "./harness.ts"

/** Runs a test job that finishes at once, and waits for its end: 7 events. */
const quickJob = (id: string) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs
    const job = yield* Effect.orDie(jobs.run({ type: "test", id, params: { iterations: 0 } }))
    yield* Effect.orDie(jobs.awaitOutcome(job))
  })

const ids = (messages: ReadonlyArray<Message>) => jobEvents(messages).map((e) => e.id!)

const upTo = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => from + i)

const isEventWithId = (id: number) => (m: Message) => m._tag === "Event" && Number(m.id) === id

describe("GET /api/events", () => {
  it.live("each job event is one message: id its seq, event its kind, data the event as one JSON line", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const stream = yield* events(server)
      assert.strictEqual(stream.status, 200)
      assert.match(String(stream.headers["content-type"]), /^text\/event-stream/)
      assert.strictEqual(stream.headers["cache-control"], "no-cache")
      const direct = yield* jobs.subscribe({ since: 0 }) // the same events, from the engine
      yield* quickJob("j")
      const seq = (yield* jobs.snapshot).seq
      assert.strictEqual(seq, 7)
      const messages = yield* stream.takeUntil(isEventWithId(seq))
      assert.deepStrictEqual(messages[0], { _tag: "Comment", text: "effect-jobs events" })
      const sent = jobEvents(messages)
      assert.deepStrictEqual(sent.map((e) => e.id), upTo(7))
      assert.deepStrictEqual(sent.map((e) => e.event), [
        "StatusChange",
        "StatusChange",
        "StatusChange",
        "StatusChange",
        "Completed",
        "StatusChange",
        "StatusChange"
      ])
      const engine = yield* Stream.runCollect(Stream.take(direct, 7))
      assert.deepStrictEqual(sent.map((e) => e.data), JSON.parse(JSON.stringify(engine)))
      const first = engine[0]!
      assert.include(stream.raw(), `id: 1\nevent: StatusChange\ndata: ${JSON.stringify(first)}\n\n`)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("a client that lost its connection resumes with Last-Event-ID while jobs change: nothing lost or repeated", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      const first = yield* events(server)
      // Jobs keep changing the whole time.
      const changing = yield* Effect.forkScoped(
        Effect.forEach(upTo(30), (i) => quickJob(`bg${i}`), { discard: true }),
        { startImmediately: true }
      )
      yield* first.takeUntil((m) => m._tag === "Event" && Number(m.id) >= 20)
      yield* first.close
      yield* first.ended
      const seenFirst = ids(first.received)
      const last = seenFirst.at(-1)!
      // Changes while no one is connected.
      for (let i = 0; i < 3; i++) yield* quickJob(`gap${i}`)
      const second = yield* events(server, "/api/events?since=1", { "last-event-id": String(last) })
      yield* Fiber.join(changing)
      const seq = (yield* jobs.snapshot).seq
      assert.isAtLeast(seq, last + 21)
      const messages = yield* second.takeUntil(isEventWithId(seq))
      assert.deepStrictEqual(messages[0], { _tag: "Comment", text: "effect-jobs events" })
      // The header wins over ?since=, and the two connections together have every event once.
      assert.deepStrictEqual([...seenFirst, ...ids(messages)], upTo(seq))
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("?since= resumes too; a cursor at the latest seq gets the live events only; a bad cursor is a 400", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* quickJob("a")
      const from3 = yield* events(server, "/api/events?since=3")
      assert.deepStrictEqual(ids(yield* from3.takeUntil(isEventWithId(7))), upTo(7, 4))
      const current = yield* events(server, `/api/events?since=${(yield* jobs.snapshot).seq}`)
      yield* quickJob("b")
      assert.deepStrictEqual(ids(yield* current.takeUntil(isEventWithId(14))), upTo(14, 8))
      for (const [path, headers, name] of [
        ["/api/events?since=abc", {}, "since"],
        ["/api/events?since=-1", {}, "since"],
        ["/api/events?since=1.5", {}, "since"],
        ["/api/events", { "last-event-id": "x" }, "Last-Event-ID"]
      ] as const) {
        const refused = yield* request(server, path, { headers })
        assert.strictEqual(refused.status, 400, path)
        assert.deepStrictEqual(refused.json, {
          error: { class: "GenericError", desc: `Parameter '${name}' expects a sequence number (an integer, 0 or more)` }
        })
      }
      // A query the HttpApi runtime itself refuses is answered the same way (not with an empty 400).
      const twice = yield* request(server, "/api/events?since=1&since=2")
      assert.strictEqual(twice.status, 400)
      assert.deepStrictEqual(twice.json, {
        error: { class: "GenericError", desc: "Invalid parameter type for 'since', expected: string" }
      })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("an expired cursor: event reset (the oldest seq kept, a snapshot at its seq), then the live events", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const server = yield* serve()
      yield* Effect.orDie(jobs.run({ type: "test", id: "keep", params: { iterations: 5, wait: "yield" } }))
      for (let i = 0; i < 3; i++) yield* quickJob(`q${i}`)
      const seq = (yield* jobs.snapshot).seq
      assert.strictEqual(seq, 2 + 21)
      const oldest = seq - 4 // five events kept
      for (const [path, headers] of [["/api/events?since=2", {}], ["/api/events", { "last-event-id": "1" }]] as const) {
        const stream = yield* events(server, path, headers)
        const reset = eventOf(yield* stream.take)
        assert.strictEqual(reset.event, "reset")
        assert.strictEqual(reset.id, seq)
        assert.strictEqual(reset.data.oldest, oldest)
        assert.strictEqual(reset.data.seq, seq)
        assert.deepStrictEqual(reset.data.jobs.map((j: { id: string; status: string }) => [j.id, j.status]), [["keep", "running"]])
        yield* stream.close
      }
      // Within the kept events, no reset: the replay.
      const kept = yield* events(server, `/api/events?since=${oldest - 1}`)
      assert.deepStrictEqual(yield* kept.take, { _tag: "Comment", text: "effect-jobs events" })
      assert.deepStrictEqual(ids(yield* kept.takeUntil(isEventWithId(seq))), upTo(seq, oldest))
      // A cursor ahead of the server (one from before a restart) is no better.
      const ahead = yield* events(server, "/api/events?since=1000")
      const resetAhead = eventOf(yield* ahead.take)
      assert.strictEqual(resetAhead.event, "reset")
      assert.deepStrictEqual([resetAhead.data.oldest, resetAhead.data.seq], [oldest, seq])
      // The live events follow the reset.
      yield* quickJob("after")
      assert.deepStrictEqual(ids(yield* ahead.takeUntil(isEventWithId(seq + 7))), upTo(seq + 7, seq + 1))
    }).pipe(Effect.scoped, Effect.provide(layerWith({ retainedEvents: 5 }))))

  it.effect("a comment every 15 s of the engine's clock keeps the connection alive", () =>
    Effect.gen(function*() {
      const server = yield* serve()
      const stream = yield* events(server)
      assert.deepStrictEqual(yield* stream.take, { _tag: "Comment", text: "effect-jobs events" })
      yield* TestClock.adjust("14 seconds")
      yield* quickJob("j")
      // The job's events come first: no heartbeat before 15 s.
      assert.deepStrictEqual(ids(yield* stream.takeUntil(isEventWithId(7))), upTo(7))
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(yield* stream.take, { _tag: "Comment", text: "heartbeat" })
      yield* TestClock.adjust("15 seconds")
      assert.deepStrictEqual(yield* stream.take, { _tag: "Comment", text: "heartbeat" })
      assert.strictEqual(stream.received.length, 10)
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))

  it.live("as the server stops, a stream gets the events still on their way, then event: shutdown, then its end", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const serverScope = yield* Scope.make()
      const server = yield* Scope.provide(serve(), serverScope)
      const stream = yield* events(server)
      yield* Effect.orDie(jobs.run({ type: "test", id: "j", params: { iterations: 5, wait: "yield" } }))
      yield* Effect.orDie(jobs.pause("j"))
      yield* Effect.orDie(jobs.awaitStatus("j", "paused"))
      const seq = (yield* jobs.snapshot).seq
      yield* Scope.close(serverScope, Exit.void)
      const messages = yield* stream.takeUntil((m) => m._tag === "Event" && m.event === "shutdown")
      assert.deepStrictEqual(ids(messages), upTo(seq))
      assert.deepStrictEqual(messages.at(-1), { _tag: "Event", id: undefined, event: "shutdown", data: "{}" })
      assert.deepStrictEqual(yield* stream.ended, { complete: true })
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)))
})

/** A reader of an event stream that only follows the ids, at the speed of the socket. */
const fastReader = (port: number, onId: (seq: number) => void) =>
  Effect.callback<http.ClientRequest>((resume) => {
    const boundary = Buffer.from("\n\n")
    const req = http.get({ host: "127.0.0.1", port, path: "/api/events", agent: false }, (res) => {
      let tail: Buffer = Buffer.alloc(0)
      let started = false
      res.on("data", (chunk: Buffer) => {
        const buffer: Buffer = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk
        let at = 0
        let end: number
        while ((end = buffer.indexOf(boundary, at)) !== -1) {
          if (buffer.toString("latin1", at, at + 4) === "id: ") {
            onId(Number(buffer.toString("latin1", at + 4, buffer.indexOf(10, at))))
          }
          at = end + 2
        }
        tail = buffer.subarray(at)
        if (!started) {
          started = true
          resume(Effect.succeed(req))
        }
      })
    })
  })

describe("many clients, one of them slow", () => {
  it.live("100 clients at once: the one that does not read is cut off; the 99 others get every event, in time", () =>
    Effect.gen(function*() {
      const jobs = yield* Jobs
      const cutOff = yield* Deferred.make<string>()
      const server = yield* serve({ eventBuffer: 256 }).pipe(
        Effect.provide(Logger.layer([
          Logger.make(({ message }) => {
            const text = Array.isArray(message) ? message.join(" ") : String(message)
            if (text.startsWith("event stream closed")) Deferred.doneUnsafe(cutOff, Exit.succeed(text))
          })
        ]))
      )
      const fast = 99
      const seen = new Array<number>(fast).fill(0)
      const gaps: Array<string> = []
      let waiting: { readonly seq: number; readonly done: () => void } | undefined
      const check = () => {
        if (waiting !== undefined && seen.every((s) => s >= waiting!.seq)) {
          const done = waiting.done
          waiting = undefined
          done()
        }
      }
      const readers = yield* Effect.forEach(upTo(fast, 0).slice(0, fast), (k) =>
        fastReader(server.port, (seq) => {
          if (seq !== seen[k]! + 1) gaps.push(`client ${k}: ${seen[k]} then ${seq}`)
          seen[k] = seq
          check()
        }))
      yield* Effect.addFinalizer(() => Effect.sync(() => readers.forEach((req) => req.destroy())))
      /** Waits until every fast client has had every event published so far. */
      const allCaughtUp = Effect.flatMap(jobs.snapshot, ({ seq }) =>
        Effect.callback<void>((resume) => {
          waiting = { seq, done: () => resume(Effect.void) }
          check()
        }))

      // The slow client asks for the stream and never reads.
      const slow = net.connect(server.port, "127.0.0.1")
      yield* Effect.addFinalizer(() => Effect.sync(() => slow.destroy()))
      yield* Effect.callback<void>((resume) => void slow.once("connect", () => resume(Effect.void)))
      slow.pause()
      slow.write(`GET /api/events HTTP/1.1\r\nHost: ${server.host}\r\n\r\n`)

      // Long ids make long events: the slow client's socket fills in fewer of them.
      const longId = `j${"x".repeat(1000)}`
      let n = 0
      while (!(yield* Deferred.isDone(cutOff))) {
        if (n >= 20_000) assert.fail("the slow client was never cut off")
        const batch = []
        for (let i = 0; i < 10; i++) batch.push(yield* Effect.orDie(jobs.run({ type: "test", id: `${longId}${n++}`, params: { iterations: 0 } })))
        for (const job of batch) yield* Effect.orDie(jobs.awaitOutcome(job))
        yield* allCaughtUp
      }
      assert.strictEqual(yield* Deferred.await(cutOff), "event stream closed: the client fell more than 256 events behind")
      // The others go on.
      yield* quickJob("after")
      yield* allCaughtUp
      const seq = (yield* jobs.snapshot).seq
      assert.deepStrictEqual(gaps, [])
      assert.isTrue(seen.every((s) => s === seq))
      // The slow client's connection was closed: it gets what was on its way, then the end, short of the last events.
      slow.resume()
      let text = ""
      slow.setEncoding("latin1")
      slow.on("data", (chunk: string) => {
        text += chunk
      })
      yield* Effect.callback<void>((resume) => void slow.once("close", () => resume(Effect.void)))
      const lastId = Math.max(...[...text.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])))
      assert.isBelow(lastId, seq)
      assert.isFalse(text.endsWith("0\r\n\r\n"), "the response was cut, not ended")
    }).pipe(Effect.scoped, Effect.provide(jobsLayer)), 120_000)
})
