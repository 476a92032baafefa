/**
 * QEMU's rate limiter for jobs, on the Effect `Clock` (so it is exact under
 * `TestClock`).
 *
 * Time is cut into slices of 100 ms. A slice may carry `quota` units, where
 * quota = max(speed × 100 ms / 1 s, 1) (whole units) and speed is the job's
 * current rate limit in units per second (0 = unlimited). A job records the
 * units it has processed; once a slice's quota is used up, the slice is
 * stretched to `start + (dispatched / quota) × 100 ms` and the job waits until
 * its end — so an overshoot (a chunk larger than what was left of the quota) is
 * allowed and paid back by a longer slice. A new slice starts only once the
 * clock is strictly past the current slice's end.
 *
 * Drivers use it per chunk: `processed(n)` after a chunk of `n` units, then
 * `throttle`, which sleeps through `JobHandle.sleep` (so a pause, a cancel or
 * `enter` cut it short) and re-computes its delay after every wake-up: the
 * speed may have changed meanwhile. `Jobs.setSpeed` wakes a job sleeping on its
 * timer when the new speed is 0 or higher than the old one (QEMU's rule); a
 * lower speed is applied when the job next computes its delay.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect } from "effect"
import type { JobHandle } from "./JobHandle.ts"

/**
 * The length of one slice, in nanoseconds (QEMU: `BLOCK_JOB_SLICE_TIME`, 100 ms).
 *
 * @since 0.1.0
 * @category constants
 */
export const sliceNanos = 100_000_000

/**
 * The accounting of the current slice. Times are nanoseconds on the Effect
 * `Clock`'s monotonic time.
 *
 * @since 0.1.0
 * @category models
 */
export interface State {
  readonly sliceStart: number
  readonly sliceEnd: number
  /** Units sent in the current slice. */
  readonly dispatched: number
}

/**
 * No slice yet: the first computation starts one.
 *
 * @since 0.1.0
 * @category constructors
 */
export const initial: State = { sliceStart: 0, sliceEnd: Number.NEGATIVE_INFINITY, dispatched: 0 }

/**
 * The units one slice may carry at `speed` units per second: 0 (unlimited) for
 * speed 0, otherwise max(⌊speed × slice / 1 s⌋, 1).
 *
 * @since 0.1.0
 * @category calculations
 */
export const quota = (speed: number): number =>
  speed <= 0 ? 0 : Math.max(Math.floor((speed * sliceNanos) / 1_000_000_000), 1)

/**
 * QEMU's `ratelimit_calculate_delay`: accounts `units` sent at `now` and
 * returns how long to wait (in nanoseconds) before sending more, with the new
 * state. Unlimited (speed 0): no wait, and the state is left as it is.
 *
 * @since 0.1.0
 * @category calculations
 */
export const calculateDelay = (
  state: State,
  speed: number,
  now: number,
  units: number
): readonly [delayNanos: number, state: State] => {
  const q = quota(speed)
  if (q === 0) return [0, state]
  // The previous (possibly stretched) slice is over: start a new one now.
  const current: State = now > state.sliceEnd
    ? { sliceStart: now, sliceEnd: now + sliceNanos, dispatched: 0 }
    : state
  const dispatched = current.dispatched + units
  if (dispatched < q) return [0, { ...current, dispatched }]
  // Quota used up: stretch the slice in proportion to what was sent, and wait for its end.
  const sliceEnd = current.sliceStart + Math.floor((dispatched / q) * sliceNanos)
  return [Math.max(sliceEnd - now, 0), { sliceStart: current.sliceStart, sliceEnd, dispatched }]
}

/**
 * QEMU's `ratelimit_sleep` for a job: computes the delay, sleeps through
 * `JobHandle.sleep` (cut short by a pause, `enter`, a speed increase or a
 * cancel; a zero sleep is a yield and a pause point), and computes again,
 * until the delay is 0 or the job is force-cancelled. Sleeps at least once.
 * Only for the job's own `run`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const sleep = (job: JobHandle, delayNanos: Effect.Effect<number>): Effect.Effect<void> =>
  Effect.gen(function*() {
    while (true) {
      const delay = yield* delayNanos
      yield* job.sleep(Duration.nanos(BigInt(delay)))
      if (delay === 0 || (yield* job.isCancelled)) return
    }
  })

/**
 * One job's limiter: the slice accounting, with the job's current speed read
 * at every computation.
 *
 * @since 0.1.0
 * @category models
 */
export interface RateLimiter {
  /** Records `units` processed now (QEMU: `ratelimit_processed_bytes`). */
  readonly processed: (units: number) => Effect.Effect<void>
  /** The wait, now, before more may be sent (the delay for 0 new units). */
  readonly delay: Effect.Effect<Duration.Duration>
  /**
   * QEMU's `ratelimit_sleep`: sleeps through `JobHandle.sleep` at least once
   * (a zero sleep is a yield and a pause point) and again, with the delay
   * re-computed, after every early wake-up, until the delay is 0 or the job is
   * force-cancelled. Only for the job's own `run`.
   */
  readonly throttle: Effect.Effect<void>
  /** The current accounting (for tests and diagnostics). */
  readonly state: Effect.Effect<State>
  /** The speed the limiter applies now: the job's (`JobHandle.speed`, units per second, 0 = unlimited). */
  readonly speed: Effect.Effect<number>
}

const now = Effect.map(Clock.monotonicTimeNanos, Number)

/**
 * A limiter for one job, reading the job's speed (`JobHandle.speed`) at every
 * computation: the speed the job was created with (`Jobs.create`'s `speed`)
 * until `Jobs.setSpeed` changes it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (job: JobHandle): Effect.Effect<RateLimiter> =>
  Effect.sync(() => {
    let state = initial
    const speed = job.speed
    const account = (units: number): Effect.Effect<number> =>
      Effect.flatMap(speed, (speed) =>
        Effect.map(now, (t) => {
          const [delay, next] = calculateDelay(state, speed, t, units)
          state = next
          return delay
        }))
    const throttle = sleep(job, account(0))
    return {
      processed: (units) => Effect.asVoid(account(units)),
      delay: Effect.map(account(0), (delay) => Duration.nanos(BigInt(delay))),
      throttle,
      state: Effect.sync(() => state),
      speed
    }
  })
