/**
 * The invariants every run must satisfy, checked on its record once the `Jobs`
 * scope has closed. Each returns human-readable violations (empty when it holds).
 */
import type { JobEvent } from "../../src/JobEvent.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import { shortEvent } from "../helpers/eventRecorder.ts"
import type { CallbackName } from "../../src/testing.ts"
import type { JobRun, RunRecord } from "./runScenario.ts"

/** One job's events as short strings: statuses, and READY, PENDING, COMPLETED, CANCELLED. */
export const eventTrace = (events: ReadonlyArray<JobEvent>, id: string): Array<string> =>
  events.filter((e) => e.id === id).map((e) => shortEvent(e, false))

export const statusHistory = (events: ReadonlyArray<JobEvent>, id: string): Array<JobStatus.JobStatus> =>
  events.flatMap((e) => e._tag === "StatusChange" && e.id === id ? [e.status] : [])

const isSubsequence = <A>(small: ReadonlyArray<A>, big: ReadonlyArray<A>): boolean => {
  let i = 0
  for (const x of big) if (i < small.length && small[i] === x) i++
  return i === small.length
}

const show = (xs: ReadonlyArray<string>) => `[${xs.join(", ")}]`

/** (a) Every status change is an edge of the transition table, starting from `created`. */
export const checkTransitions = (jr: JobRun, history: ReadonlyArray<JobStatus.JobStatus>): Array<string> => {
  const out: Array<string> = []
  if (history.length > 0 && history[0] !== "created") out.push(`${jr.id}: first status ${history[0]}, not created`)
  for (let i = 1; i < history.length; i++) {
    const from = history[i - 1]!
    const to = history[i]!
    if (from === to) out.push(`${jr.id}: status change event ${from} -> ${to} repeats the status`)
    else if (!JobStatus.canTransition(from, to)) out.push(`${jr.id}: illegal transition ${from} -> ${to}`)
  }
  return out
}

/**
 * (d) The event stream is the job's status history: the statuses read between
 * steps appear in it in order, and it ends with `concluded`, `null` (or, for a
 * job that failed early, is exactly `created`, `null`).
 */
export const checkHistory = (
  jr: JobRun,
  history: ReadonlyArray<JobStatus.JobStatus>,
  finished: boolean
): Array<string> => {
  const out: Array<string> = []
  if (!isSubsequence(jr.seen, history)) {
    out.push(`${jr.id}: statuses seen ${show(jr.seen)} are not a subsequence of the events ${show(history)}`)
  }
  if (!finished) return out
  if (jr.makeFails) {
    if (history.join() !== "created,null") out.push(`${jr.id} failed early but its events are ${show(history)}`)
    return out
  }
  const final = jr.job?.status
  if (final !== "null") out.push(`${jr.id}: status ${final} after the Jobs scope closed, expected null`)
  if (history.slice(-2).join() !== "concluded,null") {
    out.push(`${jr.id}: events ${show(history)} do not end with concluded, null`)
  }
  if (!jr.started && history.join() !== "created,aborting,concluded,null") {
    out.push(`${jr.id} never started but its events are ${show(history)}`)
  }
  return out
}

/**
 * (c) Callbacks: a started job gets `run` at most once, exactly one of `commit`/`abort`,
 * then `clean` once, then `free` once; a never-started job gets `abort`, `clean`,
 * `free` and no `run`; a job whose `make` failed gets nothing else. No callback
 * but `free` follows `clean`. `pause` and `resume` hooks come in pairs (unless
 * `pause` itself failed).
 */
