/**
 * `GET /api/progress`: the jobs' progress, rates and limits as they change,
 * as Server-Sent Events — what the event log does not carry (it has status
 * changes, not every chunk copied).
 *
 * Every `sampleInterval` (250 ms) the stream reads the job list, and sends
 * one `event: progress` whose `data` is `{seq, jobs}`: the views of the jobs
 * whose view (`GET /api/jobs`'s) changed since its last message — every job
 * in its first — read after event `seq`. Nothing changed, nothing sent. A
 * message carries state, not history: it has no `id`, a client that
 * reconnects starts afresh, and a client that reads slowly gets fewer, larger
 * differences (the stream reads the list only when its last message was
 * taken), never a backlog.
 *
 * A comment (`: heartbeat`) goes out when nothing else was sent for
 * `heartbeatInterval`; as the server stops, `event: shutdown`, and the end.
 */
import { Deferred, Duration, Effect, Schedule, Stream } from "effect"
import * as Sse from "effect/encoding/Sse"
import { HttpServerResponse } from "effect/http"
import { monotonicMillis } from "../internal/monotonicMillis.ts"
import type { HttpStateShape } from "./state.ts"

const utf8 = new TextEncoder()
const opening = utf8.encode(": effect-jobs progress\n\n")
const heartbeat = utf8.encode(": heartbeat\n\n")
const shutdown = utf8.encode(Sse.encoder.write({ _tag: "Event", id: undefined, event: "shutdown", data: "{}" }))

/** The body of one progress stream. */
const body = (state: HttpStateShape): Stream.Stream<Uint8Array> =>
  Stream.unwrap(Effect.gen(function*() {
    const interval = state.options.sampleInterval ?? "250 millis"
    const heartbeatMillis = Duration.toMillis(state.streams.heartbeat)
    // What this client was last sent of each job, as JSON: a job is sent again when its JSON differs.
    let sent = new Map<string, string>()
    // Monotonic: a wall clock set back would hold the heartbeat back as long.
    let lastWrite = yield* monotonicMillis
    const next: Effect.Effect<Uint8Array | undefined> = Effect.gen(function*() {
      const snapshot = yield* state.snapshot
      const now = yield* monotonicMillis
      const current = new Map<string, string>()
      const changed = []
      for (const job of snapshot.jobs) {
        const json = JSON.stringify(job)
        current.set(job.id, json)
        if (sent.get(job.id) !== json) changed.push(json)
      }
      sent = current
      if (changed.length === 0) {
        if (now - lastWrite < heartbeatMillis) return undefined
        lastWrite = now
        return heartbeat
      }
      lastWrite = now
      // The views are JSON already: joined, not encoded again.
      const data = `{"seq":${snapshot.seq},"jobs":[${changed.join(",")}]}`
      return utf8.encode(Sse.encoder.write({ _tag: "Event", id: undefined, event: "progress", data }))
    })
    // Pulled by the connection's writer: the list is read again only once the last message was taken.
    const ticks = Stream.fromEffectSchedule(next, Schedule.spaced(interval)).pipe(Stream.filter((bytes) => bytes !== undefined))
    return Stream.concat(
      Stream.make(opening),
      Stream.concat(
        ticks.pipe(Stream.interruptWhen(Deferred.await(state.closing))),
        Stream.make(shutdown)
      )
    )
  }))

/** The response of `GET /api/progress`. */
export const progressResponse = (state: HttpStateShape): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(body(state), {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", connection: "close" }
  })
