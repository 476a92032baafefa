/**
 * The `mirror` job type: keeps a copy of a changing source file in sync until
 * told to switch it into place.
 *
 * - `check` and `make`: the same checks and set-up as `backup`, and one more:
 *   a source whose size is reported as 0 but that has content (procfs, whose
 *   files are made at each read and never read the same twice) is refused with
 *   `SourceSizeUnknown` — no round could ever find it unchanged.
 * - `run` copies the source into a temporary file beside the target (progress
 *   in bytes), then moves to READY (event `Ready`) and keeps the copy in sync:
 *   every poll interval it looks at the source and, if it may have changed,
 *   runs a round that compares source and copy chunk by chunk and re-copies
 *   the chunks that differ (each announced with `increaseRemaining`, so the
 *   progress total grows), appends what is new and cuts what is gone. The
 *   source is the file `make` opened, read through that handle: a path that
 *   comes to lead elsewhere (a rename or a symbolic link put in its place)
 *   fails the job with `SourceReplaced` at the next look, and one that names
 *   nothing with `SourceNotFound`. The copy never has a permission bit the
 *   source lacks. Paused in READY, the job parks in STANDBY and does no
 *   syncing.
 * - `complete` (READY or STANDBY): final rounds until one finds no difference,
 *   then `run` returns and the copy is committed (renamed onto the target): the
 *   target equals the source as of completion.
 * - `cancel` follows QEMU's mirror rule: before READY every cancel is hard; in
 *   READY a soft cancel skips the final sync — the round in progress finishes,
 *   `run` returns and the copy as of that last finished round is committed (the
 *   job ends COMPLETED) — while a force cancel aborts and leaves the target
 *   path untouched.
 * - `prepare`, `commit`, `abort`, `clean`: as for `backup`.
 * - With a durable store it is `resumable`, as a backup is: its first copy
 *   records checkpoints, and whenever the copy is whole and in sync — on
 *   reaching READY, after a round that brought it back in sync, and last when
 *   `run` returns — it is fsynced and a checkpoint marked complete is
 *   recorded. After a restart a mirror that was running, paused, READY or on
 *   standby goes on with its copy from its checkpoint (the source must be the
 *   same file; its content may have changed: the first round in READY compares
 *   it all and catches up) without copying again what the checkpoint covers,
 *   and reaches READY again; one that was WAITING or PENDING has its copy
 *   reopened by `make` and commits it as it was at completion.
 *
 * @since 0.1.0
 */
import { Effect, type FileSystem, type Layer, type Path } from "effect"
import * as JobDriver from "../JobDriver.ts"
import * as JobStatus from "../JobStatus.ts"
import type { Jobs } from "../Jobs.ts"
import {
  checkParams,
  checkSizeReported,
  copyAll,
  createTemp,
  type FileDriverOptions,
  FileJobParams,
  mayHaveChanged,
  narrowCopyToSource,
  pollIntervalOf,
  refuseUnreportedSize,
  release,
  requireSource,
  sharedCallbacks,
  startFileJob,
  sizeOf,
  snapshotSource,
  syncRound,
  takeBuffers
} from "./chunkCopy.ts"
import type { FileJobError } from "./errors.ts"
import { io } from "./fileOps.ts"
import { checkpointEvery, completeCheckpoint, reopenCompleteCopy, resumeOffset } from "./resumeCopy.ts"

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
    resumable: true,
    params: FileJobParams,
    check: (params) => Effect.andThen(checkParams(params), checkSizeReported(params)),
    make: (params, handle) =>
      Effect.gen(function*() {
        const { job, limiter, chunkSize } = yield* startFileJob(params, handle, options)
        // Again on the file opened: the path may have named another one at `check`.
        yield* Effect.onError(refuseUnreportedSize(job), () => release(job))
        yield* Effect.onError(reopenCompleteCopy(job, handle), () => release(job))
        const pollInterval = pollIntervalOf(options)
        let completeRequested = false

        const mirror: Effect.Effect<void, FileJobError> = Effect.gen(function*() {
          yield* requireSource(job)
          const source = yield* io("inspect", job.source, job.sourceFile.stat)
          const size = sizeOf(source)
          yield* handle.setRemaining(size)
          const from = yield* resumeOffset(job, handle, source, "file")
          // A copy `make` reopened is gone on with even from 0 (a whole copy of an empty source).
          if (job.tempFile === undefined) yield* createTemp(job, source)
          if (from > 0) yield* handle.update(from)
          // The first copy reads into one while the other is written; a round reads the source's chunk
          // into one and the copy's into the other.
          const buffers = takeBuffers(job, chunkSize)
          const sourceBuffer = buffers[0]!
          const copyBuffer = buffers[1]!
          let snapshot = yield* snapshotSource(job)
          const every = checkpointEvery(handle, options)
          yield* copyAll(job, handle, limiter, buffers, size, false, from, every)
          // Whole: a restart goes on with this copy (its first round compares it all) rather than copying it again.
          yield* completeCheckpoint(job, handle)
          yield* handle.transitionToReady

          // READY: sync rounds when the source may have changed, until completed or soft-cancelled.
          let lastChanged = 1
          /** Rounds have written to the copy since its last checkpoint. */
          let unrecorded = false
          while (!completeRequested) {
            if (yield* handle.cancelRequested) return // soft cancel: commit the last finished round
            yield* handle.sleep(pollInterval) // parks here (STANDBY) while paused
            if (completeRequested || (yield* handle.cancelRequested)) continue
            // Every poll checks that the path still leads to the file opened, changed or not.
            const now = yield* snapshotSource(job)
            if (lastChanged > 0 || mayHaveChanged(snapshot, now)) {
              snapshot = now
              lastChanged = yield* syncRound(job, handle, limiter, sourceBuffer, copyBuffer)
              if (lastChanged > 0) unrecorded = true
              else if (unrecorded) {
                // In sync again: the copy's length now is what a restart goes on from.
                yield* completeCheckpoint(job, handle)
                unrecorded = false
              }
            }
          }

          // Completed: rounds until one finds the copy equal to the source (a soft cancel stops after a round).
          while (true) {
            yield* snapshotSource(job)
            const changed = yield* syncRound(job, handle, limiter, sourceBuffer, copyBuffer)
            if (changed === 0 || (yield* handle.cancelRequested)) return
          }
        })
        // Whatever round came last, the committed copy has no permission bit the source lacks now; and it
        // is what a job brought back WAITING or PENDING commits, so it gets the last checkpoint.
        const run = mirror.pipe(Effect.andThen(narrowCopyToSource(job)), Effect.andThen(completeCheckpoint(job, handle)))

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
          ...sharedCallbacks(job, handle)
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
