/**
 * What the page knows about the jobs, kept from the API's messages:
 *
 * - the list (`GET /api/jobs`, or a reset's snapshot) at a sequence number;
 * - the event log after it, which alone moves a job from status to status,
 *   adds jobs (`created`) and dismisses them (`null`: the row stays, greyed,
 *   with how the job ended, until too many have piled up);
 * - the progress views, which fill in everything else (progress, rate, ETA,
 *   limit, transaction…) but never a status: a view may be older or newer
 *   than the events applied, and the log is the one order there is.
 *
 * Every job also keeps its events (its timeline) and its rate samples (its
 * chart). Changes only mark the store dirty; the page redraws once per frame.
 */
import type { JobEvent, JobStatus, JobsSnapshot, JobView, Progress, Reset } from "./api.ts"

export type Outcome = "completed" | "failed" | "cancelled"

export interface RateSample {
  readonly at: number
  readonly rate: number
}

export interface JobRow {
  readonly id: string
  /** The latest view; its status is not read (see `status`). */
  view: JobView
  /** From the event log. */
  status: JobStatus
  /** Whether a view has filled in the details (a job known only from its `created` event has none yet). */
  detailed: boolean
  outcome: Outcome | undefined
  error: string | undefined
  /** Creation order, for the default sort. */
  readonly order: number
  /** The sequence number of the event that dismissed it. */
  dismissedAt: number | undefined
  readonly events: Array<JobEvent>
  readonly rates: Array<RateSample>
}

/** Events kept per job, and rate samples (a minute at four a second). */
const eventsPerJob = 500
const ratesPerJob = 240
/** Dismissed jobs shown before the oldest go. */
const dismissedKept = 1000

const placeholder = (id: string, status: JobStatus): JobView => ({
  id,
  type: "",
  status,
  currentProgress: 0,
  totalProgress: 0,
  txn: null,
  manualFinalize: false,
  manualDismiss: false,
  speed: 0,
  rate: null,
  eta: null,
  busy: false,
  paused: false,
  userPaused: false
})

export class Store {
  readonly jobs = new Map<string, JobRow>()
  /** The sequence number of the last event applied. */
  seq = 0
  /** Bumped at every change: a view redraws when it differs from what it drew. */
  version = 0
  /** Bumped when jobs come or go, change status or are reordered: the filtered, sorted list must be made again. */
  listVersion = 0
  private nextOrder = 0
  private readonly dismissed: Array<string> = []
  /** Views of jobs whose `created` event has not come yet. */
  private readonly early = new Map<string, JobView>()
  private readonly onChange: () => void

  constructor(onChange: () => void) {
    this.onChange = onChange
  }

  /** Replaces everything with a list at its sequence number. */
  load(snapshot: JobsSnapshot | Reset): void {
    const old = this.jobs
    const kept = [...old.values()].filter((row) => row.dismissedAt !== undefined)
    this.jobs.clear()
    this.dismissed.length = 0
    // Dismissed rows stay shown; jobs listed again start afresh, their timeline kept.
    for (const row of kept) {
      this.jobs.set(row.id, row)
      this.dismissed.push(row.id)
    }
    for (const view of snapshot.jobs) {
      const previous = old.get(view.id)
      const row = this.newRow(view.id, view.status, view)
      if (previous !== undefined && previous.dismissedAt === undefined) {
        row.events.push(...previous.events)
        row.rates.push(...previous.rates)
        row.outcome = previous.outcome
      }
      this.jobs.set(view.id, row)
    }
    this.dismissed.splice(0, this.dismissed.length, ...this.dismissed.filter((id) => this.jobs.get(id)?.dismissedAt !== undefined))
    this.seq = snapshot.seq
    this.changed(true)
  }

  /**
   * One event of the log. Events up to the list's sequence number are
   * already in the list: they only fill in the jobs' timelines.
   */
  apply(event: JobEvent): void {
    if (event.seq <= this.seq) {
      this.remember(event)
      return
    }
    this.seq = event.seq
    let row = this.jobs.get(event.id)
    if (event._tag === "StatusChange" && event.status === "created") {
      if (row !== undefined && row.dismissedAt !== undefined) this.forgetDismissed(event.id)
      const early = this.early.get(event.id)
      this.early.delete(event.id)
      row = this.newRow(event.id, "created", early)
      this.jobs.set(event.id, row)
      row.events.push(event)
      this.changed(true)
      return
    }
    if (row === undefined) {
      // An event of a job the list did not have (it cannot happen with a consistent list): shown as it comes.
      row = this.newRow(event.id, event._tag === "StatusChange" ? event.status : "running", undefined)
      this.jobs.set(event.id, row)
    }
    this.record(row, event)
    if (event._tag === "StatusChange") {
      row.status = event.status
      if (event.status === "null") {
        row.dismissedAt = event.seq
        this.dismissed.push(row.id)
        while (this.dismissed.length > dismissedKept) this.jobs.delete(this.dismissed.shift()!)
      }
      this.changed(true)
    } else {
      this.changed(false)
    }
  }

  /** Views from the progress stream (or a POST's answer). */
  update(progress: Progress | { readonly jobs: ReadonlyArray<JobView> }): void {
    const now = Date.now()
    let any = false
    for (const view of progress.jobs) {
      const row = this.jobs.get(view.id)
      if (row === undefined || row.dismissedAt !== undefined) {
        this.early.set(view.id, view)
        continue
      }
      const newlyDetailed = !row.detailed
      row.view = view
      row.detailed = true
      if (view.error !== undefined) row.error = view.error
      if (view.rate !== null) {
        row.rates.push({ at: now, rate: view.rate })
        if (row.rates.length > ratesPerJob) row.rates.splice(0, row.rates.length - ratesPerJob)
      }
      any = true
      // A type or transaction now known may change what the filters and groups show.
      if (newlyDetailed) this.listVersion++
    }
    if (any) this.changed(false)
  }

  private newRow(id: string, status: JobStatus, view: JobView | undefined): JobRow {
    return {
      id,
      view: view ?? placeholder(id, status),
      status,
      detailed: view !== undefined,
      outcome: undefined,
      error: view?.error,
      order: this.nextOrder++,
      dismissedAt: undefined,
      events: [],
      rates: []
    }
  }

  /** An event already reflected by the list: its job's timeline and outcome. */
  private remember(event: JobEvent): void {
    const row = this.jobs.get(event.id)
    if (row === undefined || row.dismissedAt !== undefined) return
    // An id may have belonged to an earlier job: a job's timeline starts at its creation.
    if (event._tag === "StatusChange" && event.status === "created") {
      row.events.length = 0
      row.outcome = undefined
    }
    this.record(row, event)
    this.changed(false)
  }

  private record(row: JobRow, event: JobEvent): void {
    row.events.push(event)
    if (row.events.length > eventsPerJob) row.events.splice(0, row.events.length - eventsPerJob)
    if (event._tag === "Completed") {
      row.outcome = event.error === undefined ? "completed" : "failed"
      if (event.error !== undefined) row.error = event.error
    } else if (event._tag === "Cancelled") {
      row.outcome = "cancelled"
    }
  }

  private forgetDismissed(id: string): void {
    const at = this.dismissed.indexOf(id)
    if (at !== -1) this.dismissed.splice(at, 1)
    this.jobs.delete(id)
  }

  private changed(list: boolean): void {
    this.version++
    if (list) this.listVersion++
    this.onChange()
  }
}
