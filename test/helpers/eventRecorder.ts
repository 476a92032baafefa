/**
 * Records every engine event from the moment it is created, for assertions on
 * status histories and event order.
 */
import { Deferred, Effect, Fiber, Stream } from "effect"
import type { Scope } from "effect"
import type { JobEvent } from "../../src/JobEvent.ts"
import { Jobs } from "../../src/Jobs.ts"

export interface EventRecorder {
  readonly events: Array<JobEvent>
  /** The statuses of one job's StatusChange events, in order. */
  readonly statuses: (id: string) => Array<string>
  /** One job's events as short strings: statuses, and `READY`, `PENDING`, `COMPLETED[:error]`, `CANCELLED`. */
  readonly trace: (id: string) => Array<string>
  /** Waits until the job's trace has `entry` (as `trace` writes it) at least `times` times. */
  readonly until: (id: string, entry: string, times?: number) => Effect.Effect<void>
}

/**
 * One event as a short string: its status, or `READY`, `PENDING`, `CANCELLED`,
 * `COMPLETED`, and for a failed job `COMPLETED:<error>` (or `COMPLETED(error)`
 * when `errorText` is false).
 */
export const shortEvent = (e: JobEvent, errorText = true): string => {
  switch (e._tag) {
    case "StatusChange":
      return e.status
    case "Ready":
      return "READY"
    case "Pending":
      return "PENDING"
    case "Completed":
      return e.error === undefined ? "COMPLETED" : errorText ? `COMPLETED:${e.error}` : "COMPLETED(error)"
    case "Cancelled":
      return "CANCELLED"
  }
}

const short = (e: JobEvent): string => shortEvent(e)

export const recordEvents: Effect.Effect<EventRecorder, never, Jobs | Scope.Scope> = Effect.gen(function*() {
  const jobs = yield* Jobs
  const stream = yield* jobs.subscribe({ capacity: 100_000 })
  const events: Array<JobEvent> = []
  const waiters: Array<{ readonly id: string; readonly entry: string; readonly times: number; readonly done: Deferred.Deferred<void> }> = []
  const count = (id: string, entry: string) => events.filter((e) => e.id === id && short(e) === entry).length
  const check = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!
      if (count(w.id, w.entry) >= w.times) {
        waiters.splice(i, 1)
        Deferred.doneUnsafe(w.done, Effect.void)
      }
    }
  }
  const fiber = yield* Effect.forkScoped(
    Stream.runForEach(stream, (e) =>
      Effect.sync(() => {
        events.push(e)
        check()
      })),
    { startImmediately: true }
  )
  yield* Effect.addFinalizer(() => Fiber.interrupt(fiber))
  return {
    events,
    statuses: (id) => events.flatMap((e) => (e._tag === "StatusChange" && e.id === id ? [e.status] : [])),
    trace: (id) => events.filter((e) => e.id === id).map(short),
    until: (id, entry, times = 1) =>
      Effect.suspend(() => {
        if (count(id, entry) >= times) return Effect.void
        const done = Deferred.makeUnsafe<void>()
        waiters.push({ id, entry, times, done })
        return Deferred.await(done)
      })
  }
})

