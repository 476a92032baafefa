/**
 * A harness wait: gives other fibers turns until a condition holds, and gives
 * up (with a defect naming what it waited for) instead of hanging the run.
 */
import { Effect } from "effect"

export const until = (what: string, ready: () => boolean, maxTurns = 1_000_000): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let turns = 0; !ready(); turns++) {
      if (turns >= maxTurns) return yield* Effect.die(new Error(`gave up waiting for ${what}`))
      yield* Effect.yieldNow
    }
  })
