/**
 * The commands a user may send to a job, and the table of which status accepts which.
 *
 * The verb table is necessary but not sufficient: each verb has further checks
 * (see `Jobs`), made in QEMU's order. It is data so that the checks, the docs and
 * any UI agree.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import type { JobStatus } from "./JobStatus.ts"

/**
 * All verbs, in QEMU's (QAPI) order.
 *
 * @since 0.1.0
 * @category models
 */
export const all = ["cancel", "pause", "resume", "set-speed", "complete", "dismiss", "finalize", "change"] as const

/**
 * @since 0.1.0
 * @category models
 */
export type JobVerb = typeof all[number]

/**
 * @since 0.1.0
 * @category schemas
 */
export const JobVerb: Schema.Literals<typeof all> = Schema.Literals(all)

const running = ["created", "running", "paused", "ready", "standby"] as const

/**
 * The verb table: for each verb, the statuses in which it is accepted.
 *
 * @since 0.1.0
 * @category tables
 */
export const acceptedIn: { readonly [V in JobVerb]: ReadonlyArray<JobStatus> } = {
  cancel: [...running, "waiting", "pending"],
  pause: running,
  resume: running,
  "set-speed": running,
  complete: ["ready", "standby"],
  dismiss: ["concluded"],
  finalize: ["pending"],
  change: running
}

/**
 * Whether `verb` is accepted in `status`.
 *
 * @since 0.1.0
 * @category tables
 */
export const isAllowed = (verb: JobVerb, status: JobStatus): boolean => acceptedIn[verb].includes(status)