export const checkCallbacks = (jr: JobRun, calls: ReadonlyArray<CallbackName>): Array<string> => {
  const out: Array<string> = []
  const count = (name: CallbackName) => calls.filter((c) => c === name).length
  const expect = (name: CallbackName, n: number) => {
    if (count(name) !== n) out.push(`${jr.id}: ${name} called ${count(name)} times, expected ${n}; calls ${show(calls)}`)
  }
  if (jr.makeFails) {
    if (calls.join() !== "make") out.push(`${jr.id} failed in make but got ${show(calls)}`)
    return out
  }
  if (jr.started) {
    // Not exactly once: a force cancel that reaches the job at its first pause point
    // (started while paused) interrupts it before `run` is ever called.
    if (count("run") > 1) out.push(`${jr.id}: run called ${count("run")} times; calls ${show(calls)}`)
    if (count("commit") + count("abort") !== 1) {
      out.push(`${jr.id}: commit ${count("commit")} + abort ${count("abort")} times, expected one; calls ${show(calls)}`)
    }
  } else {
    expect("run", 0)
    expect("commit", 0)
    expect("prepare", 0)
    expect("abort", 1)
    expect("pause", 0)
    expect("resume", 0)
  }
  expect("clean", 1)
  expect("free", 1)
  if (count("prepare") > 1) out.push(`${jr.id}: prepare called ${count("prepare")} times`)
  const order = ["make", "run", "prepare", "commit|abort", "clean", "free"]
  const rank = (c: CallbackName) => order.indexOf(c === "commit" || c === "abort" ? "commit|abort" : c)
  const lifecycle = calls.filter((c) => rank(c) >= 0)
  for (let i = 1; i < lifecycle.length; i++) {
    if (rank(lifecycle[i - 1]!) > rank(lifecycle[i]!)) {
      out.push(`${jr.id}: ${lifecycle[i]} after ${lifecycle[i - 1]}; calls ${show(calls)}`)
      break
    }
  }
  // `clean` ends the job's work: after it only `free` may come, and nothing after `free`.
  const clean = calls.indexOf("clean")
  const late = clean < 0 ? [] : calls.slice(clean + 1).filter((c, i, rest) => c !== "free" || i < rest.length - 1)
  if (late.length > 0) out.push(`${jr.id}: only free may follow clean, got ${show(calls.slice(clean + 1))}; calls ${show(calls)}`)
  const pauseFails = jr.driver.failing.has("pause")
  if (pauseFails ? count("resume") > count("pause") : count("resume") !== count("pause")) {
    out.push(`${jr.id}: ${count("pause")} pause hooks but ${count("resume")} resume hooks; calls ${show(calls)}`)
  }
  return out
}

/**
 * The block-job events: READY right after each RUNNING → READY, PENDING right
 * after `pending` for manual-finalize jobs only, and for a started job exactly
 * one COMPLETED or CANCELLED (CANCELLED iff force-cancelled) right before `concluded`.
 */
export const checkJobEvents = (jr: JobRun, trace: ReadonlyArray<string>): Array<string> => {
  const out: Array<string> = []
  const statusesOnly = trace.filter((t) => t === t.toLowerCase())
  let readyEdges = 0
  for (let i = 1; i < statusesOnly.length; i++) if (statusesOnly[i - 1] === "running" && statusesOnly[i] === "ready") readyEdges++
  const count = (t: string) => trace.filter((x) => x === t).length
  if (count("READY") !== readyEdges) out.push(`${jr.id}: ${count("READY")} READY events for ${readyEdges} RUNNING -> READY; ${show(trace)}`)
  trace.forEach((t, i) => {
    if (t === "READY" && trace[i - 1] !== "ready") out.push(`${jr.id}: READY not right after ready; ${show(trace)}`)
    if (t === "PENDING" && trace[i - 1] !== "pending") out.push(`${jr.id}: PENDING not right after pending; ${show(trace)}`)
    if ((t.startsWith("COMPLETED") || t === "CANCELLED") && trace[i + 1] !== "concluded") {
      out.push(`${jr.id}: ${t} not right before concluded; ${show(trace)}`)
    }
  })
  const pendings = statusesOnly.filter((s) => s === "pending").length
  if (count("PENDING") !== (jr.spec.manualFinalize ? pendings : 0)) {
    out.push(`${jr.id} (manualFinalize=${jr.spec.manualFinalize}): ${count("PENDING")} PENDING events; ${show(trace)}`)
  }
  const finals = trace.filter((t) => t.startsWith("COMPLETED") || t === "CANCELLED")
  if (!jr.started || jr.makeFails) {
    if (finals.length > 0) out.push(`${jr.id} never started but got ${show(finals)}`)
  } else if (finals.length !== 1) {
    out.push(`${jr.id}: ${finals.length} COMPLETED/CANCELLED events; ${show(trace)}`)
  } else if ((finals[0] === "CANCELLED") !== (jr.job?.isCancelled ?? false)) {
    out.push(`${jr.id}: ${finals[0]} but isCancelled=${jr.job?.isCancelled}; ${show(trace)}`)
  }
  return out
}

