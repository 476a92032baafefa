/**
 * `GET /api/events`: the engine's events as Server-Sent Events.
 *
 * Each job event is one message: `id: <seq>`, `event: <kind>` (its `_tag`:
 * `StatusChange`, `Ready`, `Pending`, `Completed`, `Cancelled`) and one
 * `data:` line, the event as JSON. A client resumes after the last `id` it
 * saw — the `Last-Event-ID` header, which a browser's `EventSource` sends by
 * itself when it reconnects, or `?since=<seq>` (the header wins) — and gets
 * the events it missed, then the live ones, with no gap and no duplicate.
 * Without either it gets the events from now on (list the jobs first:
 * `GET /api/jobs` gives the `seq` to resume from).
 *
 * When the events after the cursor are no longer kept (or the cursor is
 * ahead of the server, e.g. a server restarted since), the first message is
 * `event: reset`, its `data` `{oldest, seq, jobs}`: the oldest sequence
 * number kept, and a fresh snapshot of the jobs at `seq`; the events after
 * `seq` follow. Its `id` is `seq`, so a reconnect resumes from there.
 *
 * With a durable store, its notices (`StoreNotice.ts`) come as they happen:
 * `event: StoreUnwritable` or `StoreWritable`, with no `id` (they are not in
 * the log, and a reconnect does not get them again).
 *
 * A comment (`: heartbeat`) goes out every `heartbeatInterval` (15 s). As the
 * server stops, each stream gets the events still on their way, then
 * `event: shutdown`, and ends.
 *
 * Every stream has its own subscription, which it takes events from as the
 * engine publishes them (the engine never waits for a client), and a buffer
 * of `eventBuffer` events between it and the connection. A client that reads
 * too slowly fills its connection, then its buffer: once it is more than
 * `eventBuffer` events behind, its connection is closed at once (the
 * engine's own overflow of the subscription does the same, should the
 * stream's producer not get to run in time). The others are not slowed
 * down. It may reconnect with its `Last-Event-ID`.
 *
 * (The buffer is the stream's own, not the subscription's: a writer that
 * waits for a full connection would also stop reading the subscription, and
 * nobody would see it overflow until the client read again.)
 */
import { Cause, Deferred, Duration, Effect, type Fiber, Queue, type Scope, Stream } from "effect"
import * as Sse from "effect/encoding/Sse"
import { HttpServerResponse } from "effect/http"
import type { HttpServerRequest } from "effect/http"
import type { EventsOverflow } from "../JobError.ts"
import type { JobEvent } from "../JobEvent.ts"
import type { StoreNotice } from "../StoreNotice.ts"
import type { Reset } from "./api.ts"
import { badRequest, type BadRequest } from "./errors.ts"
import type { ActiveStream, HttpStateShape } from "./state.ts"

const utf8 = new TextEncoder()
const opening = utf8.encode(": effect-jobs events\n\n")
const heartbeat = utf8.encode(": heartbeat\n\n")
const shutdown = utf8.encode(Sse.encoder.write({ _tag: "Event", id: undefined, event: "shutdown", data: "{}" }))

/** Each event is encoded once, however many streams send it. */
const encoded = new WeakMap<JobEvent, Uint8Array>()

/** One job event as an SSE message. */
export const encodeJobEvent = (event: JobEvent): Uint8Array => {
  let bytes = encoded.get(event)
  if (bytes === undefined) {
    const data = JSON.stringify(event)
    bytes = utf8.encode(Sse.encoder.write({ _tag: "Event", id: String(event.seq), event: event._tag, data }))
    encoded.set(event, bytes)
  }
  return bytes
}

/** A store notice: `event: StoreUnwritable` or `StoreWritable`, and no `id`, so a client's cursor stays where it was. */
const encodeStoreNotice = (notice: StoreNotice): Uint8Array =>
  utf8.encode(Sse.encoder.write({ _tag: "Event", id: undefined, event: notice._tag, data: JSON.stringify(notice) }))

const encodeReset = (reset: Reset): Uint8Array =>
  utf8.encode(Sse.encoder.write({ _tag: "Event", id: String(reset.seq), event: "reset", data: JSON.stringify(reset) }))

const sequenceNumber = /^\d+$/

/**
 * Where the client resumes: after `Last-Event-ID` if it sent one, else after
 * `?since=`; `undefined`: from now on.
 */
export const cursorOf = (
  request: HttpServerRequest.HttpServerRequest,
  since: string | undefined
): Effect.Effect<number | undefined, BadRequest> => {
  const header = request.headers["last-event-id"]
  const given = header !== undefined && header.trim() !== ""
    ? { name: "Last-Event-ID", value: header.trim() }
    : since !== undefined
    ? { name: "since", value: since.trim() }
    : undefined
  if (given === undefined) return Effect.succeed(undefined)
  const value = Number(given.value)
  return sequenceNumber.test(given.value) && Number.isSafeInteger(value)
    ? Effect.succeed(value)
    : Effect.fail(badRequest(`Parameter '${given.name}' expects a sequence number (an integer, 0 or more)`))
}

interface Opened {
  /** The stream's first message. */
  readonly first: Uint8Array
  readonly events: Stream.Stream<JobEvent, EventsOverflow>
}

