/**
 * A test kit for code that uses effect-jobs: a scriptable driver (like the helper
 * jobs of QEMU's unit tests) that records every callback it gets, and a layer
 * with `Jobs` and that driver ready to use under `TestClock`.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Schema } from "effect"
import * as JobDriver from "./JobDriver.ts"
import * as Jobs from "./Jobs.ts"

/**
 * The callbacks a test job can be told to fail or die in.
 *
 * @since 0.1.0
 * @category models
 */
export const callbackNames = [
  "make",
  "run",
  "pause",
  "resume",
  "userResume",
  "complete",
  "prepare",
  "commit",
  "abort",
  "clean",
  "cancel",
  "change",
  "setSpeed",
  "free"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export type CallbackName = typeof callbackNames[number]

const CallbackName = Schema.Literals(callbackNames)

/**
 * The parameters of a test job.
 *
 * - `iterations` units of work, each followed by a wait: `sleep` for `sleepMillis`
 *   on the Effect Clock, or `yield` until `Jobs.enter`; progress counts them;
 * - `converge`: after the iterations go READY and keep waiting until `complete`
 *   (or a soft cancel, which then also ends `run` successfully);
 * - `softCancel`: a `cancel` callback like QEMU's mirror — hard before READY, soft in READY;
 *   `softCancelAlways`: a `cancel` callback that makes every non-forced cancel soft;
 * - `completable`: whether the driver has a `complete` callback (default true);
 * - `result`: how `run` ends; `fail`/`die`: callbacks that fail or die.
 *
 * @since 0.1.0
 * @category schemas
 */
export const TestParams = Schema.Struct({
  iterations: Schema.optionalKey(Schema.Int),
  wait: Schema.optionalKey(Schema.Literals(["sleep", "yield"])),
  sleepMillis: Schema.optionalKey(Schema.Number),
  converge: Schema.optionalKey(Schema.Boolean),
  softCancel: Schema.optionalKey(Schema.Boolean),
  softCancelAlways: Schema.optionalKey(Schema.Boolean),
  completable: Schema.optionalKey(Schema.Boolean),
  result: Schema.optionalKey(Schema.Literals(["succeed", "fail", "die"])),
  fail: Schema.optionalKey(Schema.Array(CallbackName)),
  die: Schema.optionalKey(Schema.Array(CallbackName))
})

/**
 * @since 0.1.0
 * @category models
 */
export type TestParams = typeof TestParams.Type

/**
 * The error a test job fails with.
 *
 * @since 0.1.0
 * @category errors
 */
export class TestJobError extends Schema.TaggedError<TestJobError>()("TestJobError", {
  callback: Schema.String
}) {
  override get message() {
    return `test job: ${this.callback} failed`
  }
}

/**
 * One callback call, as recorded by the test driver.
 *
 * @since 0.1.0
 * @category models
 */
export interface CallbackCall {
  readonly job: string
  readonly callback: CallbackName
}

/**
 * The record of every callback the test driver's jobs got, in call order.
 *
 * @since 0.1.0
 * @category services
 */
export class CallbackLog extends Context.Service<CallbackLog, {
  readonly calls: Array<CallbackCall>
  /** The callbacks one job got, in order. */
  readonly of: (job: string) => ReadonlyArray<CallbackName>
}>()("effect-jobs/testing/CallbackLog") {
  static readonly layer: Layer.Layer<CallbackLog> = Layer.sync(CallbackLog, () => {
    const calls: Array<CallbackCall> = []
    return CallbackLog.of({
      calls,
      of: (job) => calls.filter((c) => c.job === job).map((c) => c.callback)
    })
  })
}

/**
 * The scriptable test driver, job type `test`.
 *
 * @since 0.1.0
 * @category drivers
 */
export const TestDriver = JobDriver.make({
  type: "test",
  params: TestParams,
  make: (params, job) =>
    Effect.gen(function*() {
      const log = yield* CallbackLog
      const name = job.id ?? "<internal>"
      const failing = new Set(params.fail ?? [])
      const dying = new Set(params.die ?? [])
      const call = <A>(callback: CallbackName, effect: Effect.Effect<A, TestJobError>) =>
        Effect.suspend(() => {
          log.calls.push({ job: name, callback })
          if (dying.has(callback)) return Effect.die(new Error(`test job: ${callback} died`))
          if (failing.has(callback)) return Effect.fail(new TestJobError({ callback }))
          return effect
        })
      yield* call("make", Effect.void)
      const iterations = params.iterations ?? 1
      const sleepMillis = params.sleepMillis ?? 0
      const wait = params.wait === "yield" ? job.yield : job.sleep(sleepMillis)
      let shouldComplete = false

      const run = Effect.gen(function*() {
        yield* job.setRemaining(iterations)
        for (let i = 0; i < iterations; i++) {
          if (yield* job.cancelRequested) break
          yield* wait
          yield* job.update(1)
        }
        if (params.converge && !(yield* job.cancelRequested)) {
          yield* job.transitionToReady
          while (!shouldComplete && !(yield* job.cancelRequested)) yield* wait
        }
        const result = params.result ?? "succeed"
        if (result === "fail") return yield* new TestJobError({ callback: "run" })
        if (result === "die") return yield* Effect.die(new Error("test job: run died"))
      })

      return {
        run: call("run", run),
        pause: call("pause", Effect.void),
        resume: call("resume", Effect.void),
        userResume: call("userResume", Effect.void),
        complete: params.completable === false ? undefined : call(
          "complete",
          Effect.andThen(Effect.sync(() => {
            shouldComplete = true
          }), job.enter)
        ),
        prepare: call("prepare", Effect.void),
        commit: call("commit", Effect.void),
        abort: call("abort", Effect.void),
        clean: call("clean", Effect.void),
        cancel: params.softCancelAlways
          ? (force: boolean) => call("cancel", Effect.succeed(force))
          : params.softCancel
          ? (force: boolean) =>
            call("cancel", Effect.map(job.status, (status) => force || !(status === "ready" || status === "standby")))
          : undefined,
        change: (_options: unknown) => call("change", Effect.void),
        setSpeed: (_speed: number) => call("setSpeed", Effect.void),
        free: call("free", Effect.void)
      }
    })
})

/**
 * `Jobs` with the test driver registered, and its `CallbackLog`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Jobs.Jobs | CallbackLog> = JobDriver.layer(TestDriver).pipe(
  Layer.provideMerge(Layer.mergeAll(Jobs.layer, CallbackLog.layer))
)

/**
 * Like `layer`, with other `Jobs` options (e.g. a small event buffer).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: Jobs.JobsOptions): Layer.Layer<Jobs.Jobs | CallbackLog> =>
  JobDriver.layer(TestDriver).pipe(Layer.provideMerge(Layer.mergeAll(Jobs.layerWith(options), CallbackLog.layer)))
