/**
 * `npm run tour`: a runnable tour of effect-jobs. A small driver ("transfer") moves
 * a number of chunks, one per tick of the real clock; three jobs run at once,
 * one is paused and resumed, one is cancelled, one converges to READY and is
 * completed. Every event is printed, in the order things happen.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer, Schema, Stream } from "effect"
import { type JobEvent, JobDriver, Jobs } from "../src/index.ts"

/**
 * Prints a line once the event reader has printed every event published so far.
 * The reader runs in a fiber of its own, so without the wait a line printed
 * here could come before the events that led to it.
 */
const say = (jobs: Jobs.JobsService, line: string) => Effect.andThen(jobs.awaitDelivered, Console.log(line))

const Transfer = JobDriver.make({
  type: "transfer",
  params: Schema.Struct({ chunks: Schema.Int, tickMillis: Schema.Int, waitForComplete: Schema.Boolean }),
  make: (params, job) =>
    Effect.gen(function*() {
      const jobs = yield* Jobs.Jobs // JobDriver.layer provides it
      let completeRequested = false
      return {
        run: Effect.gen(function*() {
          yield* job.setRemaining(params.chunks)
          for (let i = 0; i < params.chunks; i++) {
            yield* job.update(1) // move one chunk: the unit of work
            yield* job.sleep(params.tickMillis) // pacing, and a pause point (a pause cuts it short)
          }
          if (params.waitForComplete) {
            yield* job.transitionToReady
            while (!completeRequested) yield* job.sleep(params.tickMillis)
          }
        }),
        complete: Effect.andThen(Effect.sync(() => {
          completeRequested = true
        }), job.enter),
        commit: say(jobs, `  [${job.id}] commit: make the transfer visible`),
        abort: say(jobs, `  [${job.id}] abort: throw the partial transfer away`)
      }
    })
})

const JobsLive = JobDriver.layer(Transfer).pipe(Layer.provideMerge(Jobs.layer))

const describeEvent = (event: JobEvent.JobEvent) =>
  event._tag === "StatusChange"
    ? `${event.id.padEnd(8)} → ${event.status}`
    : `${event.id.padEnd(8)} ${event._tag.toUpperCase()} ${JSON.stringify(event)}`

const program = Effect.gen(function*() {
  const jobs = yield* Jobs.Jobs
  const events = yield* jobs.subscribe()
  yield* Effect.forkScoped(Stream.runForEach(events, (event) => Console.log(describeEvent(event))), {
    startImmediately: true
  })

  const copy = yield* jobs.run({ type: "transfer", id: "copy", params: { chunks: 10, tickMillis: 20, waitForComplete: false } })
  const doomed = yield* jobs.run({ type: "transfer", id: "doomed", params: { chunks: 50, tickMillis: 20, waitForComplete: false } })
  const mirror = yield* jobs.run({ type: "transfer", id: "mirror", params: { chunks: 5, tickMillis: 20, waitForComplete: true } })

  yield* jobs.pause(copy)
  yield* jobs.awaitStatus(copy, "paused")
  yield* say(jobs, `  copy paused at ${copy.progress.current}/${copy.progress.total}; list: ${JSON.stringify(yield* jobs.list)}`)
  yield* jobs.resume(copy)

  yield* jobs.cancel(doomed, { force: true })
  yield* jobs.awaitStatus(mirror, "ready")
  yield* jobs.complete(mirror)

  for (const job of [copy, doomed, mirror]) {
    const outcome = yield* jobs.awaitOutcome(job)
    yield* say(jobs, `  ${job.id}: ${JSON.stringify(outcome)}`)
  }
})

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provide(JobsLive)))
