/**
 * What must hold after a crash and a restart, checked on a run's record. Each
 * check returns readable violations (empty when it holds):
 *
 * 1. no job is lost, duplicated or invented;
 * 2. sequence numbers never repeat, and the store's event log is exactly what
 *    the first engine's subscriber saw, unchanged;
 * 3. every transaction is all-or-nothing, by the outcomes (`checkOutcomes`)
 *    and by the driver callbacks (`checkCallbacks`);
 * 4. after recovery every job has concluded, and each interrupted one carries
 *    the interrupted error.
 */
import { isDeepStrictEqual } from "node:util"
import type { JobEvent } from "../../src/JobEvent.ts"
import type { JobStatus } from "../../src/JobStatus.ts"
import type { CrashRun } from "./runCrash.ts"

const interruptedMessage = (status: JobStatus): string => `interrupted: the server stopped while the job was ${status}`

const statusesOf = (events: ReadonlyArray<JobEvent>, id: string): Array<JobStatus> =>
  events.flatMap((e) => e._tag === "StatusChange" && e.id === id ? [e.status] : [])

/** How a job concluded. */
export type Outcome = "succeeded" | "failed"

/** By its status history: from PENDING it succeeded, from ABORTING it did not. */
const outcomeOf = (history: ReadonlyArray<JobStatus>): Outcome | undefined => {
  const at = history.indexOf("concluded")
  if (at <= 0) return undefined
  return history[at - 1] === "pending" ? "succeeded" : history[at - 1] === "aborting" ? "failed" : undefined
}

/** The seq of the last event the store held at the restart: the recovery's events come after it. */
const lastStoredSeq = (run: CrashRun) => run.stored?.lastSeq ?? 0

/** 1. No job lost, none duplicated, none that was never created. */
export const checkJobs = (run: CrashRun): Array<string> => {
  const out: Array<string> = []
  const createdIds = new Set(run.created.map((job) => job.id))
  const listed = run.listAfter.map((row) => row.id)
  const listedSet = new Set(listed)
  if (listedSet.size !== listed.length) out.push(`an id appears twice in the list after recovery: [${listed.join(", ")}]`)
  const storedIds = (run.stored?.jobs ?? []).map((job) => job.id)
  if (new Set(storedIds).size !== storedIds.length) out.push(`an id appears twice in the store: [${storedIds.join(", ")}]`)
  for (const id of [...listed, ...storedIds]) {
    if (!createdIds.has(id)) out.push(`${id} is there after the restart, but no create of it ever returned`)
  }
  const before = lastStoredSeq(run)
  const dismissedBefore = new Set(
    run.seenBefore.flatMap((e) => e._tag === "StatusChange" && e.status === "null" ? [e.id] : [])
  )
  const dismissedInRecovery = new Set(
    run.replay.flatMap((e) => e._tag === "StatusChange" && e.status === "null" && e.seq > before ? [e.id] : [])
  )
  const byId = new Map(run.created.map((job) => [job.id, job]))
  // Every job the client was durably told of, and every job the store held, is accounted for exactly once.
  for (const id of new Set([...run.durablyCreated, ...storedIds])) {
    const places = [
      listedSet.has(id) ? "listed" : undefined,
      dismissedBefore.has(id) ? "dismissed before the cut" : undefined,
      dismissedInRecovery.has(id) ? "dismissed by the recovery" : undefined
    ].filter((place) => place !== undefined)
    const told = run.durablyCreated.has(id) ? "durably created" : "stored"
    if (places.length === 0) out.push(`${id} (${told}) is lost: not listed after recovery, and never dismissed`)
    else if (places.length > 1) out.push(`${id} (${told}) is ${places.join(" and ")}`)
    if (dismissedInRecovery.has(id)) {
      // Only a job that dismisses itself leaves at recovery: one with manual dismiss waits for its user.
      const job = byId.get(id)
      const started = statusesOf(run.replay, id).includes("running")
      if (job !== undefined && job.spec.manualDismiss && started) {
        out.push(`${id} has manual dismiss and had started, but the recovery dismissed it`)
      }
    }
  }
  // Nothing the store did not hold comes back, and nothing dismissed durably comes back.
  for (const id of listed) {
    if (!storedIds.includes(id)) out.push(`${id} is listed after recovery, but the store did not hold it`)
    if (dismissedBefore.has(id)) out.push(`${id} was dismissed before the cut, but is listed after recovery`)
  }
  return out
}