/**
 * A job whose cancel was hard (QEMU: force_cancel) is really cancelled: it
 * never commits, and (unless a callback on the cancel path failed it first) it
 * ends force-cancelled, which gives it a CANCELLED event if it started.
 */
export const checkHardCancel = (jr: JobRun, calls: ReadonlyArray<CallbackName>): Array<string> => {
  if (jr.hardCancelledIn === undefined) return []
  const out: Array<string> = []
  if (calls.includes("commit")) {
    out.push(`${jr.id} was hard-cancelled in ${jr.hardCancelledIn} but committed; calls ${show(calls)}`)
  }
  // A failing callback on the cancel path (the driver's `cancel`, `userResume`, or a
  // pause hook) fails the job instead, by the driver contract: then it may end failed.
  const failsOnCancelPath = ["cancel", "userResume", "pause", "resume"].some((c) =>
    jr.driver.failing.has(c as CallbackName)
  )
  if (jr.job !== undefined && !jr.job.isCancelled && !failsOnCancelPath) {
    out.push(`${jr.id} was hard-cancelled in ${jr.hardCancelledIn} but isCancelled is false (error: ${jr.job.error})`)
  }
  return out
}

/** A shared transaction ends all committed or all aborted, and runs every `prepare` before any `commit`. */
export const checkTxn = (run: RunRecord): Array<string> => {
  const out: Array<string> = []
  const members = run.jobs.filter((jr) => jr.spec.sharedTxn && !jr.makeFails)
  const ends = members.map((jr) => {
    const calls = run.calls.filter((c) => c.job === jr.id).map((c) => c.callback)
    return calls.includes("commit") ? "commit" : calls.includes("abort") ? "abort" : "none"
  })
  if (new Set(ends).size > 1) {
    out.push(`shared transaction ended mixed: ${members.map((jr, i) => `${jr.id}:${ends[i]}`).join(" ")}`)
  }
  const ids = new Set(members.map((jr) => jr.id))
  const txnCalls = run.calls.filter((c) => ids.has(c.job))
  const firstCommit = txnCalls.findIndex((c) => c.callback === "commit")
  const lastPrepare = txnCalls.findLastIndex((c) => c.callback === "prepare")
  if (firstCommit >= 0 && lastPrepare > firstCommit) {
    out.push(`shared transaction: a prepare after a commit; ${txnCalls.map((c) => `${c.job}.${c.callback}`).join(" ")}`)
  }
  return out
}

const canceled = "Operation canceled"

const messagesOf = (jr: JobRun, callbacks: ReadonlyArray<CallbackName>): Array<string> => {
  const out: Array<string> = []
  for (const c of jr.spec.params.fail ?? []) if (callbacks.includes(c)) out.push(`test job: ${c} failed`)
  for (const c of jr.spec.params.die ?? []) if (callbacks.includes(c)) out.push(`test job: ${c} died`)
  return out
}

/**
 * The errors a member can end with of its own (not `Operation canceled`): its `run`
 * failing or dying, or a callback that fails the job (the job's own `pause`/`resume`
 * hooks, `userResume` or `cancel` called on its behalf, `prepare`).
 */
export const ownErrors = (jr: JobRun): ReadonlySet<string> => {
  const out = new Set(messagesOf(jr, ["run", "pause", "resume", "userResume", "cancel", "prepare"]))
  if (jr.spec.params.result === "fail") out.add("test job: run failed")
  if (jr.spec.params.result === "die") out.add("test job: run died")
  return out
}

/** The errors a committed member can end with: a failing `commit`, `clean` or `free` is kept as its error. */
const afterCommitErrors = (jr: JobRun): ReadonlySet<string> => new Set(messagesOf(jr, ["commit", "clean", "free"]))

