/**
 * A status watcher for latency samples: a consumer fiber reads `{ id, status }`
 * sightings from a stream (the engine's event subscription, or a bare queue)
 * and, when it reads the one a sample expects, stamps the time at once and
 * hands it to the sampling fiber.
 */
import { Deferred, Effect, Exit, type Scope, Stream } from "effect"
import { now } from "./measure.ts"

export interface Sighting {
  readonly id: string
  readonly status: string
}

interface Expectation extends Sighting {
  readonly seen: Deferred.Deferred<bigint>
}

export class Watcher {
  private expected: Expectation | undefined = undefined
  /** Why the consumer stopped, once it has: no sighting can come any more. */
  private stopped: string | undefined = undefined

  /** Call with every sighting, in the consumer fiber. */
  see(id: string, status: string): void {
    const at = now()
    const expected = this.expected
    if (expected !== undefined && expected.id === id && expected.status === status) {
      this.expected = undefined
      Deferred.doneUnsafe(expected.seen, Exit.succeed(at))
    }
  }

  /** Called once when the consumer ends: a pending or later expectation fails instead of hanging. */
  stop(reason: string): void {
    this.stopped = reason
    const expected = this.expected
    this.expected = undefined
    if (expected !== undefined) Deferred.doneUnsafe(expected.seen, Exit.die(new Error(reason)))
  }

  /** Arms the watcher for one sighting; the returned Effect waits for it and gives its time. */
  expect(id: string, status: string): Effect.Effect<bigint> {
    if (this.stopped !== undefined) return Effect.die(new Error(this.stopped))
    const seen = Deferred.makeUnsafe<bigint>()
    this.expected = { id, status, seen }
    return Deferred.await(seen)
  }

  /** Times `verb`: from just before it to the moment the consumer reads `{ id, status }`. */
  time<E>(id: string, status: string, verb: Effect.Effect<void, E>): Effect.Effect<number, E> {
    return Effect.suspend(() => {
      const seen = this.expect(id, status)
      const start = now()
      return Effect.andThen(verb, Effect.map(seen, (at) => Number(at - start)))
    })
  }

  /** Forks the consumer of `sightings`, which runs until the stream ends or the scope closes. */
  static consume<A, E>(
    stream: Stream.Stream<A, E>,
    toSighting: (a: A) => Sighting | undefined
  ): Effect.Effect<Watcher, never, Scope.Scope> {
    return Effect.gen(function*() {
      const watcher = new Watcher()
      const consumer = Stream.runForEach(stream, (a) =>
        Effect.sync(() => {
          const sighting = toSighting(a)
          if (sighting !== undefined) watcher.see(sighting.id, sighting.status)
        }))
      yield* Effect.forkScoped(
        Effect.onExit(consumer, (exit) =>
          Effect.sync(() =>
            watcher.stop(Exit.isSuccess(exit) ? "the watched stream ended" : `the watcher failed: ${exit.cause}`)
          )),
        { startImmediately: true }
      )
      return watcher
    })
  }
}