/** 2. Sequence numbers: increasing, never repeated; the store's log is what the first engine's subscriber saw. */
export const checkSequence = (run: CrashRun): Array<string> => {
  const out: Array<string> = []
  const increasing = (events: ReadonlyArray<JobEvent>, who: string) => {
    for (let i = 1; i < events.length; i++) {
      if (events[i]!.seq <= events[i - 1]!.seq) {
        out.push(`${who}: seq ${events[i]!.seq} comes after ${events[i - 1]!.seq}`)
        return
      }
    }
  }
  increasing(run.seenBefore, "the first engine's subscriber")
  increasing(run.replay, "the second engine's subscriber")
  const before = lastStoredSeq(run)
  const replayed = run.replay.filter((e) => e.seq <= before)
  const oldest = run.stored?.oldestSeq ?? 1
  // Every event seen before the cut is still there, unchanged, while the store keeps it.
  const replayedBySeq = new Map(replayed.map((e) => [e.seq, e]))
  for (const seen of run.seenBefore) {
    if (seen.seq < oldest) continue
    const again = replayedBySeq.get(seen.seq)
    if (again === undefined) out.push(`event ${seen.seq} was seen before the cut, but is not in the replay`)
    else if (!isDeepStrictEqual(again, seen)) {
      out.push(`event ${seen.seq} was seen before the cut as ${JSON.stringify(seen)}, replayed as ${JSON.stringify(again)}`)
    }
  }
  // And the store holds nothing the subscriber did not see: only committed events reach subscribers, and all of them do.
  const seenSeqs = new Set(run.seenBefore.map((e) => e.seq))
  for (const e of replayed) {
    if (!seenSeqs.has(e.seq)) out.push(`event ${e.seq} is in the store, but the first engine's subscriber never saw it`)
  }
  const lastSeen = run.seenBefore[run.seenBefore.length - 1]?.seq ?? 0
  if (lastSeen !== before) out.push(`the store's last seq is ${before}, the last event seen before the cut is ${lastSeen}`)
  if (before > 0 && replayed[0]?.seq !== oldest) {
    out.push(`the replay starts at ${replayed[0]?.seq ?? "nothing"}, the store keeps events from ${oldest}`)
  }
  return out
}

/** Each transaction's members (its key, as `CreatedJob.txn`), in creation order. */
const transactions = (run: CrashRun): Map<string, Array<string>> => {
  const members = new Map<string, Array<string>>()
  for (const job of run.created) members.set(job.txn, [...(members.get(job.txn) ?? []), job.id])
  return members
}

/** Each member's outcome, where its events show it concluded. */
const outcomes = (run: CrashRun, ids: ReadonlyArray<string>): Map<string, Outcome> => {
  const found = new Map<string, Outcome>()
  for (const id of ids) {
    const outcome = outcomeOf(statusesOf(run.replay, id))
    if (outcome !== undefined) found.set(id, outcome)
  }
  return found
}

/** The one way every member concluded, if they agree. */
const agreed = (found: ReadonlyMap<string, Outcome>): Outcome | undefined => {
  const kinds = new Set(found.values())
  return kinds.size === 1 ? kinds.values().next().value : undefined
}

/** 3, by the outcomes: each transaction's members concluded the same way, and the list agrees with the events. */
export const checkOutcomes = (run: CrashRun): Array<string> => {
  const out: Array<string> = []
  const rows = new Map(run.listAfter.map((row) => [row.id, row]))
  for (const [txn, ids] of transactions(run)) {
    const found = outcomes(run, ids)
    for (const [id, outcome] of found) {
      const row = rows.get(id)
      if (row !== undefined && (row.error === undefined) !== (outcome === "succeeded")) {
        out.push(`${id}: concluded ${outcome} by its events, but its row has error ${JSON.stringify(row.error)}`)
      }
    }
    if (new Set(found.values()).size > 1) {
      const shown = Array.from(found, ([id, outcome]) => `${id}:${outcome}`).join(" ")
      out.push(`${txn} is not all-or-nothing: ${shown}`)
    }
  }
  return out
}

/**
 * 3, by the driver callbacks (the first engine's up to the cut, then the
 * second's): no member got both `commit` and `abort`; none got `commit` in a
 * transaction that aborted, nor `abort` in one that committed.
 */
