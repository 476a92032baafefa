/**
 * The lease's heartbeats keep to the clock: a renewal that takes long does
 * not push the next one back, and one that is overdue goes at once.
 */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect } from "effect"
import { TestClock } from "effect/testing"
import { heartbeats } from "../../src/store/lease.ts"

describe("lease heartbeats", () => {
  it.effect("a slow renewal does not delay the next beat; an overdue beat goes at once, once", () =>
    Effect.gen(function*() {
      const started: Array<number> = []
      // Each renewal takes 1.5 s of the clock: longer than the beat (1 s) itself.
      const renew = Effect.andThen(
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => started.push(now))),
        Effect.sleep("1500 millis")
      )
      yield* Effect.forkScoped(heartbeats(renew, { ttl: 5_000, heartbeat: 1_000 }))
      for (let i = 0; i < 60; i++) yield* TestClock.adjust("100 millis")
      // Due at 1 s, 2 s, 3 s, …: each overdue one starts as soon as the one before has finished.
      assert.deepStrictEqual(started, [1_000, 2_500, 4_000, 5_500])
    }))
})
