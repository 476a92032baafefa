/**
 * Effects that `yield*` runs in place. Inside `Effect.gen`, `yield* effect`
 * asks the effect for an iterator; an Effect's own iterator hands the effect to
 * the fiber's run loop and resumes the generator afterwards. For the handle's
 * hottest calls (a pause point with no pause requested, a progress update) that
 * round trip costs more than the work, so their effects carry an iterator of
 * their own: it does the synchronous work right in the generator, and only hands
 * over to the run loop what really has to wait.
 *
 * Run any other way (`Effect.andThen`, `pipe`, `runPromise`), they are ordinary
 * Effects with the same meaning.
 * @internal
 */
import type { Effect } from "effect"

const done: IteratorReturnResult<void> = { done: true, value: undefined }

/** An iterator that is over at once: the generator goes on without a step of the run loop. */
export const finished: Iterator<never, void> = { next: () => done }

/** Gives `effect` the iterator `iterate` (which must mean what running `effect` means). */
export const withInlineStep = <A>(effect: Effect.Effect<A>, iterate: () => Iterator<unknown, A>): Effect.Effect<A> => {
  ;(effect as { [Symbol.iterator]: () => Iterator<unknown, A> })[Symbol.iterator] = iterate
  return effect
}
