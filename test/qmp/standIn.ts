/**
 * TEST STAND-IN for the file drivers: job types `backup` and `mirror` with the
 * real drivers' parameters `{source, target, speed?, overwrite?}`, but no
 * files. For the QMP tests only; the real drivers live in src/drivers/.
 *
 * A job copies `chunks` chunks of `chunkBytes` bytes, sleeping `chunkMillis`
 * on the Effect Clock before each one, so a test steps it exactly with
 * `TestClock.adjust`. A speed (bytes/s) slower than that stretches the wait
 * (speed 1 never finishes a chunk in a test); a speed change wakes the job,
 * which then waits by the new speed. A mirror then goes READY and stays there until
 * `complete` or a cancel (soft in READY, as QEMU's mirror). Failures on demand:
 * a `source` starting with `missing` fails the set-up (CREATED → NULL), a
 * `target` starting with `fail` fails the copy after its first chunk.
 */
import { Clock, Effect, Layer, Schema } from "effect"
import * as JobDriver from "../../src/JobDriver.ts"

export const chunkBytes = 1024 * 1024
export const chunks = 4
export const chunkMillis = 1000
export const totalBytes = chunks * chunkBytes

const Params = Schema.Struct({
  source: Schema.String,
  target: Schema.String,
  speed: Schema.optionalKey(Schema.Int),
  overwrite: Schema.optionalKey(Schema.Boolean)
})

class StandInError extends Schema.TaggedError<StandInError>()("StandInError", { reason: Schema.String }) {
  override get message() {
    return this.reason
  }
}

const standIn = (type: "backup" | "mirror") =>
  JobDriver.make({
    type,
    params: Params,
    make: (params, job) =>
      Effect.gen(function*() {
        if (params.source.startsWith("missing")) {
          return yield* new StandInError({ reason: `Could not open '${params.source}': No such file or directory` })
        }
        let completeRequested = false
        /** Waits until one chunk's time has passed at the current speed. */
        const chunkTime = Effect.gen(function*() {
          while (!(yield* job.cancelRequested)) {
            const speed = yield* job.speed
            const delay = speed > 0 ? Math.max(chunkMillis, Math.ceil((chunkBytes / speed) * 1000)) : chunkMillis
            const start = yield* Clock.currentTimeMillis
            yield* job.sleep(delay)
            if ((yield* Clock.currentTimeMillis) - start >= delay) return
          }
        })
        const run = Effect.gen(function*() {
          yield* job.setRemaining(totalBytes)
          for (let i = 0; i < chunks; i++) {
            yield* chunkTime
            if (yield* job.cancelRequested) return
            yield* job.update(chunkBytes)
            if (params.target.startsWith("fail")) {
              return yield* new StandInError({ reason: `Could not write '${params.target}': No space left on device` })
            }
          }
          if (type === "mirror" && !(yield* job.cancelRequested)) {
            yield* job.transitionToReady
            while (!completeRequested && !(yield* job.cancelRequested)) yield* job.sleep(chunkMillis)
          }
        })
        return {
          run,
          complete: type === "mirror"
            ? Effect.andThen(Effect.sync(() => {
              completeRequested = true
            }), job.enter)
            : undefined,
          // QEMU's mirror: hard before READY, soft (complete without switching) in READY.
          cancel: type === "mirror"
            ? (force: boolean) => Effect.map(job.status, (s) => force || !(s === "ready" || s === "standby"))
            : undefined
        }
      })
  })

export const BackupStandIn = standIn("backup")
export const MirrorStandIn = standIn("mirror")

/** Registers both stand-ins with `Jobs`. */
export const layer = Layer.mergeAll(JobDriver.layer(BackupStandIn), JobDriver.layer(MirrorStandIn))
