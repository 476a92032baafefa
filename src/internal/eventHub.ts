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
 *
 * The hub is also the engine's event log: it gives every event its sequence
 * number and timestamp, and keeps the last `retained` events in a ring, so a
 * subscriber can start after any retained sequence number: the replay and the
 * live events are handed over in one synchronous step, with no gap and no
 * duplicate. The log opens when it is first read (a subscription or a
 * snapshot); until then no event is built at all, since nobody can ask for one.
 *
 * Every subscription counts the events it was given and those its reader has
 * come back for more after (`processed`), so `awaitDelivered` can wait until
 * each reader has dealt with everything published so far: the way to end a
 * program without losing the tail of a forked event reader.
 *
 * With a durable store the hub is gated (`gate`): `publish` numbers an event
 * and hands it to the store's writer, and `deliver` — once the store has it —
 * keeps it in the log and gives it to the subscribers. So no reader ever sees
 * an event the store could lose.
 * @internal
 */
import { Cause, Effect, Exit, Queue, Stream } from "effect"
import type * as Scope from "effect/Scope"
import { CursorExpired, EventsOverflow } from "../JobError.ts"
import type { JobEvent, Unstamped } from "../JobEvent.ts"

/** One subscription: its buffer, and how far its reader has got. */
class Subscriber {
  readonly queue: Queue.Queue<JobEvent, EventsOverflow | Cause.Done>
  /** Events up to this sequence number are not for it (it started after them, or had them replayed). */
  after = 0
  /** Events offered to it. */
  published = 0
  /** Events its reader has taken. */
  handedOut = 0
  /** Events its reader has taken and come back for more after (or taken synchronously). */
  processed = 0
  constructor(queue: Queue.Queue<JobEvent, EventsOverflow | Cause.Done>) {
    this.queue = queue
  }
}

/** An `awaitDelivered` call: what each subscriber still has to process. */
interface DeliveryWait {
  readonly targets: Map<Subscriber, number>
  readonly resume: () => void
}

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

/**
 * A `Drain` over a queue of events (a hub subscriber, or a stream's events put in a queue).
 * `onTaken` hears how many events each read took.
 */
export const drainQueue = (
  queue: Queue.Dequeue<JobEvent, EventsOverflow | Cause.Done>,
  onTaken?: (count: number) => void
): Drain => ({
  takeAll: () => {
    const events: Array<JobEvent> = []
    const done = (drained: Drained): Drained => {
      if (onTaken !== undefined) onTaken(events.length)
      return drained
    }
    while (true) {
      const taken = Queue.takeUnsafe(queue)
      if (taken === undefined) return done({ events, end: undefined })
      if (Exit.isSuccess(taken)) {
        events.push(taken.value)
        continue
      }
      const error = Cause.findErrorOption(taken.cause)
      return done({ events, end: error._tag === "Some" && error.value instanceof EventsOverflow ? error.value : "ended" })
    }
  },
  available: Effect.ignore(Queue.peek(queue))
})

/** The streams `subscribe` made, with their queues' drains (weakly: a dropped stream is forgotten). */
const drains = new WeakMap<object, Drain>()

/** The synchronous reader of a stream that `EventHub.subscribe` returned; `undefined` for any other stream. */
export const drainOf = (events: Stream.Stream<JobEvent, EventsOverflow>): Drain | undefined => drains.get(events)

export interface EventHubOptions {
  /** Events a subscriber may fall behind before it is cut off. */
  readonly capacity: number
  /** Events the log keeps for subscribers that start from a sequence number (0 keeps none). */
  readonly retained: number
  /** The engine's clock, in milliseconds. */
  readonly now: () => number
  /** Called when a subscriber is cut off for falling behind (for the metrics). */
  readonly onOverflow?: (() => void) | undefined
  /** The sequence number of the last event published before (a store's, after a restart). */
  readonly lastSeq?: number | undefined
  /** Events published before, oldest first (a store's, after a restart): the log starts with them. */
  readonly retainedBefore?: ReadonlyArray<JobEvent> | undefined
}

