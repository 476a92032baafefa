/**
 * Calls made by the property tests' runs: each in a fiber of its own, with a
 * real-time watchdog (an operation that never finishes is a deadlock, and the
 * run fails with `Stuck`), and their results classified for the run's record.
 */
import { Cause, Data, Deferred, Effect, Exit, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"

/** An operation that did not finish within its watchdog's time: the engine is stuck. */
export class Stuck extends Data.TaggedError("Stuck")<{ readonly what: string }> {}

/** What a call still under way when `giveUp` came returns: its caller never heard back. */
export const cutBeforeReply = { _tag: "CutBeforeReply" } as const

/**
 * Runs `effect` in its own fiber and returns its exit. Almost every operation
 * finishes before the fiber first suspends; the watchdog (`stuckAfterMillis`
 * of real time) only matters for one that never would. With `giveUp`: a call
 * still waiting when it completes is over for its caller (a process that
 * died); its fiber is left to whatever closes the engine.
 */
export const guarded = <A, E>(
  what: string,
  effect: Effect.Effect<A, E>,
  options: { readonly stuckAfterMillis: number; readonly giveUp?: Deferred.Deferred<void> | undefined }
): Effect.Effect<Exit.Exit<A, E | typeof cutBeforeReply>, Stuck> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(effect, { startImmediately: true })
    const done = fiber.pollUnsafe()
    if (done !== undefined) return done
    const giveUp = options.giveUp
    const ended: Effect.Effect<Exit.Exit<A, E | typeof cutBeforeReply>> = giveUp === undefined
      ? Fiber.await(fiber)
      : Effect.raceFirst(Fiber.await(fiber), Effect.as(Deferred.await(giveUp), Exit.fail(cutBeforeReply)))
    const exit = yield* TestClock.withLive(Effect.timeoutOption(ended, options.stuckAfterMillis))
    if (Option.isNone(exit)) return yield* new Stuck({ what })
    return exit.value
  })

/** The result of a call: success, the tag of its typed error, or a defect. */
export const classify = (exit: Exit.Exit<unknown, unknown>): { readonly result: string; readonly defect?: string } => {
  if (Exit.isSuccess(exit)) return { result: "Success" }
  const fail = exit.cause.reasons.find(Cause.isFailReason)
  if (fail !== undefined) {
    const error = fail.error as { readonly _tag?: unknown }
    return { result: typeof error?._tag === "string" ? error._tag : String(fail.error) }
  }
  return { result: "Defect", defect: Cause.pretty(exit.cause) }
}
