/**
 * Timeouts of one fixed length, for many connections, kept by one fiber.
 *
 * Every connection is timed from its start for the same length (the
 * negotiation timeout), so the deadlines come in the order they were set:
 * a queue, whose head is always the next to expire, and one fiber that
 * sleeps until then. A fiber and a timer per connection would cost more than
 * the rest of a waiting connection together, and a flood of connections is
 * what the timeout is there for. Cancelling drops the callback at once (so
 * the connection it holds can be collected); the entry itself leaves the
 * queue when its time comes. Time is the Effect `Clock`'s monotonic time, so
 * the `TestClock` drives it in tests.
 */
import { Clock, Deferred, Duration, Effect, Exit, type Scope } from "effect"
import { monotonicMillisUnsafe } from "../internal/monotonicMillis.ts"

/** One deadline: `cancel` before it passes and its callback never runs. */
export interface Deadline {
  readonly cancel: () => void
}

interface Entry {
  readonly at: number
  onExpire: (() => void) | undefined
}

export interface Deadlines {
  /** Calls `onExpire` once the length has passed from now, unless cancelled first. */
  readonly add: (onExpire: () => void) => Deadline
}

/** Deadlines `length` from when each is added; their fiber lives in the current scope. */
export const make = (length: Duration.Input): Effect.Effect<Deadlines, never, Scope.Scope> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    // Monotonic: a wall clock set back (or forward) does not stretch (or cut) a timeout.
    const now = () => monotonicMillisUnsafe(clock)
    const millis = Duration.toMillis(Duration.fromInputUnsafe(length))
    let queue: Array<Entry> = []
    /** Where the queue's live part begins (taken entries are cut off in bulk). */
    let head = 0
    /** Set while the fiber waits for a first deadline. */
    let added: Deferred.Deferred<void> | undefined = undefined

    const expireDue = (now: number) => {
      while (head < queue.length && queue[head]!.at <= now) {
        const entry = queue[head++]!
        const onExpire = entry.onExpire
        entry.onExpire = undefined
        onExpire?.()
      }
      if (head === queue.length) {
        queue = []
        head = 0
      } else if (head > 1024 && head * 2 > queue.length) {
        queue = queue.slice(head)
        head = 0
      }
    }

    yield* Effect.forkScoped(
      Effect.forever(Effect.suspend(() => {
        if (head === queue.length) {
          const wake = (added = Deferred.makeUnsafe<void>())
          return Deferred.await(wake)
        }
        const wait = queue[head]!.at - now()
        return wait > 0
          ? Effect.sleep(wait)
          : Effect.sync(() => expireDue(now()))
      })),
      { startImmediately: true }
    )

    return {
      add: (onExpire) => {
        const entry: Entry = { at: now() + millis, onExpire }
        queue.push(entry)
        const wake = added
        added = undefined
        if (wake !== undefined) Deferred.doneUnsafe(wake, Exit.void)
        return {
          cancel: () => {
            entry.onExpire = undefined
          }
        }
      }
    }
  })