/**
 * The shared transaction as a whole (spec §5):
 * - `txn.members` lists the members in creation order;
 * - `JobTxn.awaitOutcome` (called before and after) agrees with the callbacks:
 *   Committed ⇔ every member got `commit`, Aborted ⇔ every member got `abort`;
 * - `prepare`s run newest member first (QEMU's order) and stop at the first that fails;
 * - committed: every member got `prepare` once, went WAITING → PENDING (all
 *   together, after every member was WAITING) → CONCLUDED, got `commit` and `clean`
 *   newest member first, one member after the other, and has no error but one from
 *   its own `commit`/`clean`/`free`;
 * - aborted: every member went ABORTING → CONCLUDED; the outcome's error is the
 *   own error of a member that keeps it, or `Operation canceled` after a hard cancel;
 *   every member ends with an error of its own (from a callback it did get) or
 *   `Operation canceled`, and a member that cannot fail by itself with `Operation canceled`;
 * - a scenario in which nothing can fail or cancel it commits, with nothing left to cancel.
 */
export const checkTxnOutcome = (run: RunRecord): Array<string> => {
  const txn = run.txn
  if (txn === undefined || !run.finished) return []
  const out: Array<string> = []
  const members = run.jobs.filter((jr) => jr.spec.sharedTxn && !jr.makeFails)
  const ids = members.map((jr) => jr.id)
  if (txn.members.join() !== ids.join()) {
    out.push(`txn.members is [${txn.members.join(", ")}], the members created are [${ids.join(", ")}]`)
  }
  if (members.length === 0) return out
  const outcome = txn.outcome
  if (outcome === undefined) return [...out, "the transaction has no outcome after the Jobs scope closed"]
  const shown = outcome._tag === "Committed" ? "Committed" : `Aborted(${outcome.error})`
  if (JSON.stringify(txn.earlyOutcome) !== JSON.stringify(outcome)) {
    out.push(`JobTxn.awaitOutcome called early returned ${JSON.stringify(txn.earlyOutcome)}, later ${shown}`)
  }
  const callsOf = (jr: JobRun) => run.calls.filter((c) => c.job === jr.id).map((c) => c.callback)
  const rank = new Map(ids.map((id, i) => [id, i]))
  const memberCalls = run.calls.filter((c) => rank.has(c.job))
  const showCalls = (names: ReadonlyArray<CallbackName>) =>
    memberCalls.filter((c) => names.includes(c.callback)).map((c) => `${c.job}.${c.callback}`).join(" ")
  const prepares = memberCalls.filter((c) => c.callback === "prepare").map((c) => rank.get(c.job)!)
  if (prepares.some((r, i) => i > 0 && r >= prepares[i - 1]!)) {
    out.push(`prepares not newest member first: ${showCalls(["prepare"])}`)
  }
  const failedPrepare = prepares.findIndex((r) => ownErrors(members[r]!).has("test job: prepare failed") ||
    ownErrors(members[r]!).has("test job: prepare died"))
  if (failedPrepare >= 0 && failedPrepare < prepares.length - 1) {
    out.push(`prepares went on after one failed: ${showCalls(["prepare"])}`)
  }
  const expectedEnd = outcome._tag === "Committed" ? "commit" : "abort"
  for (const jr of members) {
    const calls = callsOf(jr)
    if (!calls.includes(expectedEnd)) out.push(`transaction ${shown} but ${jr.id} got [${calls.join(", ")}]`)
  }
  const histories = members.map((jr) => statusHistory(run.events, jr.id))
  const errors = members.map((jr) => jr.job?.error)
  const showErrors = () => members.map((jr, i) => `${jr.id}:${errors[i] ?? "-"}`).join(" ")

  if (outcome._tag === "Committed") {
    members.forEach((jr, i) => {
      const prepares = callsOf(jr).filter((c) => c === "prepare").length
      if (prepares !== 1) out.push(`transaction committed but ${jr.id} got prepare ${prepares} times`)
      const h = histories[i]!
      if (h.slice(-4).join() !== "waiting,pending,concluded,null") {
        out.push(`transaction committed but ${jr.id}'s statuses are [${h.join(", ")}]`)
      }
      const error = errors[i]
      if (error !== undefined && !afterCommitErrors(jr).has(error)) {
        out.push(`transaction committed but ${jr.id} has the error '${error}'`)
      }
    })
    const finalizing = memberCalls.filter((c) => c.callback === "commit" || c.callback === "clean")
    const inOrder = members.slice().reverse().flatMap((jr) => [`${jr.id}.commit`, `${jr.id}.clean`])
    if (finalizing.map((c) => `${c.job}.${c.callback}`).join(" ") !== inOrder.join(" ")) {
      out.push(`commits not member after member, newest first: ${showCalls(["commit", "clean"])}`)
    }
    // All members move to PENDING together, once every member is WAITING.
    const memberIds = new Set(ids)
    const changes = run.events.flatMap((e) => e._tag === "StatusChange" && memberIds.has(e.id) ? [e] : [])
    const pendings = changes.flatMap((e, i) => e.status === "pending" ? [i] : [])
    const lastWaiting = changes.findLastIndex((e) => e.status === "waiting")
    const shownChanges = changes.map((e) => `${e.id}:${e.status}`).join(" ")
    if (pendings.length !== members.length || pendings[pendings.length - 1]! - pendings[0]! !== members.length - 1) {
      out.push(`the members did not move to PENDING together: ${shownChanges}`)
    } else if (lastWaiting > pendings[0]!) {
      out.push(`a member moved to WAITING after the others moved to PENDING: ${shownChanges}`)
    }
  } else {
    members.forEach((jr, i) => {
      const h = histories[i]!
      if (h.slice(-3).join() !== "aborting,concluded,null") {
        out.push(`transaction aborted but ${jr.id}'s statuses are [${h.join(", ")}]`)
      }
      const error = errors[i]
      // An error of its own comes from a callback the member did get.
      const calls = callsOf(jr)
      const own = new Set([...ownErrors(jr)].filter((e) => calls.some((c) => e.startsWith(`test job: ${c} `))))
      if (own.size === 0 ? error !== canceled : error !== canceled && !own.has(error ?? "")) {
        out.push(
          `transaction aborted: ${jr.id} ends with '${error}', expected ${
            [...own, canceled].map((e) => `'${e}'`).join(" or ")
          }`
        )
      }
    })
    if (outcome.error === canceled) {
      const hardCancel = txn.cancelled || members.some((jr) => jr.hardCancelledIn !== undefined)
      if (!hardCancel) {
        out.push(`transaction aborted with '${canceled}' but nothing cancelled it; errors ${showErrors()}`)
      }
    } else if (!members.some((jr, i) => errors[i] === outcome.error && ownErrors(jr).has(outcome.error))) {
      out.push(
        `transaction aborted with '${outcome.error}' but no member keeps it as its own error; errors ${showErrors()}`
      )
    }
  }
  if (txn.mustCommit) {
    if (outcome._tag !== "Committed") out.push(`nothing could fail or cancel the transaction, but it ended ${shown}`)
    if (txn.leftovers.length > 0) {
      out.push(`nothing could block the transaction, but [${txn.leftovers.join(", ")}] did not finish`)
    }
  }
  return out
}

