/**
 * Lifecycle cost: a no-op job going create → start → conclude → dismiss
 * (automatic finalize and dismiss), against forking and joining a bare fiber
 * running the same no-op Effect.
 */
import { Effect, Fiber, Schema } from "effect"
import type { Job } from "../src/Job.ts"
import * as JobDriver from "../src/JobDriver.ts"
import * as Jobs from "../src/Jobs.ts"
import { collectGarbage } from "./heap.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"

const NoopDriver = JobDriver.make({
  type: "noop",
  params: Schema.Struct({}),
  make: () => Effect.succeed({ run: Effect.void })
})

interface Phases {
  /** jobs.create of every job of every batch. */
  create: number
  /** jobs.start of every job: the job runs, concludes and is dismissed in its own fiber. */
  start: number
  /** jobs.awaitOutcome of every job. */
  awaitOutcome: number
  /** Jobs already dismissed when their `start` returned. */
  dismissedInsideStart: number
}

/**
 * `count` jobs in batches of `batch`: create every job of a batch, start each,
 * then await each outcome. Returns the nanoseconds spent in each phase.
 */
const engineRound = (jobs: Jobs.JobsService, count: number, batch: number) =>
  Effect.gen(function*() {
    const phases: Phases = { create: 0, start: 0, awaitOutcome: 0, dismissedInsideStart: 0 }
    const created: Array<Job> = new Array(batch)
    for (let base = 0; base < count; base += batch) {
      const size = Math.min(batch, count - base)
      let t = now()
      for (let i = 0; i < size; i++) {
        created[i] = yield* Effect.orDie(jobs.create({ type: "noop", id: `j${base + i}` }))
      }
      phases.create += elapsedNs(t)
      t = now()
      for (let i = 0; i < size; i++) yield* Effect.orDie(jobs.start(created[i]!))
      phases.start += elapsedNs(t)
      for (let i = 0; i < size; i++) if (created[i]!.status === "null") phases.dismissedInsideStart++
      t = now()
      for (let i = 0; i < size; i++) {
        const outcome = yield* Effect.orDie(jobs.awaitOutcome(created[i]!))
        if (outcome._tag !== "Succeeded") return yield* Effect.die(new Error(`no-op job ended ${outcome._tag}`))
      }
      phases.awaitOutcome += elapsedNs(t)
    }
    const left = yield* jobs.list
    if (left.length > 0) return yield* Effect.die(new Error(`${left.length} jobs were not dismissed`))
    return phases
  })

/** The same shape with bare fibers: fork every fiber of a batch, then join each. */
const baselineRound = (count: number, batch: number) =>
  Effect.gen(function*() {
    const fibers: Array<Fiber.Fiber<void>> = new Array(batch)
    for (let base = 0; base < count; base += batch) {
      const size = Math.min(batch, count - base)
      for (let i = 0; i < size; i++) fibers[i] = yield* Effect.forkChild(Effect.void)
      for (let i = 0; i < size; i++) yield* Fiber.join(fibers[i]!)
    }
  })

const timed = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    yield* Effect.promise(collectGarbage)
    const start = now()
    const value = yield* effect
    return { ns: elapsedNs(start), value }
  })

export interface LifecycleOptions {
  readonly jobs: number
  readonly batch: number
  readonly rounds: number
  readonly warmupJobs: number
}

export const lifecycle = (options: LifecycleOptions) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* Effect.orDie(jobs.register(NoopDriver))
    const { batch, rounds } = options
    progress(`lifecycle: warm-up with ${options.warmupJobs} jobs and fibers`)
    yield* engineRound(jobs, options.warmupJobs, batch)
    yield* baselineRound(options.warmupJobs, batch)
    let engineBest = { ns: Infinity, phases: { create: 0, start: 0, awaitOutcome: 0, dismissedInsideStart: 0 } }
    let baselineBest = Infinity
    for (let r = 0; r < rounds; r++) {
      const engineRun = yield* timed(engineRound(jobs, options.jobs, batch))
      const baselineRun = yield* timed(baselineRound(options.jobs, batch))
      progress(
        `lifecycle round ${r + 1}/${rounds}: jobs ${round(engineRun.ns / 1e6)} ms, fibers ${
          round(baselineRun.ns / 1e6)
        } ms`
      )
      if (engineRun.ns < engineBest.ns) engineBest = { ns: engineRun.ns, phases: engineRun.value }
      baselineBest = Math.min(baselineBest, baselineRun.ns)
    }
    const perJob = (ns: number) => round(ns / options.jobs, 0)
    const engine = {
      totalMs: round(engineBest.ns / 1e6, 1),
      nsPerJob: perJob(engineBest.ns),
      nsPerJobByPhase: {
        create: perJob(engineBest.phases.create),
        startToDismissed: perJob(engineBest.phases.start),
        awaitOutcome: perJob(engineBest.phases.awaitOutcome)
      },
      dismissedInsideStart: engineBest.phases.dismissedInsideStart
    }
    const baseline = { totalMs: round(baselineBest / 1e6, 1), nsPerJob: perJob(baselineBest) }
    const ratio = round(engineBest.ns / baselineBest, 2)
    return {
      method: `${options.jobs} no-op jobs (driver run = Effect.void, registered with jobs.register, ids j0..j${
        options.jobs - 1
      }, auto-finalize and auto-dismiss, no subscriber) in batches of ${batch}: jobs.create for every job of a batch, then jobs.start on each (the job's ` +
        `fiber starts at once; dismissedInsideStart counts the jobs already concluded and dismissed when their ` +
        `start returned), then ` +
        `jobs.awaitOutcome on each (all must be Succeeded; the engine must be empty at the end); ` +
        `nsPerJobByPhase splits the engine's time between these three loops. ` +
        `Baseline: the same batches with Effect.forkChild(Effect.void) then Fiber.join on each. ` +
        `One warm-up of ${options.warmupJobs} of each, a full GC before every timed round, best of ${rounds} rounds ` +
        `(rounds alternate job and fiber runs).`,
      jobs: options.jobs,
      engine,
      baseline,
      ratio,
      target: "ratio <= 4",
      meetsTarget: ratio <= 4
    }
  }).pipe(Effect.provide(Jobs.layer))
