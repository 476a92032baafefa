/**
 * A program that uses jobs, tested in docs/testing.md with the test kit's jobs
 * standing in for real ones: it runs one job and gives it a time limit.
 */
import { type Duration, Effect } from "effect"
import { Jobs } from "../src/index.ts"

/**
 * Runs a job and returns its outcome; a job still going after `limit` (time
 * spent paused included) is force-cancelled, and its outcome is `Cancelled`.
 */
export const runWithin = (options: Jobs.CreateOptions, limit: Duration.Input) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const job = yield* jobs.run(options)
    return yield* jobs.awaitOutcome(job).pipe(
      Effect.timeoutOrElse({
        duration: limit,
        // cancelSync makes no verb check: a job that is finishing right now is not an error
        orElse: () => Effect.andThen(jobs.cancelSync(job, { force: true }), jobs.awaitOutcome(job))
      })
    )
  })
