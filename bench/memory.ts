/**
 * Heap per paused job: `count` sleeping jobs, all paused by the user and parked
 * at their pause point, measured after a full GC against the heap before they
 * were created; then every job is force-cancelled and the heap measured again.
 * Baseline: the same with the bare-Effect sleeping loops of `subjects.ts`.
 */
import { Effect } from "effect"
import * as Jobs from "../src/Jobs.ts"
import { settledHeapUsed } from "./heap.ts"
import { progress, round } from "./measure.ts"
import { bareSubjects, engineSubjects, type StartSubject, type Subject } from "./subjects.ts"
import { until } from "./until.ts"

interface HeapFigures {
  readonly bytesPerPausedJob: number
  readonly heapBeforeMB: number
  readonly heapPausedMB: number
  readonly heapAfterCancelMB: number
  /** What is left per job once every job is cancelled (≈ 0 when nothing leaks). */
  readonly retainedBytesPerJobAfterCancel: number
}

const mb = (bytes: number) => round(bytes / (1 << 20), 1)

/**
 * Starts `count` sleeping subjects, pauses each, waits until each reports
 * paused (`awaitPaused`), measures, then cancels each and waits until each
 * reports concluded (`awaitConcluded`).
 */
const measure = (
  label: string,
  count: number,
  start: StartSubject,
  awaitPaused: (subject: Subject) => Effect.Effect<void>,
  awaitConcluded: (subject: Subject) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const before = yield* Effect.promise(settledHeapUsed)
    const subjects: Array<Subject> = new Array(count)
    for (let i = 0; i < count; i++) subjects[i] = yield* start(`m${i}`, "sleeping")
    for (const subject of subjects) yield* subject.pause()
    for (const subject of subjects) yield* awaitPaused(subject)
    const paused = yield* Effect.promise(settledHeapUsed)
    progress(`memory ${label}: ${count} paused, ${round((paused - before) / count, 0)} bytes each`)
    for (const subject of subjects) yield* subject.cancel()
    for (const subject of subjects) yield* awaitConcluded(subject)
    subjects.length = 0
    const after = yield* Effect.promise(settledHeapUsed)
    const figures: HeapFigures = {
      bytesPerPausedJob: round((paused - before) / count, 0),
      heapBeforeMB: mb(before),
      heapPausedMB: mb(paused),
      heapAfterCancelMB: mb(after),
      retainedBytesPerJobAfterCancel: round((after - before) / count, 1)
    }
    return figures
  })

const engineMemory = (count: number) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const start = yield* engineSubjects(jobs)
    const figures = yield* measure(
      "jobs",
      count,
      start,
      (subject) => Effect.orDie(jobs.awaitStatus(subject.id, "paused")),
      // A job already dismissed is not found any more: it has concluded.
      (subject) => Effect.asVoid(Effect.catchTag(jobs.awaitOutcome(subject.id), "JobNotFound", () => Effect.void))
    )
    const left = (yield* jobs.list).length
    if (left > 0) return yield* Effect.die(new Error(`${left} jobs left after cancelling`))
    return figures
  }).pipe(Effect.provide(Jobs.layer))

const bareMemory = (count: number) =>
  Effect.suspend(() => {
    // The bare loops report their statuses here: a pending set per status awaited.
    const paused = new Set<string>()
    const concluded = new Set<string>()
    const start = bareSubjects((id, status) => {
      if (status === "paused") paused.add(id)
      else if (status === "concluded") concluded.add(id)
    })
    const waitFor = (set: Set<string>) => (subject: Subject) =>
      Effect.andThen(
        until(`${subject.id} to report`, () => set.has(subject.id)),
        Effect.sync(() => set.delete(subject.id))
      )
    return measure("bare", count, start, waitFor(paused), waitFor(concluded))
  })

export interface MemoryOptions {
  readonly jobs: number
}

export const memory = (options: MemoryOptions) =>
  Effect.gen(function*() {
    const engine = yield* engineMemory(options.jobs)
    const baseline = yield* bareMemory(options.jobs)
    const ratio = round(engine.bytesPerPausedJob / baseline.bytesPerPausedJob, 2)
    return {
      method: `${options.jobs} jobs of a driver whose run loops on handle.sleep("1 hour") (real clock), created and ` +
        `started with jobs.run, then jobs.pause on each, then jobs.awaitStatus(id, "paused") on each (all parked ` +
        `at their pause point). heapUsed after a forced full GC (V8 gc exposed at runtime) is compared with the ` +
        `heap before the first job was created; what the bench itself holds per job (an array slot and a small ` +
        `wrapper object with the job's reference, about 50 bytes) is included. Then jobs.cancel(force) on each, jobs.awaitOutcome on each, the engine must be empty, ` +
        `and the heap is measured again. Baseline: the same with ${options.jobs} bare-Effect sleeping loops ` +
        `(a detached fiber each, sleeping via raceFirst(sleep, Deferred), parked on its own Deferred when paused). ` +
        `Ratio is engine bytes / baseline bytes.`,
      jobs: options.jobs,
      engine,
      baseline,
      ratio,
      target: "engine bytesPerPausedJob <= 3072",
      meetsTarget: engine.bytesPerPausedJob <= 3072
    }
  })
