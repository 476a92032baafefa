/**
 * `watch --http URL`: a server followed through its HTTP API, presented to
 * `watch` as the QMP client it otherwise reads, so the table and the plain
 * lines are the same.
 *
 * It lists the jobs (`GET /api/jobs`), then reads `GET /api/events` from the
 * listing's `seq`: status changes become `JOB_STATUS_CHANGE` events, the
 * other job events keep their kind (`Ready`, `Completed`, …), `shutdown`
 * becomes `SHUTDOWN`, and a `reset` (the watcher fell too far behind) becomes
 * the status changes that bring the table to the snapshot it carries.
 * `query-jobs` and `query-block-jobs` are answered from `GET /api/jobs`.
 */
import { Deferred, Effect, Exit, type Scope } from "effect"
import * as Sse from "effect/encoding/Sse"
import * as Qmp from "../Qmp.ts"
import { storeNoticeEvent } from "../qmp/events.ts"
import type { StoreNotice } from "../StoreNotice.ts"

/** What `watch` uses of a QMP client. */
export interface WatchSource {
  readonly execute: (command: string) => Effect.Effect<unknown, Qmp.QmpCommandError | Qmp.QmpClientError>
  /** Completes when the server has closed the event stream. */
  readonly closed: Effect.Effect<void>
}

interface JobRow {
  readonly id: string
  readonly type: string
  readonly status: string
  readonly currentProgress: number
  readonly totalProgress: number
  readonly speed: number
  readonly error?: string
}

interface Snapshot {
  readonly seq: number
  readonly jobs: ReadonlyArray<JobRow>
}

const timestampOf = (millis: number): Qmp.EventMessage["timestamp"] => ({
  seconds: Math.floor(millis / 1000),
  microseconds: (millis % 1000) * 1000
})

const statusChange = (id: string, status: string, millis: number): Qmp.EventMessage => ({
  event: "JOB_STATUS_CHANGE",
  data: { id, status },
  timestamp: timestampOf(millis)
})

/** Connects to the HTTP API at `url`; the event stream is read until the scope closes. */
export const connectHttp = (
  url: string,
  options: { readonly onEvent: (event: Qmp.EventMessage) => void }
): Effect.Effect<WatchSource, Qmp.QmpClientError, Scope.Scope> =>
  Effect.gen(function*() {
    const base = url.replace(/\/+$/, "")
    const unreachable = (error: unknown) =>
      new Qmp.QmpClientError({
        reason: `cannot reach the HTTP API at ${base}: ${
          error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error)
        }`
      })

    let latest: Snapshot | undefined
    const list = Effect.tryPromise({
      try: async (signal) => {
        const response = await fetch(`${base}/api/jobs`, { signal })
        const body = await response.json() as Snapshot & { readonly error?: { readonly desc: string } }
        if (!response.ok) throw new Error(body.error?.desc ?? `HTTP ${response.status}`)
        return body as Snapshot
      },
      catch: unreachable
    }).pipe(Effect.tap((snapshot) => Effect.sync(() => void (latest = snapshot))))

    const first = yield* list
    // Ids the table may hold: a reset removes those its snapshot no longer has.
    const known = new Set(first.jobs.map((job) => job.id))
    const closed = yield* Deferred.make<void>()
    const abort = new AbortController()
    yield* Effect.addFinalizer(() => Effect.sync(() => abort.abort()))

    const onMessage = (message: Sse.AnyEvent) => {
      if (message._tag !== "Event") return
      const data = JSON.parse(message.data) as Record<string, unknown>
      if (message.event === "StatusChange") {
        const id = String(data.id)
        if (data.status === "null") known.delete(id)
        else known.add(id)
        options.onEvent(statusChange(id, String(data.status), Number(data.timestamp)))
      } else if (message.event === "shutdown") {
        options.onEvent({ event: "SHUTDOWN", data: { reason: "server stopping" }, timestamp: timestampOf(Date.now()) })
      } else if (message.event === "StoreUnwritable" || message.event === "StoreWritable") {
        const notice = storeNoticeEvent(data as unknown as StoreNotice)
        options.onEvent({ ...notice, timestamp: timestampOf(Number(data.timestamp)) })
      } else if (message.event === "reset") {
        const now = Date.now()
        const jobs = data.jobs as ReadonlyArray<JobRow>
        const present = new Set(jobs.map((job) => job.id))
        for (const id of known) if (!present.has(id)) options.onEvent(statusChange(id, "null", now))
        known.clear()
        for (const job of jobs) {
          known.add(job.id)
          options.onEvent(statusChange(job.id, job.status, now))
        }
      } else {
        const event: Qmp.EventMessage = {
          event: message.event,
          data: { id: data.id, ...(typeof data.error === "string" ? { error: data.error } : {}) },
          timestamp: timestampOf(Number(data.timestamp))
        }
        options.onEvent(event)
      }
    }

    const response = yield* Effect.tryPromise({
      try: () => fetch(`${base}/api/events?since=${first.seq}`, { signal: abort.signal }),
      catch: unreachable
    })
    if (!response.ok || response.body === null) {
      return yield* new Qmp.QmpClientError({ reason: `the HTTP API at ${base} refused the event stream (${response.status})` })
    }
    const parser = Sse.makeParser(onMessage)
    const body = response.body
    // Read in the background; the end of the body (or of the connection) is the end of the watch.
    void (async () => {
      const decoder = new TextDecoder()
      try {
        for await (const chunk of body) parser.feed(decoder.decode(chunk, { stream: true }))
      } catch {
        // The connection was reset, or the watch stopped.
      }
      Deferred.doneUnsafe(closed, Exit.void)
    })()

    return {
      execute: (command) => {
        if (command === "query-jobs") {
          return Effect.map(list, (snapshot) =>
            snapshot.jobs.map((job) => ({
              id: job.id,
              type: job.type,
              status: job.status,
              "current-progress": job.currentProgress,
              "total-progress": job.totalProgress,
              ...(job.error === undefined ? {} : { error: job.error })
            })))
        }
        if (command === "query-block-jobs") {
          // The rate limits of the listing `query-jobs` just read.
          return Effect.succeed((latest?.jobs ?? []).map((job) => ({ device: job.id, speed: job.speed })))
        }
        return Effect.fail(new Qmp.QmpCommandError({ errorClass: "CommandNotFound", desc: `${command} is not available over HTTP` }))
      },
      closed: Deferred.await(closed)
    }
  })
