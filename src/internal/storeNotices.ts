/**
 * The fan-out of store notices (`StoreNotice.ts`) to whoever listens at the
 * moment: each listener has its own unbounded queue — a notice comes at most
 * twice per outage, so none can pile up — and its stream ends, after what it
 * had, when the engine closes. A listener that starts during an outage is
 * told of it first, so it never misses the state the store is in.
 * @internal
 */
import { Effect, Queue, Stream } from "effect"
import type * as Cause from "effect/Cause"
import type { StoreNotice } from "../StoreNotice.ts"

export class StoreNotices {
  private readonly listeners = new Set<Queue.Queue<StoreNotice, Cause.Done>>()
  private ended = false
  /** The outage under way, if any. */
  private outage: StoreNotice | undefined = undefined

  publish(notice: StoreNotice): void {
    this.outage = notice._tag === "StoreUnwritable" ? notice : undefined
    for (const queue of this.listeners) Queue.offerUnsafe(queue, notice)
  }

  /** The notices from when the stream starts: the outage under way first, if there is one. */
  readonly stream: Stream.Stream<StoreNotice> = Stream.unwrap(
    Effect.map(
      Effect.acquireRelease(
        Effect.tap(Queue.unbounded<StoreNotice, Cause.Done>(), (queue) =>
          Effect.sync(() => {
            if (this.outage !== undefined) Queue.offerUnsafe(queue, this.outage)
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
