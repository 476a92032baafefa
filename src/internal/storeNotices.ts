/**
 * The fan-out of store notices (`StoreNotice.ts`) to whoever listens at the
 * moment: each listener has its own unbounded queue — a notice comes at most
 * twice per outage, so none can pile up — and its stream ends, after what it
 * had, when the engine closes.
 * @internal
 */
import { Effect, Queue, Stream } from "effect"
import type * as Cause from "effect/Cause"
import type { StoreNotice } from "../StoreNotice.ts"

export class StoreNotices {
  private readonly listeners = new Set<Queue.Queue<StoreNotice, Cause.Done>>()
  private ended = false

  publish(notice: StoreNotice): void {
    for (const queue of this.listeners) Queue.offerUnsafe(queue, notice)
  }

  /** The notices from when the stream starts. */
  readonly stream: Stream.Stream<StoreNotice> = Stream.unwrap(
    Effect.map(
      Effect.acquireRelease(
        Effect.tap(Queue.unbounded<StoreNotice, Cause.Done>(), (queue) =>
          Effect.sync(() => {
            if (this.ended) Queue.endUnsafe(queue)
            else this.listeners.add(queue)
          })),
        (queue) =>
          Effect.sync(() => {
            this.listeners.delete(queue)
          })
      ),
      Stream.fromQueue
    )
  )

  /** The engine closes: every stream ends. */
  end(): void {
    this.ended = true
    for (const queue of this.listeners) Queue.endUnsafe(queue)
    this.listeners.clear()
  }
}
