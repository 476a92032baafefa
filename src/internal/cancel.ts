/**
 * Cancel (QEMU: job_cancel), without the verb check: the driver decides soft or
 * hard, then by where the job is —
 * - its transaction is being finalized: nothing is done (`"locked"`): the caller
 *   waits for the end and looks again;
 * - CONCLUDED: dismissed (only reachable without the verb check, e.g. at shutdown);
 * - never started: every cancel is hard (a job that never ran has nothing to
 *   finish softly), and its completion path runs now, in the caller's fiber;
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

/** `"locked"`: finalization of the job's transaction is under way, and the request was not made. */
export type CancelResult = "done" | "locked"

const done = Effect.succeed<CancelResult>("done")
const locked = Effect.succeed<CancelResult>("locked")

export const cancelJob = (job: JobRecord, force: boolean): Effect.Effect<CancelResult> =>
  Effect.suspend(() => {
    // Checked in the request's first step: finalization may have begun since the verb check.
    if (job.txnLocked) return locked
    if (job.status === "concluded") return Effect.as(dismiss(job), "done" as const)
    if (job.status === "null" || job.status === "aborting") return done
    return Effect.flatMap(requestCancel(job, force), (hard) =>
      Effect.suspend(() => {
        if (!job.started) {
          return job.status === "created" ? Effect.as(completeUnstarted(job), "done" as const) : done
        }
        if (job.runReturned) {
          return hard || job.callbackFailure !== undefined ? Effect.as(cancelCompletedMember(job), "done" as const) : done
        }
        if (hard) job.runFiber?.interruptUnsafe()
        else wakeForCancelUnsafe(job)
        return done
      }))
  })
