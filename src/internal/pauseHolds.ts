/**
 * Pause holds: pause requests that last as long as their holder's scope
 * (`Jobs.hold`), each with a reason shown in the job's info.
 *
 * A durable engine keeps the reasons, and a restart brings them back as holds
 * with no scope: the job stays paused (or parks at its first pause point) as
 * before the restart. The program that held one takes it back by holding the
 * same job for the same reason again; closing that scope then releases it.
 * Until then only a force cancel moves the job on, as with any hold.
 * @internal
 */
import type { JobRecord } from "./jobRecord.ts"
import { pauseUnsafe, resumeUnsafe } from "./pausing.ts"

/** Keys of holds brought back by a restart, waiting for a holder to adopt them. */
const unclaimed = new WeakSet<object>()

/** One more hold for `reason`, or the unclaimed restored hold with that reason; its key. */
export const acquireHoldUnsafe = (job: JobRecord, reason: string): object => {
  const holds = job.holds ??= new Map()
  for (const [key, held] of holds) {
    if (held === reason && unclaimed.has(key)) {
      // The job is paused for it already: the new holder only takes over its release.
      unclaimed.delete(key)
      return key
    }
  }
  const key = {}
  holds.set(key, reason)
  pauseUnsafe(job)
  return key
}

/** Releases the hold `key`, once. */
export const releaseHoldUnsafe = (job: JobRecord, key: object): void => {
  if (job.holds?.delete(key)) resumeUnsafe(job)
}

/**
 * Brings back the holds a restarted job had, unclaimed, before it runs again:
 * one pause request each, as when they were taken.
 */
export const restoreHoldsUnsafe = (job: JobRecord, reasons: ReadonlyArray<string>): void => {
  if (reasons.length === 0) return
  const holds = job.holds ??= new Map()
  for (const reason of reasons) {
    const key = {}
    unclaimed.add(key)
    holds.set(key, reason)
  }
  job.pauseCount += reasons.length
}