/** A snapshot and a subscription from its seq: the `reset` that replaces an expired cursor. */
const resetFrom = (state: HttpStateShape, oldest: number): Effect.Effect<Opened, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { capacity } = state.streams
    while (true) {
      const snapshot = yield* state.snapshot
      // Only an event published between the two (with no event log at all) can make this fail: try again.
      const subscribed = yield* Effect.result(state.jobs.subscribe({ capacity, since: snapshot.seq }))
      if (subscribed._tag === "Success") {
        return { first: encodeReset({ oldest, seq: snapshot.seq, jobs: snapshot.jobs }), events: subscribed.success }
      }
    }
  })

/** The oldest sequence number the engine still keeps (the next one's when it keeps none). */
const oldestKept = (state: HttpStateShape): Effect.Effect<number, never, Scope.Scope> =>
  // No event has sequence number 0, so resuming after -1 always finds something gone, and says what is kept.
  Effect.match(state.jobs.subscribe({ capacity: 1, since: -1 }), {
    onFailure: (expired) => expired.oldest,
    onSuccess: () => 1
  })

const open = (state: HttpStateShape, since: number | undefined): Effect.Effect<Opened, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { jobs } = state
    const { capacity } = state.streams
    if (since === undefined) return { first: opening, events: yield* jobs.subscribe({ capacity }) }
    const current = (yield* jobs.snapshot).seq
    // A cursor ahead of the server is from another run of it: everything since then is unknown.
    if (since > current) return yield* resetFrom(state, yield* Effect.scoped(oldestKept(state)))
    const subscribed = yield* Effect.result(jobs.subscribe({ capacity, since }))
    if (subscribed._tag === "Success") return { first: opening, events: subscribed.success }
    return yield* resetFrom(state, subscribed.failure.oldest)
  })

/** Bytes for the writer, and how many events they hold. */
interface Chunk {
  readonly bytes: Uint8Array
  readonly events: number
}

/**
 * The body of one event stream. A producer fiber takes the subscription's
 * events as they come (the engine never waits for it) and queues their text
 * for the writer; what is queued and not yet taken by the writer is what the
 * client is behind. Past `eventBuffer` events the client is cut off: the
 * request's fiber, which is the writer, is interrupted, which closes the
 * connection even while the writer waits for a client that does not read.
 */
const body = (
  state: HttpStateShape,
  since: number | undefined,
  requestFiber: Fiber.Fiber<unknown, unknown>
): Stream.Stream<Uint8Array> =>
  Stream.unwrap(Effect.gen(function*() {
    const { capacity } = state.streams
    // Unbounded, but the producer never lets more than `capacity` events wait in it.
    const out = yield* Queue.unbounded<Chunk, Cause.Done>()
    let behind = 0
    const send = (bytes: Uint8Array, events: number) => {
      behind += events
      Queue.offerUnsafe(out, { bytes, events })
    }
    const opened = yield* open(state, since)
    send(opened.first, 0)

    const cutOff = (why: string) =>
      Effect.andThen(
        Effect.logWarning(`event stream closed: ${why}`),
        Effect.sync(() => requestFiber.interruptUnsafe())
      )
    const tooSlow = cutOff(`the client fell more than ${capacity} events behind`)
    // While it runs, a stopping server waits for it to end, and cuts it off if it does not.
    const active: ActiveStream = {
      ended: yield* Deferred.make<void>(),
      cutOff: cutOff("the server stopped and the client did not take the last events")
    }
    state.activeStreams.add(active)
    yield* Effect.addFinalizer(() =>
      Effect.andThen(Effect.sync(() => state.activeStreams.delete(active)), Deferred.succeed(active.ended, undefined))
    )

    // The last message, then the end.
    const finish = Effect.suspend(() => {
      send(shutdown, 0)
      return Queue.end(out)
    })
    const deliver = opened.events.pipe(
      Stream.runForEachArray((events) =>
        Effect.suspend(() => {
          if (behind + events.length > capacity) return Effect.andThen(tooSlow, Effect.interrupt)
          for (const event of events) send(encodeJobEvent(event), 1)
          return Effect.void
        })
      )
    )
    yield* deliver.pipe(
      Effect.matchCauseEffect({
        // The engine is closing: its log has ended.
        onSuccess: () => finish,
        // The engine cut the subscription off (its producer did not get to run in time).
        onFailure: (cause) => Cause.hasInterruptsOnly(cause) ? Effect.void : tooSlow
      }),
      Effect.raceFirst(Effect.andThen(Deferred.await(state.closing), finish)),
      Effect.forkScoped
    )
    // A durable store's notices, as they come: outside the log, so with no `id` to resume from.
    yield* Stream.runForEach(state.jobs.storeNotices, (notice) => Effect.sync(() => send(encodeStoreNotice(notice), 0))).pipe(
      Effect.forkScoped
    )
    // A comment when nothing else waits to be written: one is enough to keep the connection open.
    yield* Effect.sync(() => {
      if (Queue.sizeUnsafe(out) === 0) send(heartbeat, 0)
    }).pipe(
      Effect.delay(Duration.max(state.streams.heartbeat, Duration.millis(1))),
      Effect.forever,
      Effect.forkScoped
    )
    return Stream.fromQueue(out).pipe(
      Stream.map((chunk) => {
        behind -= chunk.events
        return chunk.bytes
      })
    )
  }))

/** The response of `GET /api/events`: the stream of events after `since`. */
export const eventsResponse = (
  state: HttpStateShape,
  since: number | undefined
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.withFiber((fiber) =>
    Effect.succeed(
      HttpServerResponse.stream(body(state, since, fiber), {
        contentType: "text/event-stream",
        // A stream holds its connection to the end: closing it then lets a stopping server finish at once.
        headers: { "cache-control": "no-cache", connection: "close" }
      })
    )
  )
