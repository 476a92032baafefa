/**
 * Fan-out of engine events to subscribers, each with its own bounded buffer.
 * Publishing never waits: a subscriber whose buffer is full is cut off with
 * `EventsOverflow` (after it drains what it had), so a slow reader can neither
 * block the engine nor make another subscriber miss an event.
 * @internal
 */
import { Cause, Effect, Queue, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { EventsOverflow } from "../JobError.ts"
import type { JobEvent } from "../JobEvent.ts"

type Subscriber = Queue.Queue<JobEvent, EventsOverflow | Cause.Done>

export class EventHub {
  private readonly subscribers = new Set<Subscriber>()

  readonly defaultCapacity: number
  constructor(defaultCapacity: number) {
    this.defaultCapacity = defaultCapacity
  }

  /** Whether anyone listens; lets the engine skip building events nobody reads. */
  get active(): boolean {
    return this.subscribers.size > 0
  }

  publish(event: JobEvent): void {
    for (const queue of this.subscribers) {
      if (!Queue.offerUnsafe(queue, event)) {
        this.subscribers.delete(queue)
        Queue.failCauseUnsafe(queue, Cause.fail(new EventsOverflow({ capacity: queue.capacity })))
      }
    }
  }

  subscribe(capacity = this.defaultCapacity): Effect.Effect<Stream.Stream<JobEvent, EventsOverflow>, never, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.tap(Queue.bounded<JobEvent, EventsOverflow | Cause.Done>(capacity), (queue) =>
        Effect.sync(() => {
          this.subscribers.add(queue)
        })),
      (queue) =>
        Effect.sync(() => {
          this.subscribers.delete(queue)
        }).pipe(Effect.andThen(Queue.shutdown(queue)))
    ).pipe(Effect.map((queue) => Stream.fromQueue(queue)))
  }

  /** Ends every subscriber's stream (after its buffered events): the engine is closing. */
  end(): void {
    for (const queue of this.subscribers) Queue.endUnsafe(queue)
    this.subscribers.clear()
  }
}
