/**
 * Milliseconds on the Effect `Clock`'s monotonic time: for durations
 * (timeouts, heartbeats, rates), which a wall clock set back or forward would
 * stretch or cut. Timestamps stay on the wall clock. The `TestClock` drives
 * both.
 * @internal
 */
import { Clock, Effect } from "effect"

export const monotonicMillisUnsafe = (clock: Clock.Clock): number => Number(clock.monotonicTimeNanosUnsafe()) / 1e6

export const monotonicMillis: Effect.Effect<number> = Effect.map(Clock.monotonicTimeNanos, (nanos) => Number(nanos) / 1e6)
