/**
 * The model of verb acceptance: given what a job looked like right before a
 * verb (its status and pause/cancel flags, read from the `Job` object) and what
 * its driver does, the one result the verb must have. Checks are made in QEMU's
 * order: the lookup, then (for `resume` only) "was it paused", then the verb
 * table, then the verb's own checks, then the driver's callback. A verb that
 * names a member of a transaction being finalized waits for the end and is
 * judged by what the job is then.
 */
import type { Job } from "../../src/Job.ts"
import type { JobStatus } from "../../src/JobStatus.ts"
import * as JobStatusTable from "../../src/JobStatus.ts"
import * as JobVerb from "../../src/JobVerb.ts"
import type { CallbackName } from "../../src/testing.ts"
import type { VerbCall } from "./scenario.ts"

/** What a verb, `start` or `enter` can end with: success or the tag of its typed error. */
export type Result =
  | "Success"
  | "JobNotFound"
  | "VerbNotAllowed"
  | "JobAlreadyPaused"
  | "JobNotPaused"
  | "CannotComplete"
  | "NegativeSpeed"
  | "CallbackFailed"
  | "ChangeNotSupported"
  | "JobAlreadyStarted"

/** The job as the caller saw it right before the call; `undefined` when the lookup cannot find it. */
export interface Snapshot {
  readonly status: JobStatus
  readonly userPaused: boolean
  readonly pauseCount: number
  readonly cancelRequested: boolean
  /** Its transaction is being finalized (busy after `run` returned): a verb waits for the end. */
  readonly finalizing: boolean
}

export const snapshot = (job: Job): Snapshot => ({
  status: job.status,
  userPaused: job.userPaused,
  pauseCount: job.pauseCount,
  cancelRequested: job.cancelRequested,
  finalizing: job.busy && JobStatusTable.isCompleted(job.status)
})

/** What the model needs to know about the job's driver. */
export interface DriverFacts {
  readonly completable: boolean
  /** Callbacks that fail or die. */
  readonly failing: ReadonlySet<CallbackName>
}

const qemuVerb = (call: VerbCall): JobVerb.JobVerb => call.verb === "setSpeed" ? "set-speed" : call.verb

export const expectedVerb = (call: VerbCall, job: Snapshot | undefined, driver: DriverFacts): Result => {
  if (job === undefined) return "JobNotFound"
  const allowed = JobVerb.isAllowed(qemuVerb(call), job.status)
  switch (call.verb) {
    case "pause":
      if (!allowed) return "VerbNotAllowed"
      return job.userPaused ? "JobAlreadyPaused" : "Success"
    case "resume":
      // The only verb whose own check comes before the verb table.
      if (!job.userPaused || job.pauseCount <= 0) return "JobNotPaused"
      return allowed ? "Success" : "VerbNotAllowed"
    case "complete":
      if (!allowed) return "VerbNotAllowed"
      if (job.cancelRequested || !driver.completable) return "CannotComplete"
      return driver.failing.has("complete") ? "CallbackFailed" : "Success"
    case "setSpeed":
      if (!allowed) return "VerbNotAllowed"
      if (call.speed < 0) return "NegativeSpeed"
      return driver.failing.has("setSpeed") ? "CallbackFailed" : "Success"
    case "change":
      if (!allowed) return "VerbNotAllowed"
      return driver.failing.has("change") ? "CallbackFailed" : "Success"
    case "cancel":
    case "finalize":
    case "dismiss":
      return allowed ? "Success" : "VerbNotAllowed"
  }
}

export const expectedStart = (job: Snapshot | undefined, startedBefore: boolean): Result => {
  if (job === undefined) return "JobNotFound"
  return job.status === "created" && !startedBefore ? "Success" : "JobAlreadyStarted"
}

export const expectedEnter = (job: Snapshot | undefined): Result => job === undefined ? "JobNotFound" : "Success"
