/**
 * Latency of the pause and force-cancel verbs, from just before the verb to the
 * moment a subscriber reads the resulting status (PAUSED, CONCLUDED), for a busy
 * and for a sleeping job; and the same for the bare-Effect loops of
 * `subjects.ts`, whose watcher reads a queue instead of the engine's events.
 */
import { Effect, Queue, Stream } from "effect"
import * as Jobs from "../src/Jobs.ts"
import { progress, type LatencySummary, round, summarize } from "./measure.ts"
import { bareSubjects, engineSubjects, type StartSubject, type Subject, type SubjectKind, yieldEvery } from "./subjects.ts"
import { until } from "./until.ts"
import { type Sighting, Watcher } from "./watcher.ts"

/** Ready for a sample: a busy loop has made progress since now; a sleeping one sleeps. */
const settle = (subject: Subject, kind: SubjectKind) => {
  if (kind === "sleeping") return until(`${subject.id} to sleep`, () => subject.sleeping())
  const from = subject.progress()
  return until(`${subject.id} to work`, () => subject.progress() > from)
}

/** `samples` pause latencies of one long-lived subject (resumed after every sample, untimed). */
const pauseSeries = (start: StartSubject, watcher: Watcher, kind: SubjectKind, samples: number, warmup: number) =>
  Effect.gen(function*() {
    const id = `pause-${kind}`
    const subject = yield* start(id, kind)
    const latencies: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      yield* settle(subject, kind)
      const ns = yield* watcher.time(id, "paused", subject.pause())
      if (i >= warmup) latencies.push(ns)
      yield* watcher.time(id, "running", subject.resume())
    }
    yield* watcher.time(id, "concluded", subject.cancel())
    return summarize(latencies)
  })

/** `samples` force-cancel latencies, each of a fresh subject. */
const cancelSeries = (start: StartSubject, watcher: Watcher, kind: SubjectKind, samples: number, warmup: number) =>
  Effect.gen(function*() {
    const latencies: Array<number> = []
    for (let i = 0; i < warmup + samples; i++) {
      const id = `cancel-${kind}-${i}`
      const subject = yield* start(id, kind)
      yield* settle(subject, kind)
      const ns = yield* watcher.time(id, "concluded", subject.cancel())
      if (i >= warmup) latencies.push(ns)
    }
    return summarize(latencies)
  })

interface Figures {
  readonly busy: { readonly pause: LatencySummary; readonly cancelForce: LatencySummary }
  readonly sleeping: { readonly pause: LatencySummary; readonly cancelForce: LatencySummary }
}

const series = (label: string, start: StartSubject, watcher: Watcher, samples: number, warmup: number) =>
  Effect.gen(function*() {
    const run = (name: string, effect: Effect.Effect<LatencySummary>) =>
      Effect.tap(effect, (s) => Effect.sync(() => progress(`latency ${label} ${name}: p50 ${s.p50Us} µs, p99 ${s.p99Us} µs`)))
    const busyPause = yield* run("busy pause", pauseSeries(start, watcher, "busy", samples, warmup))
    const busyCancel = yield* run("busy cancel", cancelSeries(start, watcher, "busy", samples, warmup))
    const sleepingPause = yield* run("sleeping pause", pauseSeries(start, watcher, "sleeping", samples, warmup))
    const sleepingCancel = yield* run("sleeping cancel", cancelSeries(start, watcher, "sleeping", samples, warmup))
    const figures: Figures = {
      busy: { pause: busyPause, cancelForce: busyCancel },
      sleeping: { pause: sleepingPause, cancelForce: sleepingCancel }
    }
    return figures
  })

const engineSeries = (samples: number, warmup: number) =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const start = yield* engineSubjects(jobs)
    const events = yield* jobs.subscribe({ capacity: 1 << 16 })
    const watcher = yield* Watcher.consume(events, (event): Sighting | undefined =>
      event._tag === "StatusChange" ? event : undefined)
    return yield* series("jobs", start, watcher, samples, warmup)
  }).pipe(Effect.scoped, Effect.provide(Jobs.layer))

const bareSeries = (samples: number, warmup: number) =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<Sighting>(1 << 16)
    const watcher = yield* Watcher.consume(Stream.fromQueue(queue), (sighting) => sighting)
    const start = bareSubjects((id, status) => {
      Queue.offerUnsafe(queue, { id, status })
    })
    return yield* series("bare", start, watcher, samples, warmup)
  }).pipe(Effect.scoped)

export interface LatencyOptions {
  readonly samples: number
  readonly warmup: number
}

export const latency = (options: LatencyOptions) =>
  Effect.gen(function*() {
    const engine = yield* engineSeries(options.samples, options.warmup)
    const baseline = yield* bareSeries(options.samples, options.warmup)
    const ratio = (pick: (f: Figures) => LatencySummary) => round(pick(engine).p50Us / pick(baseline).p50Us, 2)
    const p50s = [engine.busy.pause, engine.busy.cancelForce, engine.sleeping.pause, engine.sleeping.cancelForce]
      .map((s) => s.p50Us)
    return {
      method: `Each sample: the watcher is armed, t0 = process.hrtime.bigint(), the verb runs (jobs.pause, or ` +
        `jobs.cancel with force), and t1 is stamped by a subscriber fiber (Stream.runForEach over ` +
        `jobs.subscribe()) the moment it reads the StatusChange to paused / concluded; latency = t1 - t0. ` +
        `Busy job: run loops on handle.update(1), handle.pausePoint, and Effect.yieldNow every ${yieldEvery} ` +
        `iterations; a sample starts once it has made progress. Sleeping job: run loops on ` +
        `handle.sleep("1 hour") on the real clock; a sample starts once it sleeps. Pause samples reuse one job ` +
        `(resumed, and seen running again, after each sample); cancel samples start a fresh job each (auto-dismiss). ` +
        `${options.samples} samples per figure after ${options.warmup} warm-up samples. Baseline: the same loops ` +
        `hand-rolled on bare Effect (flag + Deferred to park on, Deferred to cut the sleep short, ` +
        `fiber.interruptUnsafe to cancel), reporting paused/running/concluded through a Queue read by the same ` +
        `kind of watcher fiber. Ratios are engine p50 / baseline p50.`,
      engine,
      baseline,
      ratioP50: {
        busy: { pause: ratio((f) => f.busy.pause), cancelForce: ratio((f) => f.busy.cancelForce) },
        sleeping: { pause: ratio((f) => f.sleeping.pause), cancelForce: ratio((f) => f.sleeping.cancelForce) }
      },
      target: "engine p50 <= 100 µs for every figure",
      meetsTarget: p50s.every((p) => p <= 100)
    }
  })