export class EventHub {
  private readonly subscribers = new Set<Subscriber>()
  private readonly deliveryWaits = new Set<DeliveryWait>()
  /** The last `retained` events, oldest at `ringStart`. */
  private readonly ring: Array<JobEvent> = []
  private ringStart = 0
  /** The sequence number of the last event published (0: none yet). */
  private lastSeq = 0
  /** The sequence number of the last event delivered (kept and handed out): behind `lastSeq` while gated. */
  private lastDelivered = 0
  /** Takes every published event instead of delivering it; it calls `deliver` once the event is durable. */
  gate: ((event: JobEvent) => void) | undefined = undefined

  readonly defaultCapacity: number
  readonly retained: number
  private readonly now: () => number
  private readonly onOverflow: (() => void) | undefined
  constructor(options: EventHubOptions) {
    this.defaultCapacity = options.capacity
    this.retained = Math.max(0, Math.floor(options.retained))
    this.now = options.now
    this.onOverflow = options.onOverflow
    this.lastSeq = this.lastDelivered = options.lastSeq ?? 0
    for (const event of options.retainedBefore ?? []) this.keep(event)
    // A restarted log has a past a client may resume from.
    if (options.lastSeq !== undefined && options.lastSeq > 0) this.opened = true
  }

  /**
   * The log keeps events from the first time it is read — a subscription or a
   * snapshot (`openLog`). Before that nobody can hold a sequence number to
   * resume from, so there is nothing to keep them for.
   */
  private opened = false

  /** Whether anyone listens, or the log keeps events: lets the engine skip building events nobody reads. */
  get active(): boolean {
    return this.subscribers.size > 0 || (this.opened && this.retained > 0) || this.gate !== undefined
  }

  /** Someone reads the log (a snapshot's `seq` is a cursor): from now on it keeps events. */
  openLog(): void {
    this.opened = true
  }

  /** The sequence number of the last event published (0 before the first). */
  get seq(): number {
    return this.lastSeq
  }

  /** The oldest sequence number still retained (the next one's when the log is empty). */
  get oldest(): number {
    return this.ring.length === 0 ? this.lastDelivered + 1 : this.ring[this.ringStart]!.seq
  }

  /** Gives `unstamped` its place in the log; then delivers it, or hands it to the gate. */
  publish(unstamped: Unstamped): void {
    const event = unstamped as JobEvent & { seq: number; timestamp: number }
    event.seq = ++this.lastSeq
    event.timestamp = this.now()
    if (this.gate !== undefined) this.gate(event)
    else this.deliverOne(event)
  }

  /** Events the gate has made durable, in publication order: kept, and handed to every subscriber. */
  deliver(events: ReadonlyArray<JobEvent>): void {
    for (const event of events) this.deliverOne(event)
  }

  private keep(event: JobEvent): void {
    this.lastDelivered = event.seq
    if (this.retained > 0) {
      if (this.ring.length < this.retained) this.ring.push(event)
      else {
        this.ring[this.ringStart] = event
        this.ringStart = (this.ringStart + 1) % this.retained
      }
    }
  }

  private deliverOne(event: JobEvent): void {
    this.keep(event)
    for (const subscriber of this.subscribers) {
      if (event.seq <= subscriber.after) continue
      const queue = subscriber.queue
      if (Queue.offerUnsafe(queue, event)) subscriber.published++
      else {
        this.subscribers.delete(subscriber)
        Queue.failCauseUnsafe(queue, Cause.fail(new EventsOverflow({ capacity: queue.capacity })))
        this.forget(subscriber)
        this.onOverflow?.()
      }
    }
  }

  /**
   * Waits until every current subscriber's reader has processed every event
   * published before this call: taken it and come back for more (a stream
   * reader), or taken it synchronously (`drainOf`). A subscription that ends
   * (its scope closes, it overflows, the hub ends) counts as done. A
   * subscription nobody reads holds the wait up.
   */
  awaitDelivered(): Effect.Effect<void> {
    return Effect.callback<void>((resume) => {
      const targets = new Map<Subscriber, number>()
      for (const subscriber of this.subscribers) {
        if (subscriber.processed < subscriber.published) targets.set(subscriber, subscriber.published)
      }
      if (targets.size === 0) return resume(Effect.void)
      const wait: DeliveryWait = { targets, resume: () => resume(Effect.void) }
      this.deliveryWaits.add(wait)
      return Effect.sync(() => {
        this.deliveryWaits.delete(wait)
      })
    })
  }

