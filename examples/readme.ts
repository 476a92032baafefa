import { Console, Effect, Layer, Schema, Stream } from "effect"
import { JobDriver, Jobs, JobTxn } from "../src/index.ts"

// A driver: the job type "count", with its parameters and its callbacks.
const Count = JobDriver.make({
  type: "count",
  params: Schema.Struct({ to: Schema.Int }),
  make: (params, job) =>
    Effect.succeed({
      run: Effect.gen(function*() {
        yield* job.setRemaining(params.to)
        for (let i = 0; i < params.to; i++) {
          yield* job.sleep("10 millis") // a pause point: honours pause and cancel
          yield* job.update(1)
        }
      }),
      commit: Console.log(`${job.id}: done, make the result visible`),
      abort: Console.log(`${job.id}: failed or cancelled, undo`)
    })
})

// Provide it with a layer, next to the Jobs service.
export const JobsLive = JobDriver.layer(Count).pipe(Layer.provideMerge(Jobs.layer))

export const pauseResumeCancel = Effect.gen(function*() {
  const jobs = yield* Jobs.Jobs
  const events = yield* jobs.subscribe() // every event from now on
  yield* Effect.forkScoped(Stream.runForEach(events, (e) => Console.log(e)))

  const job = yield* jobs.run({ type: "count", id: "count-1", params: { to: 50 } })
  yield* jobs.pause(job)
  yield* jobs.awaitStatus(job, "paused") // no polling
  yield* jobs.resume(job)
  yield* jobs.cancel(job, { force: true })
  return yield* jobs.awaitOutcome(job) // { _tag: "Cancelled" }
})

// Jobs that must succeed or fail together share a transaction: create every
// member, then start them.
export const twoInOneTransaction = Effect.gen(function*() {
  const jobs = yield* Jobs.Jobs
  const txn = yield* JobTxn.make
  const a = yield* jobs.create({ type: "count", id: "a", params: { to: 3 }, txn })
  const b = yield* jobs.create({ type: "count", id: "b", params: { to: 5 }, txn })
  yield* jobs.start(a)
  yield* jobs.start(b)
  return yield* JobTxn.awaitOutcome(txn) // { _tag: "Committed" } — or every member aborted
})

// Effect.runPromise(main) runs both.
export const main = Effect.all([pauseResumeCancel, twoInOneTransaction]).pipe(
  Effect.scoped,
  Effect.provide(JobsLive)
)
