/**
 * Where a resumed file job's copy goes on from (see `copyCheckpoint.ts`): its
 * checkpoint's offset, once its temporary copy is the job's again and the
 * source is checked to be the one the checkpoint was taken of; 0 for a fresh
 * job, or one whose copy is gone (it starts again).
 * @internal
 */
import { Effect, type FileSystem } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import { type FileDriverOptions, type FileJob, reopenTemp, sizeOf } from "./chunkCopy.ts"
import {
  checkpointOf,
  checkSameSource,
  defaultCheckpointInterval,
  fileIdentityOf,
  resumedCheckpoint,
  type SameSource
} from "./copyCheckpoint.ts"
import type { FileIoError } from "./errors.ts"
import { io } from "./fileOps.ts"

export const resumeOffset = (job: FileJob, handle: JobHandle, source: FileSystem.File.Info, same: SameSource) =>
  Effect.gen(function*() {
    const checkpoint = resumedCheckpoint(handle)
    if (checkpoint === undefined || checkpoint.offset <= 0) return 0
    const offset = Math.min(checkpoint.offset, sizeOf(source))
    // Reopened already by `make` (a copy that was complete), or now.
    const reopened = job.rename?.temp === checkpoint.temp ? job.tempFile : yield* reopenTemp(job, checkpoint.temp, offset)
    if (reopened === undefined) return 0
    // Checked once the copy is the job's: a failure here removes it (`abort`).
    yield* checkSameSource(job.source, checkpoint, source, same)
    return offset
  })

/**
 * With a durable store, once the copy is whole (a backup's when `run` has
 * copied everything; a mirror's whenever it is in sync, and last when its
 * `run` returns): the copy fsynced and a checkpoint marked `complete`, so that
 * a job brought back WAITING or PENDING (its `run` is not run again) still has
 * its copy to commit. `copied`: the copy's length; by default, its length now.
 */
export const completeCheckpoint = (
  job: FileJob,
  handle: JobHandle,
  copied?: number
): Effect.Effect<void, FileIoError> =>
  Effect.suspend(() => {
    const temp = job.tempFile
    const rename = job.rename
    if (!handle.keepsCheckpoints || temp === undefined || rename === undefined) return Effect.void
    return Effect.gen(function*() {
      yield* io("fsync", rename.temp, temp.sync)
      const info = yield* io("inspect", rename.temp, temp.stat)
      yield* handle.checkpoint({
        ...checkpointOf(rename.temp, copied ?? sizeOf(info), job.sourceInfo),
        complete: true,
        copy: fileIdentityOf(info)
      })
    })
  })

/**
 * In `make`, for a job brought back after its copy was complete: its copy,
 * reopened, so that `prepare` and `commit` have it without `run`. Complete is
 * what the checkpoint says; one that does not say (those taken along a copy,
 * and a backup's last one as older versions stored it) is complete when it
 * covers the whole source.
 */
export const reopenCompleteCopy = (job: FileJob, handle: JobHandle): Effect.Effect<void, FileIoError> =>
  Effect.suspend(() => {
    const checkpoint = resumedCheckpoint(handle)
    // Put in place before the server stopped: there is no copy left, and nothing to commit.
    if (checkpoint === undefined || job.inPlace) return Effect.void
    const complete = checkpoint.complete ?? checkpoint.offset === sizeOf(job.sourceInfo)
    if (!complete) return Effect.void
    return Effect.asVoid(reopenTemp(job, checkpoint.temp, checkpoint.offset))
  })

/** Bytes between two checkpoints of a copy; none without a store that keeps them. */
export const checkpointEvery = (handle: JobHandle, options: FileDriverOptions | undefined): number | undefined =>
  handle.keepsCheckpoints ? options?.checkpointInterval ?? defaultCheckpointInterval : undefined
