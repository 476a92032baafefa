/**
 * The cost of a pause point when no pause is requested: a loop whose body is
 * one `Effect.sync` counter increment, run plain, with one `handle.pausePoint`
 * per iteration, with one `Ref.get` per iteration, and with one progress
 * report (`handle.update`) per iteration. All three loops run as
 * the `run` of a real job, written the same way (an `Effect.gen` `for` loop, as
 * a driver's run loop is), and time themselves from inside.
 */
import { Effect, Ref, Schema } from "effect"
import * as JobDriver from "../src/JobDriver.ts"
import type { JobHandle } from "../src/JobHandle.ts"
import * as Jobs from "../src/Jobs.ts"
import { collectGarbage } from "./heap.ts"
import { elapsedNs, now, progress, round } from "./measure.ts"

const modes = ["plain", "pausePoint", "refGet", "update"] as const
type Mode = typeof modes[number]

const LoopParams = Schema.Struct({ mode: Schema.Literals(modes), iterations: Schema.Int })

/**
 * One loop per mode, each its own function so that no loop's type feedback is
 * shared with another's. Each returns the counter so the work is observable.
 */
const loops: { readonly [M in Mode]: (n: number, handle: JobHandle, ref: Ref.Ref<number>) => Effect.Effect<number> } = {
  plain: (n) =>
    Effect.gen(function*() {
      let counter = 0
      const increment = Effect.sync(() => {
        counter++
      })
      for (let i = 0; i < n; i++) {
        yield* increment
      }
      return counter
    }),
  pausePoint: (n, handle) =>
    Effect.gen(function*() {
      let counter = 0
      const increment = Effect.sync(() => {
        counter++
      })
      const pausePoint = handle.pausePoint
      for (let i = 0; i < n; i++) {
        yield* increment
        yield* pausePoint
      }
      return counter
    }),
  refGet: (n, _handle, ref) =>
    Effect.gen(function*() {
      let counter = 0
      const increment = Effect.sync(() => {
        counter++
      })
      const get = Ref.get(ref)
      for (let i = 0; i < n; i++) {
        yield* increment
        yield* get
      }
      return counter
    }),
  // As a copy loop reports progress: a new `update` per iteration, with that iteration's amount.
  update: (n, handle) =>
    Effect.gen(function*() {
      let counter = 0
      const increment = Effect.sync(() => {
        counter++
      })
      for (let i = 0; i < n; i++) {
        yield* increment
        yield* handle.update(1)
      }
      return counter
    })
}

/** A driver whose `run` is the timed loop; it reports the loop's nanoseconds to `record`. */
const loopDriver = (record: (id: string, ns: number) => void) =>
  JobDriver.make({
    type: "loop",
    params: LoopParams,
    make: (params, handle) =>
      Effect.gen(function*() {
        const ref = yield* Ref.make(0)
        const loop = loops[params.mode](params.iterations, handle, ref)
        return {
          run: Effect.gen(function*() {
            const start = now()
            const counted = yield* loop
            const ns = elapsedNs(start)
            if (counted !== params.iterations) return yield* Effect.die(new Error("loop miscounted"))
            record(handle.id!, ns)
          })
        }
      })
  })

export interface PausePointOptions {
  readonly iterations: number
  readonly repetitions: number
  readonly warmupIterations: number
}

export const pausePoint = (options: PausePointOptions) =>
  Effect.gen(function*() {
    const timings = new Map<string, number>()
    const jobs = yield* Jobs.Jobs
    yield* Effect.orDie(jobs.register(loopDriver((id, ns) => timings.set(id, ns))))
    let sequence = 0
    const runLoop = (mode: Mode, iterations: number) =>
      Effect.gen(function*() {
        const id = `loop-${sequence++}`
        const job = yield* Effect.orDie(jobs.run({ type: "loop", id, params: { mode, iterations } }))
        const outcome = yield* Effect.orDie(jobs.awaitOutcome(job))
        if (outcome._tag !== "Succeeded") return yield* Effect.die(new Error(`loop job ended ${outcome._tag}`))
        return timings.get(id)!
      })
    progress(`pausePoint: warm-up (${options.warmupIterations} iterations per mode)`)
    for (const mode of modes) yield* runLoop(mode, options.warmupIterations)
    const best: Record<Mode, number> = { plain: Infinity, pausePoint: Infinity, refGet: Infinity, update: Infinity }
    for (let r = 0; r < options.repetitions; r++) {
      // Rotate the order so that no mode always runs right after the same other one.
      for (let k = 0; k < modes.length; k++) {
        const mode = modes[(r + k) % modes.length]!
        yield* Effect.promise(collectGarbage)
        const ns = yield* runLoop(mode, options.iterations)
        best[mode] = Math.min(best[mode], ns)
        progress(`pausePoint ${r + 1}/${options.repetitions} ${mode}: ${round(ns / options.iterations, 2)} ns/iteration`)
      }
    }
    const perIteration = (mode: Mode) => best[mode] / options.iterations
    const addedPausePoint = perIteration("pausePoint") - perIteration("plain")
    const addedRefGet = perIteration("refGet") - perIteration("plain")
    const addedUpdate = perIteration("update") - perIteration("plain")
    return {
      method: `Three loops of ${options.iterations} iterations, each the run of a real job (custom driver that ` +
        `captures its JobHandle; no pause requested): an Effect.gen for-loop doing \`yield* increment\` ` +
        `(increment = Effect.sync(() => { counter++ })), plus \`yield* handle.pausePoint\` or ` +
        `\`yield* Ref.get(ref)\` (both built once, outside the loop) after it. Each loop times itself with ` +
        `process.hrtime.bigint inside run. Best of ${options.repetitions} repetitions per mode (modes rotated, ` +
        `full GC before each), after a ${options.warmupIterations}-iteration warm-up of each mode.`,
      iterations: options.iterations,
      nsPerIteration: {
        plain: round(perIteration("plain"), 2),
        pausePoint: round(perIteration("pausePoint"), 2),
        refGet: round(perIteration("refGet"), 2),
        update: round(perIteration("update"), 2)
      },
      addedNsPerIteration: {
        pausePoint: round(addedPausePoint, 2),
        refGet: round(addedRefGet, 2),
        update: round(addedUpdate, 2)
      },
      ratio: round(addedPausePoint / addedRefGet, 2),
      ratioOf: "added ns of pausePoint / added ns of Ref.get",
      target: "pausePoint adds no more than Ref.get (ratio <= 1)",
      meetsTarget: addedPausePoint <= addedRefGet,
      update: {
        method: "`yield* handle.update(1)` per iteration (a new update each time, as a copy loop reports each " +
          "chunk), in the same loop shape; the figure is what it adds to the plain loop.",
        addedNs: round(addedUpdate, 2),
        target: "<= 20 ns",
        meetsTarget: addedUpdate <= 20
      }
    }
  }).pipe(Effect.provide(Jobs.layer))
