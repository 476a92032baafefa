/**
 * The job fibers still running, counted. The engine waits, when it closes,
 * until none is left. A count rather than a set of fibers: a short job then
 * costs two additions instead of a hash-table entry made and removed.
 * @internal
 */
import { Deferred, Effect, Exit } from "effect"

export class FiberCount {
  private running = 0
  private none: Deferred.Deferred<void> | undefined = undefined

  get size(): number {
    return this.running
  }

  /** A job fiber begins. */
  started(): void {
    this.running++
  }

  /** A job fiber is in its last step. */
  ended(): void {
    if (--this.running === 0 && this.none !== undefined) {
      const none = this.none
      this.none = undefined
      Deferred.doneUnsafe(none, Exit.void)
    }
  }

  /** Waits until no job fiber is running. */
  readonly awaitNone: Effect.Effect<void> = Effect.suspend(() =>
    this.running === 0 ? Effect.void : Deferred.await(this.none ??= Deferred.makeUnsafe<void>())
  )
}
