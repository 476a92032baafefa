/**
 * Pause holds, by example: a snapshot of a volume pauses every job that writes
 * to it, waits until each has stopped, takes the snapshot, and lets them go on.
 * docs/pause-holds.md walks through it.
 */
import { Effect } from "effect"
import { type Job, Jobs } from "../src/index.ts"

/** A job this program started, and the volume it writes to. */
export interface Writer {
  readonly job: Job.Job
  readonly volume: string
}

/**
 * Waits until a held job writes no more: parked at a pause point (PAUSED, or
 * STANDBY if it was READY), not started yet (it parks before its first step),
 * or done with `run`.
 */
const stopped = (jobs: Jobs.JobsService, job: Job.Job) =>
  Effect.suspend(() =>
    job.status === "created"
      ? Effect.void
      : Effect.asVoid(
        Effect.raceAll([jobs.awaitStatus(job, "paused"), jobs.awaitStatus(job, "standby"), jobs.finishSync(job)])
      )
  )

/**
 * Runs `snapshot` while every writer of `volume` is held paused. The holds
 * belong to this scope: when the snapshot ends — or fails, or is interrupted —
 * they are released, and each job goes on unless something else still pauses
 * it (its user, or another hold).
 */
export const whileVolumeQuiet = <A, E, R>(
  writers: ReadonlyArray<Writer>,
  volume: string,
  snapshot: Effect.Effect<A, E, R>
) =>
  Effect.scoped(Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const held = writers.filter((writer) => writer.volume === volume).map((writer) => writer.job)
    for (const job of held) yield* jobs.hold(job, `snapshot of ${volume}`)
    yield* Effect.forEach(held, (job) => stopped(jobs, job), { concurrency: "unbounded", discard: true })
    return yield* snapshot // nothing writes to the volume now
  }))
