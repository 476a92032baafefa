/**
 * `npm run tour`: a runnable tour of effect-jobs. A small driver ("transfer") moves
 * a number of chunks, one per tick of the real clock; three jobs run at once,
 * one is paused and resumed, one is cancelled, one converges to READY and is
 * completed. Every event is printed as it happens.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Fiber, Layer, Schema, Stream } from "effect"
import { JobDriver, Jobs } from "../src/index.ts"

const Transfer = JobDriver.make({
  type: "transfer",
  params: Schema.Struct({ chunks: Schema.Int, tickMillis: Schema.Int, waitForComplete: Schema.Boolean }),
  make: (params, job) =>
    Effect.sync(() => {
      let completeRequested = false
      return {
        run: Effect.gen(function*() {
          yield* job.setRemaining(params.chunks)
          for (let i = 0; i < params.chunks; i++) {
            yield* job.sleep(params.tickMillis) // honours pause and cancel
            yield* job.update(1)
          }
          if (params.waitForComplete) {
            yield* job.transitionToReady
            while (!completeRequested) yield* job.sleep(params.tickMillis)
          }
        }),
        complete: Effect.andThen(Effect.sync(() => {
          completeRequested = true
        }), job.enter),
        commit: Console.log(`  [${job.id}] commit: make the transfer visible`),
        abort: Console.log(`  [${job.id}] abort: throw the partial transfer away`)
      }
    })
})

const JobsLive = JobDriver.layer(Transfer).pipe(Layer.provideMerge(Jobs.layer))

const program = Effect.gen(function*() {
  const jobs = yield* Jobs.Jobs
  const events = yield* jobs.subscribe()
  let dismissed = 0
  const printer = yield* Effect.forkScoped(
    Stream.runForEach(
      Stream.takeUntil(events, (e) => e._tag === "StatusChange" && e.status === "null" && ++dismissed === 3),
      (event) =>
      Console.log(
        event._tag === "StatusChange"
          ? `${event.id.padEnd(8)} → ${event.status}`
          : `${event.id.padEnd(8)} ${event._tag.toUpperCase()} ${JSON.stringify(event)}`
        )
    ),
    { startImmediately: true }
  )

  const copy = yield* jobs.run({ type: "transfer", id: "copy", params: { chunks: 10, tickMillis: 20, waitForComplete: false } })
  const doomed = yield* jobs.run({ type: "transfer", id: "doomed", params: { chunks: 50, tickMillis: 20, waitForComplete: false } })
  const mirror = yield* jobs.run({ type: "transfer", id: "mirror", params: { chunks: 5, tickMillis: 20, waitForComplete: true } })

  yield* jobs.pause(copy)
  yield* jobs.awaitStatus(copy, "paused")
  yield* Console.log(`  copy paused at ${copy.progress.current}/${copy.progress.total}; list: ${JSON.stringify(yield* jobs.list)}`)
  yield* jobs.resume(copy)

  yield* jobs.cancel(doomed, { force: true })
  yield* jobs.awaitStatus(mirror, "ready")
  yield* jobs.complete(mirror)

  for (const job of [copy, doomed, mirror]) {
    yield* Console.log(`  ${job.id}: ${JSON.stringify(yield* jobs.awaitOutcome(job))}`)
  }
  yield* Fiber.join(printer)
})

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(JobsLive)))
