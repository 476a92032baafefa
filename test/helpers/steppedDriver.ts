/**
 * A driver for tests that interrupt callers part-way: every callback takes
 * `steps` scheduler turns (it yields that many times) before it is done, so a
 * verb that calls one does real multi-step work, and a caller interrupted in the
 * middle leaves it unfinished. Each callback is recorded twice — when it starts
 * and when it finishes — so a test can tell a callback that ran to its end from
 * one that was cut short.
 *
 * How `run` goes (`run` parameter):
 * - `finish`: returns after its steps;
 * - `ready`: goes READY and waits there until `complete` or any cancel;
 * - `hold`: waits (in `yield`) until any cancel;
 * - `forever`: waits in `yield` until a force cancel interrupts it: a soft cancel
 *   is recorded and ignored, and so is `complete` (it goes READY first when
 *   `converge` is set, so that `complete` is accepted).
 *
 * With `softCancel` the driver has a `cancel` callback that keeps a non-forced
 * cancel soft in READY/STANDBY (QEMU's mirror); with `softCancelAlways` it keeps
 * every non-forced cancel soft. Without either, every cancel is hard.
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as JobDriver from "../../src/JobDriver.ts"
import type { JobHandle } from "../../src/JobHandle.ts"
import * as Jobs from "../../src/Jobs.ts"

export const SteppedParams = Schema.Struct({
  run: Schema.Literals(["finish", "ready", "hold", "forever"]),
  converge: Schema.optionalKey(Schema.Boolean),
  softCancel: Schema.optionalKey(Schema.Boolean),
  softCancelAlways: Schema.optionalKey(Schema.Boolean),
  /** Scheduler turns each callback takes (default 3). */
  steps: Schema.optionalKey(Schema.Int)
})

export type SteppedParams = typeof SteppedParams.Type

export type SteppedCallback =
  | "run"
  | "pause"
  | "resume"
  | "userResume"
  | "complete"
  | "prepare"
  | "commit"
  | "abort"
  | "clean"
  | "cancel"
  | "setSpeed"
  | "change"
  | "free"

export interface SteppedCall {
  readonly job: string
  readonly callback: SteppedCallback
  readonly phase: "start" | "end"
}

/** Every callback start and end of the stepped driver's jobs, in order. */
export class SteppedLog extends Context.Service<SteppedLog, {
  readonly calls: Array<SteppedCall>
  /** How many times `job`'s `callback` ran to its end. */
  readonly finished: (job: string, callback: SteppedCallback) => number
  /** The callbacks `job` got, as `name` (finished) or `name…` (started, not finished yet or cut short). */
  readonly of: (job: string) => ReadonlyArray<string>
}>()("effect-jobs/test/SteppedLog") {
  static readonly layer: Layer.Layer<SteppedLog> = Layer.sync(SteppedLog, () => {
    const calls: Array<SteppedCall> = []
    return SteppedLog.of({
      calls,
      finished: (job, callback) =>
        calls.filter((c) => c.job === job && c.callback === callback && c.phase === "end").length,
      of: (job) => {
        const out: Array<string> = []
        const open = new Map<SteppedCallback, number>()
        for (const c of calls) {
          if (c.job !== job) continue
          if (c.phase === "start") {
            open.set(c.callback, out.length)
            out.push(`${c.callback}…`)
          } else {
            const at = open.get(c.callback)
            if (at !== undefined) out[at] = c.callback
            open.delete(c.callback)
          }
        }
        return out
      }
    })
  })
}

const makeCallbacks = (params: SteppedParams, job: JobHandle) =>
  Effect.gen(function*() {
    const log = yield* SteppedLog
    const name = job.id ?? "<internal>"
    const steps = params.steps ?? 3
    const turns = Effect.gen(function*() {
      for (let i = 0; i < steps; i++) yield* Effect.yieldNow
    })
    const call = <A>(callback: SteppedCallback, effect: Effect.Effect<A>) =>
      Effect.suspend(() => {
        log.calls.push({ job: name, callback, phase: "start" })
        return Effect.andThen(turns, effect).pipe(
          Effect.tap(() => Effect.sync(() => log.calls.push({ job: name, callback, phase: "end" })))
        )
      })
    let completeRequested = false

    const waitUntil = (done: Effect.Effect<boolean>) =>
      Effect.gen(function*() {
        while (!(yield* done)) yield* job.yield
      })
    const cancelled = job.cancelRequested
    const run = Effect.gen(function*() {
      switch (params.run) {
        case "finish":
          return
        case "ready":
          yield* job.transitionToReady
          return yield* waitUntil(Effect.map(cancelled, (c) => c || completeRequested))
        case "hold":
          return yield* waitUntil(cancelled)
        case "forever":
          if (params.converge) yield* job.transitionToReady
          return yield* waitUntil(job.isCancelled)
      }
    })

    const cancel = params.softCancelAlways
      ? (force: boolean) => call("cancel", Effect.succeed(force))
      : params.softCancel
      ? (force: boolean) =>
        call("cancel", Effect.map(job.status, (status) => force || !(status === "ready" || status === "standby")))
      : undefined

    return {
      run: call("run", run),
      pause: call("pause", Effect.void),
      resume: call("resume", Effect.void),
      userResume: call("userResume", Effect.void),
      complete: call(
        "complete",
        Effect.suspend(() => {
          if (params.run === "forever") return Effect.void
          completeRequested = true
          return job.enter
        })
      ),
      prepare: call("prepare", Effect.void),
      commit: call("commit", Effect.void),
      abort: call("abort", Effect.void),
      clean: call("clean", Effect.void),
      cancel,
      change: (_options: unknown) => call("change", Effect.void),
      setSpeed: (_speed: number) => call("setSpeed", Effect.void),
      free: call("free", Effect.void)
    }
  })

/** The stepped driver, job type `stepped`. */
export const SteppedDriver = JobDriver.make({
  type: "stepped",
  params: SteppedParams,
  make: makeCallbacks
})

/** `Jobs` with the stepped driver registered, and its `SteppedLog`. */
export const steppedLayer: Layer.Layer<Jobs.Jobs | SteppedLog> = JobDriver.layer(SteppedDriver).pipe(
  Layer.provideMerge(Layer.mergeAll(Jobs.layer, SteppedLog.layer))
)
