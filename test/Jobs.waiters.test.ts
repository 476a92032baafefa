/**
 * Waits that their callers give up on leave nothing behind. `awaitStatus`,
 * `finishSync`, `awaitOutcome`, `join`, `completeSync` and `cancelSync` each
 * register a waiter on the job; an interrupted wait must take its waiter away at
 * once — not when the status it waited for comes, which for a long-running job
 * may be never — and must take only its own: the waits nobody interrupted still
 * resolve, with the job's outcome.
 *
 * A wait is one step of `cancelSync` and `completeSync`: the cancel (or the
 * completion) is asked for first, and an interrupted caller only stops waiting.
 * So here the job is one the driver keeps running through a soft cancel and
 * through `complete` (the stepped driver's `forever` run, in READY), and an
 * interrupted `cancelSync` must leave the request in place, no waiter, and the
 * job running.
 *
 * Waiters are counted with the engine's `JobRecord.waiterCount`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer } from "effect"
import type { Job } from "../src/Job.ts"
import type { JobRecord } from "../src/internal/jobRecord.ts"
import { Jobs, type JobsService } from "../src/Jobs.ts"
import { SteppedLog, steppedLayer } from "./helpers/steppedDriver.ts"

/** Waiters registered on the job, of every kind. */
const waiterCount = (job: Job): number => (job as unknown as JobRecord).waiterCount

type Wait = "awaitStatus" | "finishSync" | "awaitOutcome" | "join" | "completeSync" | "cancelSync"

const wait = (jobs: JobsService, job: Job, kind: Wait): Effect.Effect<unknown, unknown> => {
  switch (kind) {
    case "awaitStatus":
      return jobs.awaitStatus(job, "concluded")
    case "finishSync":
      return jobs.finishSync(job)
    case "awaitOutcome":
      return jobs.awaitOutcome(job)
    case "join":
      return jobs.join(job)
    case "completeSync":
      return jobs.completeSync(job)
    case "cancelSync":
      return jobs.cancelSync(job) // soft: the driver keeps the job running
  }
}

/** A job that runs until a force cancel, READY (so `complete` is accepted, and ignored), soft cancels kept soft. */
const longRunning = (jobs: JobsService, id: string) =>
  Effect.tap(
    jobs.run({ type: "stepped", id, params: { run: "forever", converge: true, softCancelAlways: true, steps: 0 } }),
    (job) => jobs.awaitStatus(job, "ready")
  )

/**
 * Starts the wait in a fiber (it registers its waiter before the fiber first
 * suspends), then interrupts it. Fails unless the wait was really waiting.
 */
const interruptedWait = (jobs: JobsService, job: Job, kind: Wait, n: number) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.forkDetach(wait(jobs, job, kind), { startImmediately: true })
    if (fiber.pollUnsafe() !== undefined) {
      return assert.fail(`wait #${n} (${kind}) did not wait: ${String(fiber.pollUnsafe())}`)
    }
    yield* Fiber.interrupt(fiber)
    const exit = fiber.pollUnsafe()
    if (exit === undefined || !Exit.isFailure(exit) || !Cause.hasInterruptsOnly(exit.cause)) {
      return assert.fail(`wait #${n} (${kind}) was not interrupted: ${String(exit)}`)
    }
  })

const jobsOf = Effect.map(Layer.build(steppedLayer), (context) => ({
  jobs: Context.get(context, Jobs),
  log: Context.get(context, SteppedLog)
}))

describe("abandoned waits", () => {
  it.effect("100,000 interrupted waits of every kind on one long-running job leave no waiter", () =>
    Effect.gen(function*() {
      const { jobs, log } = yield* jobsOf
      const job = yield* longRunning(jobs, "long")
      assert.strictEqual(waiterCount(job), 0)

      // First every kind but cancelSync: after a cancel request, `complete` is refused before any wait.
      const beforeCancel: ReadonlyArray<Wait> = ["awaitStatus", "finishSync", "awaitOutcome", "join", "completeSync"]
      for (let n = 0; n < 50_000; n++) yield* interruptedWait(jobs, job, beforeCancel[n % beforeCancel.length]!, n)
      assert.strictEqual(waiterCount(job), 0, "waiters left by 50,000 interrupted waits (no cancelSync among them)")

      const withCancel: ReadonlyArray<Wait> = ["awaitStatus", "finishSync", "awaitOutcome", "join", "cancelSync"]
      for (let n = 50_000; n < 100_000; n++) yield* interruptedWait(jobs, job, withCancel[n % withCancel.length]!, n)
      assert.strictEqual(waiterCount(job), 0, "waiters left by 100,000 interrupted waits")

      // The requests made before the waits stood; the job runs on.
      assert.strictEqual(log.finished("long", "complete"), 10_000)
      assert.strictEqual(log.finished("long", "cancel"), 10_000)
      assert.isTrue(job.cancelRequested)
      assert.strictEqual(job.status, "ready")
    }).pipe(Effect.scoped), 60_000)

  it.effect("an interrupted wait takes away its own waiter only: the others resolve with the outcome", () =>
    Effect.gen(function*() {
      const { jobs } = yield* jobsOf
      const job = yield* longRunning(jobs, "long")
      const kinds: ReadonlyArray<Wait> = ["awaitStatus", "finishSync", "awaitOutcome", "join", "completeSync"]
      const kept: Array<[Wait, Fiber.Fiber<unknown, unknown>]> = []
      for (let n = 0; n < 1_000; n++) {
        const kind = kinds[n % kinds.length]!
        const fiber = yield* Effect.forkDetach(wait(jobs, job, kind), { startImmediately: true })
        // Every seventh wait is kept; the others are interrupted as soon as they wait.
        if (n % 7 === 0) kept.push([kind, fiber])
        else yield* Fiber.interrupt(fiber)
        assert.strictEqual(waiterCount(job), kept.length, `after wait #${n}`)
      }
      // A soft cancel with a wait kept, and one interrupted: the request stands either way.
      kept.push(["cancelSync", yield* Effect.forkDetach(wait(jobs, job, "cancelSync"), { startImmediately: true })])
      yield* Fiber.interrupt(yield* Effect.forkDetach(wait(jobs, job, "cancelSync"), { startImmediately: true }))
      assert.strictEqual(waiterCount(job), kept.length)
      assert.isTrue(kept.every(([, fiber]) => fiber.pollUnsafe() === undefined), "a kept wait ended early")

      // A force cancel ends the job; every kept wait resolves as its kind says.
      yield* jobs.cancel(job, { force: true })
      for (const [kind, fiber] of kept) {
        const exit = yield* Fiber.await(fiber)
        switch (kind) {
          case "awaitStatus":
            assert.isTrue(Exit.isSuccess(exit), `${kind}: ${String(exit)}`)
            break
          case "join": {
            const error = Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined
            assert.strictEqual(
              error?._tag === "Some" ? (error.value as { readonly _tag: string })._tag : undefined,
              "JobCancelled",
              `join of a cancelled job: ${String(exit)}`
            )
            break
          }
          default:
            assert.deepStrictEqual(exit, Exit.succeed({ _tag: "Cancelled" }), kind)
        }
      }
      assert.strictEqual(waiterCount(job), 0)
    }).pipe(Effect.scoped))
})
