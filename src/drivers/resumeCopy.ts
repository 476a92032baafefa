/**
 * Where a resumed file job's copy goes on from (see `copyCheckpoint.ts`): its
 * checkpoint's offset, once its temporary copy is the job's again and the
 * source is checked to be the one the checkpoint was taken of; 0 for a fresh
 * job, or one whose copy is gone (it starts again).
 * @internal
 */
import { Effect, type FileSystem } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import { type FileJob, reopenTemp, sizeOf } from "./chunkCopy.ts"
import { checkSameSource, resumedCheckpoint, type SameSource } from "./copyCheckpoint.ts"

export const resumeOffset = (job: FileJob, handle: JobHandle, source: FileSystem.File.Info, same: SameSource) =>
  Effect.gen(function*() {
    const checkpoint = resumedCheckpoint(handle)
    if (checkpoint === undefined || checkpoint.offset <= 0) return 0
    const offset = Math.min(checkpoint.offset, sizeOf(source))
    const reopened = yield* reopenTemp(job, checkpoint.temp, offset)
    if (reopened === undefined) return 0
    // Checked once the copy is the job's: a failure here removes it (`abort`).
    yield* checkSameSource(job.source, checkpoint, source, same)
    return offset
  })
