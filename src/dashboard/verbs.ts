/**
 * The verbs a job's buttons apply, as data: the API request each makes, the
 * verb of the state machine's table that governs it, and its QMP command.
 *
 * A button is enabled when `GET /api/tables` accepts its verb in the job's
 * status, and when the engine's further checks would pass; otherwise its
 * reason is the engine's own text, in QEMU's words and QEMU's order
 * (`resume` looks for the user's pause before the table, `pause` after it).
 */
import { segment, type Tables } from "./api.ts"
import type { QmpCommand } from "./qmp.ts"
import type { JobRow } from "./store.ts"

export type VerbName = "pause" | "resume" | "cancel" | "force-cancel" | "complete" | "finalize" | "dismiss" | "speed"

export interface Verb {
  readonly name: VerbName
  readonly label: string
  /** The verb of `acceptedIn`. */
  readonly tableVerb: string
  readonly path: (id: string) => string
  readonly body: (speed: number) => unknown
  readonly qmp: (id: string, speed: number) => QmpCommand
  /** A check the engine makes besides the table, with its text: before the table's (`resume`) or after it. */
  readonly before?: (row: JobRow) => string | undefined
  readonly after?: (row: JobRow) => string | undefined
}

const jobPath = (verb: string) => (id: string) => `/api/jobs/${segment(id)}/${verb}`
const noBody = () => ({})

export const verbs: Readonly<Record<VerbName, Verb>> = {
  pause: {
    name: "pause",
    label: "Pause",
    tableVerb: "pause",
    path: jobPath("pause"),
    body: noBody,
    qmp: (id) => ({ execute: "job-pause", arguments: { id } }),
    after: (row) => row.view.userPaused ? "Job is already paused" : undefined
  },
  resume: {
    name: "resume",
    label: "Resume",
    tableVerb: "resume",
    path: jobPath("resume"),
    body: noBody,
    qmp: (id) => ({ execute: "job-resume", arguments: { id } }),
    before: (row) => row.view.userPaused ? undefined : "Can't resume a job that was not paused"
  },
  cancel: {
    name: "cancel",
    label: "Cancel",
    tableVerb: "cancel",
    path: jobPath("cancel"),
    body: () => ({ force: false }),
    qmp: (id) => ({ execute: "block-job-cancel", arguments: { device: id } })
  },
  "force-cancel": {
    name: "force-cancel",
    label: "Force cancel",
    tableVerb: "cancel",
    path: jobPath("cancel"),
    body: () => ({ force: true }),
    qmp: (id) => ({ execute: "job-cancel", arguments: { id } })
  },
  complete: {
    name: "complete",
    label: "Complete",
    tableVerb: "complete",
    path: jobPath("complete"),
    body: noBody,
    qmp: (id) => ({ execute: "job-complete", arguments: { id } })
  },
  finalize: {
    name: "finalize",
    label: "Finalize",
    tableVerb: "finalize",
    path: jobPath("finalize"),
    body: noBody,
    qmp: (id) => ({ execute: "job-finalize", arguments: { id } })
  },
  dismiss: {
    name: "dismiss",
    label: "Dismiss",
    tableVerb: "dismiss",
    path: jobPath("dismiss"),
    body: noBody,
    qmp: (id) => ({ execute: "job-dismiss", arguments: { id } })
  },
  speed: {
    name: "speed",
    label: "Set speed",
    tableVerb: "set-speed",
    path: jobPath("speed"),
    body: (speed) => ({ speed }),
    qmp: (id, speed) => ({ execute: "block-job-set-speed", arguments: { device: id, speed } })
  }
}

/** The engine's refusal of a verb the table does not accept (`VerbNotAllowed`). */
export const verbNotAllowed = (id: string, status: string, verb: string): string =>
  `Job '${id}' in state '${status}' cannot accept command verb '${verb}'`

/** Why the verb would be refused now, or `undefined` if it would be accepted. */
export const refusal = (verb: Verb, row: JobRow, tables: Tables): string | undefined => {
  // A dismissed job is no longer there.
  if (row.dismissedAt !== undefined) return "Job not found"
  const before = verb.before?.(row)
  if (before !== undefined) return before
  if (!(tables.acceptedIn[verb.tableVerb] ?? []).includes(row.status)) {
    return verbNotAllowed(row.id, row.status, verb.tableVerb)
  }
  return verb.after?.(row)
}

/**
 * What soft and force cancel mean for a job of this type, in one line
 * (docs/drivers.md): only a driver with a notion of convergence makes a soft
 * cancel different.
 */
export const cancelExplanation = (type: string): string => {
  switch (type) {
    case "mirror":
      return "mirror: in READY a soft cancel stops syncing and keeps the copy as of its last round (the job completes); " +
        "before READY, and force always, it stops and leaves the target as it was."
    case "backup":
      return "backup has no soft cancel: either one stops the copy, leaves the target as it was " +
        "and aborts the job's transaction."
    default:
      return `${type === "" ? "this job" : type}: a soft cancel is what its driver makes of it; ` +
        "a force cancel stops it at once and aborts its transaction."
  }
}
