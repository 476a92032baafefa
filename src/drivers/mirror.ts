/**
 * The `mirror` job type: keeps a copy of a changing source file in sync until
 * told to switch it into place.
 *
 * - `check` and `make`: the same checks and set-up as `backup`.
 * - `run` copies the source into a temporary file beside the target (progress
 *   in bytes), then moves to READY (event `Ready`) and keeps the copy in sync:
 *   every poll interval it looks at the source and, if it may have changed,
 *   runs a round that compares source and copy chunk by chunk and re-copies
 *   the chunks that differ (each announced with `increaseRemaining`, so the
 *   progress total grows), appends what is new and cuts what is gone. A source
 *   replaced by another file (an editor saving through a rename) is re-opened
 *   and mirrored; a source that disappears fails the job. Paused in READY, the
 *   job parks in STANDBY and does no syncing.
 * - `complete` (READY or STANDBY): final rounds until one finds no difference,
 *   then `run` returns and the copy is committed (renamed onto the target): the
 *   target equals the source as of completion.
 * - `cancel` follows QEMU's mirror rule: before READY every cancel is hard; in
 *   READY a soft cancel skips the final sync — the round in progress finishes,
 *   `run` returns and the copy as of that last finished round is committed (the
 *   job ends COMPLETED) — while a force cancel aborts and leaves the target
 *   path untouched.
 * - `prepare`, `commit`, `abort`, `clean`: as for `backup`.
 *
 * @since 0.1.0
 */
import { Effect, type FileSystem, type Layer, type Path } from "effect"
import * as JobDriver from "../JobDriver.ts"
import * as JobStatus from "../JobStatus.ts"
import type { Jobs } from "../Jobs.ts"
import {
  checkParams,
  copyAll,
  createTemp,
  type FileDriverOptions,
  FileJobParams,
  finalizationCallbacks,
  mayHaveChanged,
  pollIntervalOf,
  startFileJob,
  sizeOf,
  snapshotSource,
  syncRound
} from "./chunkCopy.ts"
import type { FileJobError } from "./errors.ts"
import { io } from "./fileOps.ts"

/**
 * The mirror driver with the given tuning.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDriver = (
  options?: FileDriverOptions
): JobDriver.JobDriver<FileJobParams, FileJobError, FileSystem.FileSystem | Path.Path> =>
  JobDriver.make({
    type: "mirror",
    params: FileJobParams,
    check: checkParams,
    make: (params, handle) =>
      Effect.gen(function*() {
        const { job, limiter, chunkSize } = yield* startFileJob(params, handle, options)
        const pollInterval = pollIntervalOf(options)
        let completeRequested = false

        const run: Effect.Effect<void, FileJobError> = Effect.gen(function*() {
          const size = sizeOf(yield* io("inspect", job.source, job.sourceFile.stat))
          yield* handle.setRemaining(size)
          yield* createTemp(job)
          const sourceBuffer = new Uint8Array(chunkSize)
          const copyBuffer = new Uint8Array(chunkSize)
          let snapshot = yield* snapshotSource(job)
          yield* copyAll(job, handle, limiter, [sourceBuffer, copyBuffer], size, false)
          yield* handle.transitionToReady

          // READY: sync rounds when the source may have changed, until completed or soft-cancelled.
          let lastChanged = 1
          while (!completeRequested) {
            if (yield* handle.cancelRequested) return // soft cancel: commit the last finished round
            yield* handle.sleep(pollInterval) // parks here (STANDBY) while paused
            if (completeRequested || (yield* handle.cancelRequested)) continue
            const now = yield* snapshotSource(job)
            if (lastChanged > 0 || mayHaveChanged(snapshot, now)) {
              snapshot = now
              lastChanged = yield* syncRound(job, handle, limiter, sourceBuffer, copyBuffer, now)
            }
          }

          // Completed: rounds until one finds the copy equal to the source (a soft cancel stops after a round).
          while (true) {
            const now = yield* snapshotSource(job)
            const changed = yield* syncRound(job, handle, limiter, sourceBuffer, copyBuffer, now)
            if (changed === 0 || (yield* handle.cancelRequested)) return
          }
        })

        return {
          run,
          // QEMU's mirror: hard before READY, soft (finish without the final sync) in READY or STANDBY.
          cancel: (force: boolean) => Effect.map(handle.status, (status) => force || !JobStatus.isReady(status)),
          complete: Effect.andThen(
            Effect.sync(() => {
              completeRequested = true
            }),
            handle.enter // a no-op while parked in STANDBY: `run` sees the flag after the resume
          ),
          ...finalizationCallbacks(job, handle)
        }
      })
  })

/**
 * The mirror driver (4 MiB chunks; a READY mirror looks for changes every second).
 *
 * @since 0.1.0
 * @category drivers
 */
export const MirrorDriver = makeDriver()

/**
 * Registers the `mirror` job type with `Jobs`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> = JobDriver.layer(MirrorDriver)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: FileDriverOptions
): Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> => JobDriver.layer(makeDriver(options))
