/**
 * The `backup` job type: copies a source file to a target path, all or nothing.
 *
 * - `check` looks at the source and target before the job exists (see the
 *   errors in `errors.ts`): a failure refuses `Jobs.create` with `JobRefused`
 *   carrying the message, and no job is ever seen.
 * - `make` checks them again (the files may have changed since) and opens the
 *   source: a failure there fails the job early (`JobSetupFailed`, events
 *   `created`, `null`). It also finishes interrupted commits and removes
 *   stale temporary copies of the same target left by a killed process.
 * - `run` copies the source, as it was opened by `make`, into a temporary file
 *   beside the target, chunk by chunk: progress in bytes (total = source size),
 *   a pause point and the rate limit after every chunk. It fails if a read ends
 *   before the size the copy started with (`SourceTruncated`) or the source
 *   path comes to lead to another file (`SourceReplaced`). A source whose size
 *   is reported as 0 (procfs files have content all the same) is read until a
 *   read returns nothing, the progress total growing as it goes. The copy gets
 *   the source's permission bits (less the umask), never more.
 * - `prepare` fsyncs the copy and its directory and checks that the commit can
 *   succeed; `commit` links it to the target (renames it over the target with
 *   `overwrite`: atomic either way) and fsyncs the directory — inside a commit journal when the
 *   transaction has several file jobs; `abort` removes the copy; `clean` (and
 *   `free`) close the handles.
 *
 * - With a durable store it is `resumable`: every 64 MiB the copy is fsynced
 *   and a checkpoint recorded (`copyCheckpoint.ts`); after a restart the job
 *   goes on from its checkpoint, into the same temporary copy, if the source
 *   is the same file (else it fails with `SourceChanged`). A copy whose
 *   temporary file is gone starts again.
 *
 * So the target path keeps its old state or holds a complete copy, whatever
 * happens to the job or the process. See docs/drivers.md.
 *
 * @since 0.1.0
 */
import { Effect, type FileSystem, type Layer, type Path } from "effect"
import * as JobDriver from "../JobDriver.ts"
import type { Jobs } from "../Jobs.ts"
import {
  checkParams,
  checkSource,
  copyAll,
  createTemp,
  type FileDriverOptions,
  FileJobParams,
  minimumChunk,
  narrowCopyToSource,
  release,
  requireSource,
  sharedCallbacks,
  startFileJob,
  sizeOf,
  takeBuffers
} from "./chunkCopy.ts"
import type { FileJobError } from "./errors.ts"
import { io } from "./fileOps.ts"
import { checkpointEvery, completeCheckpoint, reopenCompleteCopy, resumeOffset } from "./resumeCopy.ts"

/**
 * The backup driver with the given tuning.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeDriver = (
  options?: FileDriverOptions
): JobDriver.JobDriver<FileJobParams, FileJobError, FileSystem.FileSystem | Path.Path> =>
  JobDriver.make({
    type: "backup",
    resumable: true,
    params: FileJobParams,
    check: checkParams,
    make: (params, handle) =>
      Effect.gen(function*() {
        const { job, limiter, chunkSize } = yield* startFileJob(params, handle, options)
        yield* Effect.onError(reopenCompleteCopy(job, handle), () => release(job))

        const run: Effect.Effect<void, FileJobError> = Effect.gen(function*() {
          // The size of the file `make` opened: the copy is of that file, that long.
          yield* requireSource(job)
          const source = yield* io("inspect", job.source, job.sourceFile.stat)
          const size = sizeOf(source)
          yield* handle.setRemaining(size)
          // Size 0: empty, or a size not reported (procfs). Read to end-of-file, in chunks sized for
          // what such files hold (a few KiB) rather than for large files.
          const toEnd = size === 0
          const from = toEnd ? 0 : yield* resumeOffset(job, handle, source, "content")
          if (from > 0) yield* handle.update(from)
          else if (job.tempFile === undefined) yield* createTemp(job, source)
          // A copy `make` reopened, of a source read to its end (no size to go on from): written again from the start.
          else yield* io("truncate", job.rename!.temp, job.tempFile.truncate(0))
          const length = toEnd ? Math.min(chunkSize, minimumChunk) : Math.max(1, Math.min(chunkSize, size))
          const buffers = takeBuffers(job, length)
          const every = toEnd ? undefined : checkpointEvery(handle, options)
          const copied = yield* copyAll(job, handle, limiter, buffers, toEnd ? undefined : size, true, from, every)
          yield* narrowCopyToSource(job)
          yield* checkSource(job)
          yield* completeCheckpoint(job, handle, copied)
        })

        return { run, ...sharedCallbacks(job, handle) }
      })
  })

/**
 * The backup driver (4 MiB chunks).
 *
 * @since 0.1.0
 * @category drivers
 */
export const BackupDriver = makeDriver()

/**
 * Registers the `backup` job type with `Jobs`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> = JobDriver.layer(BackupDriver)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: FileDriverOptions
): Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> => JobDriver.layer(makeDriver(options))
