/**
 * The statuses a job moves through, and the table of which moves are legal.
 *
 * The table is QEMU's job state machine, kept as data so that the engine, the
 * docs' diagram and any UI all read the same source. The engine checks every
 * move against it in one place (`internal/jobRecord.ts`); a move outside the
 * table is a defect in the engine, never a user error.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * All statuses, in QEMU's (QAPI) order.
 *
 * @since 0.1.0
 * @category models
 */
export const all = [
  "undefined",
  "created",
  "running",
  "paused",
  "ready",
  "standby",
  "waiting",
  "pending",
  "aborting",
  "concluded",
  "null"
] as const

/**
 * @since 0.1.0
 * @category models
 */
export type JobStatus = typeof all[number]

/**
 * @since 0.1.0
 * @category schemas
 */
export const JobStatus: Schema.Literals<typeof all> = Schema.Literals(all)

/**
 * The transition table: for each status, the statuses it may move to.
 * `aborting → aborting` is legal (the outcome may be recorded twice) but emits no event.
 *
 * @since 0.1.0
 * @category tables
 */
export const transitions: { readonly [S in JobStatus]: ReadonlyArray<JobStatus> } = {
  undefined: ["created"],
  created: ["running", "aborting", "null"],
  running: ["paused", "ready", "waiting", "aborting"],
  paused: ["running"],
  ready: ["standby", "waiting", "aborting"],
  standby: ["ready"],
  waiting: ["pending", "aborting"],
  pending: ["aborting", "concluded"],
  aborting: ["aborting", "concluded"],
  concluded: ["null"],
  null: []
}

const index = new Map(all.map((s, i) => [s, i]))
const allowed: ReadonlyArray<boolean> = all.flatMap((from) => all.map((to) => transitions[from].includes(to)))

/**
 * Whether the table allows the move `from → to`.
 *
 * @since 0.1.0
 * @category tables
 */
export const canTransition = (from: JobStatus, to: JobStatus): boolean =>
  allowed[index.get(from)! * all.length + index.get(to)!]!

/**
 * READY or STANDBY: the job has converged and waits to be completed.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isReady = (status: JobStatus): boolean => status === "ready" || status === "standby"

/**
 * WAITING or later: `run` has returned and its outcome has been recorded.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isCompleted = (status: JobStatus): boolean =>
  status === "waiting" || status === "pending" || status === "aborting" || status === "concluded" ||
  status === "null"
