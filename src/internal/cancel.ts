/**
 * Cancel (QEMU: job_cancel), without the verb check: the driver decides soft or
 * hard, then by where the job is —
 * - CONCLUDED: dismissed (only reachable without the verb check, e.g. at shutdown);
 * - never started: its completion path runs now, in the caller's fiber;
 * - `run` returned (WAITING, PENDING): a hard cancel aborts the transaction;
 * - running: hard interrupts `run` (a parked job is un-parked first), soft wakes it.
 * @internal
 */
import { Effect } from "effect"
import { requestCancel, wakeForCancelUnsafe } from "./cancelRequest.ts"
import { completeUnstarted } from "./completion.ts"
import { dismiss } from "./conclude.ts"
import type { JobRecord } from "./jobRecord.ts"
import { cancelCompletedMember } from "./txn.ts"

export const cancelJob = (job: JobRecord, force: boolean): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (job.status === "concluded") return dismiss(job)
    if (job.status === "null" || job.status === "aborting") return Effect.void
    return Effect.flatMap(requestCancel(job, force), (hard) =>
      Effect.suspend(() => {
        if (!job.started) {
          return job.status === "created" ? completeUnstarted(job) : Effect.void
        }
        if (job.runReturned) {
          return hard || job.callbackFailure !== undefined ? cancelCompletedMember(job) : Effect.void
        }
        if (hard) job.runFiber?.interruptUnsafe()
        else wakeForCancelUnsafe(job)
        return Effect.void
      }))
  })
