import { Clock, Console, Effect, Layer, Schema, Stream } from "effect"
import { JobDriver, Jobs, JobTxn } from "../src/index.ts"

// A driver: the job type "count", which counts ticks of 10 ms of running time,
// with its parameters and its callbacks.
const Count = JobDriver.make({
  type: "count",
  params: Schema.Struct({ to: Schema.Int }),
  make: (params, job) =>
    Effect.sync(() => {
      let due = 0 // when the current tick is over
      let pausedAt = 0
      return {
        run: Effect.gen(function*() {
          yield* job.setRemaining(params.to)
          for (let i = 0; i < params.to; i++) {
            let now = yield* Clock.currentTimeMillis
            due = now + 10
            // A pause cuts `sleep` short (the job parks at once): sleep on until
            // the whole tick is over, and only then count it.
            while (now < due) {
              yield* job.sleep(due - now) // a pause point: honours pause and cancel
              now = yield* Clock.currentTimeMillis
            }
            yield* job.update(1)
          }
        }),
        // Around each stay at a pause point: the time spent paused is no part of a tick.
        pause: Effect.map(Clock.currentTimeMillis, (now) => {
          pausedAt = now
        }),
        resume: Effect.map(Clock.currentTimeMillis, (now) => {
          due += now - pausedAt
        }),
        commit: Console.log(`${job.id}: done, make the result visible`),
        abort: Console.log(`${job.id}: failed or cancelled, undo`)
      }
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
  const outcome = yield* jobs.awaitOutcome(job) // { _tag: "Cancelled" }
  yield* jobs.awaitDelivered // the reader runs in its own fiber: let it print every event
  return outcome
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
export const main = Effect.all([Effect.scoped(pauseResumeCancel), twoInOneTransaction]).pipe(
  Effect.provide(JobsLive)
)
