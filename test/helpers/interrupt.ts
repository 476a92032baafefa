/**
 * Interrupting a caller part-way, and waiting for the engine without ever
 * hanging the test: the two tools of the interruption tests.
 */
import { Data, Effect, type Exit, Fiber, Option, Scheduler } from "effect"

/**
 * Runs `effect` in a fiber of its own and interrupts it once it has had `turns`
 * turns of the scheduler (the fiber starts at once, which is its first turn).
 * Give the caller a small `References.MaxOpsBeforeYield` so that a turn is a few
 * operations: then every `turns` from 1 up stops it at another point.
 * Returns the fiber and whether it had already ended when it was interrupted.
 */
export const interruptAfter = <A, E>(
  effect: Effect.Effect<A, E>,
  turns: number
): Effect.Effect<{ readonly fiber: Fiber.Fiber<A, E>; readonly endedFirst: boolean }> =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(effect, { startImmediately: true })
    for (let i = 1; i < turns; i++) yield* Effect.yieldNow
    const endedFirst = fiber.pollUnsafe() !== undefined
    fiber.interruptUnsafe()
    return { fiber, endedFirst }
  })

/**
 * Runs `effect` so that its own fiber yields to the scheduler every `opsPerTurn`
 * operations (a turn), whatever the scheduling around it, while the fibers it
 * forks (a job's fiber, say) keep the scheduling of the fiber that runs this —
 * with or without `PreventSchedulerYield`. So a caller can be interrupted in the
 * middle of its work without the rest of the world running any differently.
 */
export const yieldingCaller = <A, E, R>(effect: Effect.Effect<A, E, R>, opsPerTurn: number): Effect.Effect<A, E, R> =>
  Effect.withFiber((caller) => {
    const base = caller.getRef(Scheduler.Scheduler)
    const prevented = caller.getRef(Scheduler.PreventSchedulerYield)
    const scheduler: Scheduler.Scheduler = {
      executionMode: base.executionMode,
      shouldYield: (fiber) =>
        fiber === caller ? fiber.currentOpCount >= opsPerTurn : !prevented && base.shouldYield(fiber),
      makeDispatcher: () => base.makeDispatcher()
    }
    return effect.pipe(
      Effect.provideService(Scheduler.PreventSchedulerYield, false),
      Effect.provideService(Scheduler.Scheduler, scheduler)
    )
  })

/** Something that should have finished did not within the real-time bound: the engine is stuck. */
export class Stuck extends Data.TaggedError("Stuck")<{ readonly what: string }> {
  override get message() {
    return `${this.what} did not finish (stuck)`
  }
}

/**
 * Waits for `fiber` for at most `millis` of real time. The fiber is not
 * interrupted on time-out (it may be stuck in an uninterruptible region, and
 * interrupting it would wait for it): it is left behind, and `Stuck` names `what`.
 */
export const awaitBounded = <A, E>(
  what: string,
  fiber: Fiber.Fiber<A, E>,
  millis: number
): Effect.Effect<Exit.Exit<A, E>, Stuck> =>
  Effect.flatMap(
    Effect.timeoutOption(Fiber.await(fiber), millis),
    (exit) => Option.isNone(exit) ? Effect.fail(new Stuck({ what })) : Effect.succeed(exit.value)
  )

/**
 * Runs `effect` in a detached fiber and waits for it for at most `millis` of
 * real time (see `awaitBounded`). Needs the live clock.
 */
export const bounded = <A, E>(
  what: string,
  effect: Effect.Effect<A, E>,
  millis: number
): Effect.Effect<Exit.Exit<A, E>, Stuck> =>
  Effect.flatMap(Effect.forkDetach(effect, { startImmediately: true }), (fiber) => awaitBounded(what, fiber, millis))
