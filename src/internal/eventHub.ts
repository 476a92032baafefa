/**
 * Fan-out of engine events to subscribers, each with its own bounded buffer.
 * Publishing never waits: a subscriber whose buffer is full is cut off with
 * `EventsOverflow` (after it drains what it had), so a slow reader can neither
 * block the engine nor make another subscriber miss an event.
 *
 * A subscription can also be read without waiting (`drainOf`): a reader that
 * must hand out, at a given moment, every event published so far (the QMP
 * server, before each reply) takes them synchronously instead of pulling the
 * stream.
 * @internal
 */
import { Cause, Effect, Exit, Queue, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { EventsOverflow } from "../JobError.ts"
import type { JobEvent } from "../JobEvent.ts"

type Subscriber = Queue.Queue<JobEvent, EventsOverflow | Cause.Done>

/** What a synchronous read found: the events buffered, and whether the subscription ended after them. */
export interface Drained {
  readonly events: ReadonlyArray<JobEvent>
  /** The overflow that cut the subscription off, `"ended"` if the hub (or the stream) ended, else `undefined`. */
  readonly end: EventsOverflow | "ended" | undefined
}

/**
 * A subscription read without waiting. Use either this or the stream, not
 * both: each event goes to whichever takes it first.
 */
export interface Drain {
  /** Takes every event buffered now, in publication order. */
  readonly takeAll: () => Drained
  /** Waits until an event is buffered or the subscription has ended (takes nothing). */
  readonly available: Effect.Effect<void>
}

/** A `Drain` over a queue of events (a hub subscriber, or a stream's events put in a queue). */
export const drainQueue = (queue: Queue.Dequeue<JobEvent, EventsOverflow | Cause.Done>): Drain => ({
  takeAll: () => {
    const events: Array<JobEvent> = []
    while (true) {
      const taken = Queue.takeUnsafe(queue)
      if (taken === undefined) return { events, end: undefined }
      if (Exit.isSuccess(taken)) {
        events.push(taken.value)
        continue
      }
      const error = Cause.findErrorOption(taken.cause)
      return { events, end: error._tag === "Some" && error.value instanceof EventsOverflow ? error.value : "ended" }
    }
  },
  available: Effect.ignore(Queue.peek(queue))
})

/** The streams `subscribe` made, with their queues' drains (weakly: a dropped stream is forgotten). */
const drains = new WeakMap<object, Drain>()

/** The synchronous reader of a stream that `EventHub.subscribe` returned; `undefined` for any other stream. */
export const drainOf = (events: Stream.Stream<JobEvent, EventsOverflow>): Drain | undefined => drains.get(events)

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
    ).pipe(Effect.map((queue) => {
      const stream = Stream.fromQueue(queue)
      drains.set(stream, drainQueue(queue))
      return stream
    }))
  }

  /** Ends every subscriber's stream (after its buffered events): the engine is closing. */
  end(): void {
    for (const queue of this.subscribers) Queue.endUnsafe(queue)
    this.subscribers.clear()
  }
}
