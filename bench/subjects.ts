/**
 * What the latency and memory figures measure: a pausable, force-cancellable
 * loop, either busy (a unit of work and a pause point per iteration, a yield to
 * other fibers every `yieldEvery` iterations) or sleeping (a one-hour sleep on
 * the real clock, then a pause point, forever).
 *
 * Two implementations: jobs of the engine (drivers `busy` and `sleeper`), and
 * the baseline — the same loops hand-rolled on bare Effect (a flag, a Deferred
 * to park on, a Deferred to cut a sleep short, `interruptUnsafe` to cancel),
 * with no engine in between.
 */
import { Deferred, Duration, Effect, Exit, type Fiber, Schema } from "effect"
import type { Job } from "../src/Job.ts"
import * as JobDriver from "../src/JobDriver.ts"
import type { JobsService } from "../src/Jobs.ts"

export type SubjectKind = "busy" | "sleeping"

/**
 * One loop under test. Implementations are classes whose verbs are built on
 * demand, so that holding many subjects costs a small object each and the
 * memory figures measure the loops, not their wrappers.
 */
export interface Subject {
  readonly id: string
  pause(): Effect.Effect<void>
  resume(): Effect.Effect<void>
  /** A force cancel. */
  cancel(): Effect.Effect<void>
  /** Units of work done so far (busy loops). */
  progress(): number
  /** Waiting in its sleep: neither working nor parked. */
  sleeping(): boolean
}

export type StartSubject = (id: string, kind: SubjectKind) => Effect.Effect<Subject>

const oneHour = Duration.hours(1)

/** Iterations between two `Effect.yieldNow` of a busy loop. */
export const yieldEvery = 100

// ---------------------------------------------------------------------------
// Engine jobs
// ---------------------------------------------------------------------------

const BusyDriver = JobDriver.make({
  type: "busy",
  params: Schema.Struct({}),
  make: (_params, handle) =>
    Effect.succeed({
      run: Effect.gen(function*() {
        const work = handle.update(1)
        const pausePoint = handle.pausePoint
        for (let i = 1;; i++) {
          yield* work
          yield* pausePoint
          if (i % yieldEvery === 0) yield* Effect.yieldNow
        }
      })
    })
})

const SleeperDriver = JobDriver.make({
  type: "sleeper",
  params: Schema.Struct({}),
  make: (_params, handle) =>
    Effect.succeed({
      run: Effect.gen(function*() {
        const sleep = handle.sleep(oneHour)
        for (;;) yield* sleep
      })
    })
})

class EngineJob implements Subject {
  readonly jobs: JobsService
  readonly job: Job
  constructor(jobs: JobsService, job: Job) {
    this.jobs = jobs
    this.job = job
  }
  get id(): string {
    return this.job.id!
  }
  pause() {
    return Effect.orDie(this.jobs.pause(this.job))
  }
  resume() {
    return Effect.orDie(this.jobs.resume(this.job))
  }
  cancel() {
    return Effect.orDie(this.jobs.cancel(this.job, { force: true }))
  }
  progress() {
    return this.job.progress.current
  }
  sleeping() {
    return !this.job.busy && this.job.status === "running"
  }
}

/** Registers the `busy` and `sleeper` drivers and returns a starter of engine jobs. */
export const engineSubjects = (jobs: JobsService): Effect.Effect<StartSubject> =>
  Effect.gen(function*() {
    yield* Effect.orDie(jobs.register(BusyDriver))
    yield* Effect.orDie(jobs.register(SleeperDriver))
    return (id, kind) =>
      Effect.map(
        Effect.orDie(jobs.run({ type: kind === "busy" ? "busy" : "sleeper", id })),
        (job): Subject => new EngineJob(jobs, job)
      )
  })

// ---------------------------------------------------------------------------
// Bare Effect
// ---------------------------------------------------------------------------

class BareLoop implements Subject {
  pauseRequested = false
  /** Parked: completing it lets the loop go on. */
  gate: Deferred.Deferred<void> | undefined = undefined
  /** Sleeping: completing it cuts the sleep short. */
  wake: Deferred.Deferred<void> | undefined = undefined
  work = 0
  fiber: Fiber.Fiber<never> | undefined = undefined
  readonly id: string
  readonly notify: (id: string, status: string) => void
  constructor(id: string, notify: (id: string, status: string) => void) {
    this.id = id
    this.notify = notify
  }
  pause() {
    return Effect.sync(() => {
      this.pauseRequested = true
      const wake = this.wake
      if (wake !== undefined) {
        this.wake = undefined
        Deferred.doneUnsafe(wake, Exit.void)
      }
    })
  }
  resume() {
    return Effect.sync(() => {
      this.pauseRequested = false
      const gate = this.gate
      if (gate !== undefined) {
        this.gate = undefined
        Deferred.doneUnsafe(gate, Exit.void)
      }
    })
  }
  cancel() {
    return Effect.sync(() => this.fiber!.interruptUnsafe())
  }
  progress() {
    return this.work
  }
  sleeping() {
    return this.wake !== undefined
  }
}

const checkpoint = (loop: BareLoop): Effect.Effect<void> => {
  const park = Effect.suspend(() => {
    const gate = Deferred.makeUnsafe<void>()
    loop.gate = gate
    loop.notify(loop.id, "paused")
    return Effect.andThen(Deferred.await(gate), Effect.sync(() => loop.notify(loop.id, "running")))
  })
  return Effect.suspend(() => (loop.pauseRequested ? park : Effect.void))
}

const bareBusy = (loop: BareLoop): Effect.Effect<never> =>
  Effect.gen(function*() {
    const work = Effect.sync(() => {
      loop.work++
    })
    const pausePoint = checkpoint(loop)
    for (let i = 1;; i++) {
      yield* work
      yield* pausePoint
      if (i % yieldEvery === 0) yield* Effect.yieldNow
    }
  })

const bareSleeper = (loop: BareLoop): Effect.Effect<never> =>
  Effect.gen(function*() {
    const pausePoint = checkpoint(loop)
    const sleep = Effect.suspend(() => {
      if (loop.pauseRequested) return Effect.void
      const wake = Deferred.makeUnsafe<void>()
      loop.wake = wake
      return Effect.ensuring(
        Effect.raceFirst(Effect.sleep(oneHour), Deferred.await(wake)),
        Effect.sync(() => {
          loop.wake = undefined
        })
      )
    })
    for (;;) {
      yield* sleep
      yield* pausePoint
    }
  })

/** A starter of bare loops; `notify` gets every status they reach (paused, running, concluded). */
export const bareSubjects = (notify: (id: string, status: string) => void): StartSubject => (id, kind) =>
  Effect.suspend(() => {
    const loop = new BareLoop(id, notify)
    const body = kind === "busy" ? bareBusy(loop) : bareSleeper(loop)
    const concluded = Effect.sync(() => notify(id, "concluded"))
    return Effect.map(
      Effect.forkDetach(Effect.onExit(body, () => concluded), { startImmediately: true }),
      (fiber): Subject => {
        loop.fiber = fiber
        return loop
      }
    )
  })