export const checkCallbacks = (run: CrashRun): Array<string> => {
  const out: Array<string> = []
  const callbacks = new Map<string, Array<string>>()
  for (const c of run.calls) callbacks.set(c.job, [...(callbacks.get(c.job) ?? []), c.callback])
  for (const [txn, ids] of transactions(run)) {
    const outcome = agreed(outcomes(run, ids))
    for (const id of ids) {
      const got = callbacks.get(id) ?? []
      const shown = `[${got.join(", ")}]`
      if (got.includes("commit") && got.includes("abort")) {
        out.push(`${id} (${txn}): its driver got both commit and abort: ${shown}`)
      }
      if (outcome === "failed" && got.includes("commit")) {
        out.push(`${id}: its transaction ${txn} aborted, but its driver got commit: ${shown}`)
      }
      if (outcome === "succeeded" && got.includes("abort")) {
        out.push(`${id}: its transaction ${txn} committed, but its driver got abort: ${shown}`)
      }
    }
  }
  return out
}

/** 4. Nothing is left half-way after recovery, and each interrupted job says why. */
export const checkRecovered = (run: CrashRun): Array<string> => {
  const out: Array<string> = []
  for (const row of run.listAfter) {
    if (row.status !== "concluded") out.push(`${row.id} is ${row.status} after recovery, not concluded`)
  }
  const report = run.report
  if (report === undefined) return out
  const stored = new Map((run.stored?.jobs ?? []).map((job) => [job.id, job]))
  const rows = new Map(run.listAfter.map((row) => [row.id, row]))
  const accounted = [...report.concluded, ...report.committed, ...report.interrupted.map((j) => j.id)]
  for (const job of stored.values()) {
    const times = accounted.filter((id) => id === job.id).length
    if (times !== 1) out.push(`${job.id} (stored ${job.status}) is in the recovery report ${times} times`)
  }
  if (report.resumed.length > 0) out.push(`the test driver cannot resume, yet the recovery resumed ${report.resumed.length}`)
  for (const { id, status } of report.interrupted) {
    const was = stored.get(id)
    if (was === undefined) {
      out.push(`${id} was interrupted but the store did not hold it`)
      continue
    }
    if (was.status !== status) out.push(`${id} was interrupted as ${status}, the store had it ${was.status}`)
    // A job that had already failed (ABORTING, or cancelled) keeps its own error.
    const expected = was.error ?? interruptedMessage(was.status)
    const row = rows.get(id)
    const completed = run.replay.find((e): e is Extract<JobEvent, { _tag: "Completed" }> =>
      e._tag === "Completed" && e.id === id && e.seq > lastStoredSeq(run)
    )
    const error = row !== undefined ? row.error : completed?.error
    const where = row !== undefined ? "its row" : "its Completed event"
    if (row === undefined && completed === undefined) {
      // Dismissed by the recovery without a final event: it had never started.
      if (was.status !== "created") out.push(`${id} was interrupted in ${was.status} but shows no outcome`)
      continue
    }
    if (error !== expected) {
      const got = JSON.stringify(error)
      out.push(`${id} was interrupted in ${was.status}: ${where} has error ${got}, expected ${JSON.stringify(expected)}`)
    }
  }
  for (const id of report.committed) {
    const row = rows.get(id)
    if (row !== undefined && row.error !== undefined) {
      out.push(`${id} was committed by the recovery but has error ${row.error}`)
    }
  }
  return out
}

export const crashReport = (run: CrashRun, violations: ReadonlyArray<string>): string => {
  const withError = (id: string, status: string, error: string | undefined) =>
    `${id}:${status}${error === undefined ? "" : `(${error})`}`
  const stored = (run.stored?.jobs ?? []).map((job) => withError(job.id, job.status, job.error))
  const storedTxns = (run.stored?.txns ?? []).map((txn) => `${txn.id}:${txn.phase}`)
  return [
    "violations:",
    ...violations.map((v) => `  ${v}`),
    `cut: ${run.cut}`,
    `created: ${run.created.map((job) => `${job.id}[${job.txn}${job.beforeCut ? "" : ", after the cut"}]`).join(" ")}`,
    `durably created: ${[...run.durablyCreated].join(" ")}`,
    `stored at the restart: ${stored.join(" ")}`,
    `stored transactions: ${storedTxns.join(" ")}`,
    `recovery: ${JSON.stringify(run.report)}`,
    `list after: ${run.listAfter.map((row) => withError(row.id, row.status, row.error)).join(" ")}`,
    `callbacks: ${run.calls.map((c) => `${c.job}.${c.callback}`).join(" ")}`,
    "trace:",
    ...run.trace.map((line) => `  ${line}`),
    "logs:",
    ...run.logs.map((line) => `  ${line}`)
  ].join("\n")
}