export const checkRun = (run: RunRecord): Array<string> => {
  const out: Array<string> = []
  for (const entry of run.logs) {
    if (entry.level === "Error" || entry.level === "Fatal") out.push(`logged at ${entry.level}: ${entry.message}`)
  }
  for (const jr of run.jobs) {
    const history = statusHistory(run.events, jr.id)
    out.push(...checkTransitions(jr, history), ...checkHistory(jr, history, run.finished))
    if (!run.finished) continue
    const calls = run.calls.filter((c) => c.job === jr.id).map((c) => c.callback)
    out.push(
      ...checkCallbacks(jr, calls),
      ...checkJobEvents(jr, eventTrace(run.events, jr.id)),
      ...checkHardCancel(jr, calls)
    )
  }
  if (run.finished) out.push(...checkTxn(run), ...checkTxnOutcome(run))
  return out
}

/** What a failing run did, for the property's failure message: violations, steps, events, callbacks. */
export const failureReport = (run: RunRecord, violations: ReadonlyArray<string>): string => {
  const events = run.jobs.map((jr) => `  ${jr.id}: ${eventTrace(run.events, jr.id).join(", ")}`)
  const calls = run.jobs.map((jr) =>
    `  ${jr.id} ${JSON.stringify(jr.spec.params)}${jr.spec.manualFinalize ? " manualFinalize" : ""}: ${
      run.calls.filter((c) => c.job === jr.id).map((c) => c.callback).join(", ")
    } | error: ${jr.job?.error ?? "-"}`
  )
  return [
    "violations:",
    ...violations.map((v) => `  ${v}`),
    "trace:",
    ...run.trace.map((t) => `  ${t}`),
    "events:",
    ...events,
    "callbacks:",
    ...calls
  ].join("\n")
}