  /** The reader of `subscriber` has got this far: settles the waits it was holding up. */
  private progressed(subscriber: Subscriber): void {
    for (const wait of this.deliveryWaits) {
      const target = wait.targets.get(subscriber)
      if (target === undefined || subscriber.processed < target) continue
      wait.targets.delete(subscriber)
      if (wait.targets.size === 0) {
        this.deliveryWaits.delete(wait)
        wait.resume()
      }
    }
  }

  /** `subscriber` is gone: no wait waits for it any more. */
  private forget(subscriber: Subscriber): void {
    subscriber.processed = Infinity
    this.progressed(subscriber)
  }

  /** The retained events after `since`, oldest first; `undefined` if some of them are gone. */
  private replayAfter(since: number): Array<JobEvent> | undefined {
    if (since >= this.lastDelivered) return []
    if (since + 1 < this.oldest) return undefined
    const out: Array<JobEvent> = []
    const count = this.ring.length
    for (let i = 0; i < count; i++) {
      const event = this.ring[(this.ringStart + i) % count]!
      if (event.seq > since) out.push(event)
    }
    return out
  }

  /**
   * A subscription from now on, or — with `since` — from the event after `since`:
   * the retained events after it first, then the live ones (fails with
   * `CursorExpired` if some events after `since` are no longer retained).
   */
  subscribe(
    capacity = this.defaultCapacity,
    since?: number
  ): Effect.Effect<Stream.Stream<JobEvent, EventsOverflow>, CursorExpired, Scope.Scope> {
    return Effect.acquireRelease(
      Effect.suspend(() => {
        this.opened = true
        const replay = since === undefined ? [] : this.replayAfter(since)
        if (replay === undefined) return Effect.fail(new CursorExpired({ since: since!, oldest: this.oldest }))
        // The replay comes on top of the subscriber's own allowance.
        return Effect.map(Queue.bounded<JobEvent, EventsOverflow | Cause.Done>(capacity + replay.length), (queue) => {
          // One synchronous step from the log to the live subscription: no event in between.
          const fresh = since === undefined ? [] : this.replayAfter(since)!
          const subscriber = new Subscriber(queue)
          // From now on: not the events published (and still at the gate) before it; from
          // `since`: not those up to it, nor those replayed.
          subscriber.after = since === undefined ? this.lastSeq : Math.max(since, this.lastDelivered)
          for (const event of fresh) Queue.offerUnsafe(queue, event)
          subscriber.published = fresh.length
          this.subscribers.add(subscriber)
          return subscriber
        })
      }),
      (subscriber) =>
        Effect.sync(() => {
          this.subscribers.delete(subscriber)
          this.forget(subscriber)
        }).pipe(Effect.andThen(Queue.shutdown(subscriber.queue)))
    ).pipe(Effect.map((subscriber) => {
      const { queue } = subscriber
      // Each pull first records that the reader is done with what it took before.
      const pull = Effect.suspend(() => {
        if (subscriber.processed < subscriber.handedOut) {
          subscriber.processed = subscriber.handedOut
          this.progressed(subscriber)
        }
        return Effect.map(Queue.takeAll(queue), (events) => {
          subscriber.handedOut += events.length
          return events
        })
      })
      const stream = Stream.fromPull(Effect.succeed(pull)) as Stream.Stream<JobEvent, EventsOverflow>
      drains.set(
        stream,
        drainQueue(queue, (count) => {
          subscriber.handedOut += count
          subscriber.processed = subscriber.handedOut
          this.progressed(subscriber)
        })
      )
      return stream
    }))
  }

  /** Ends every subscriber's stream (after its buffered events): the engine is closing. */
  end(): void {
    for (const subscriber of this.subscribers) {
      Queue.endUnsafe(subscriber.queue)
      this.forget(subscriber)
    }
    this.subscribers.clear()
  }
}
