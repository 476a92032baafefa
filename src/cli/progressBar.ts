/**
 * A progress display for one job: bytes done and total, percentage, rate and
 * time left.
 *
 * On a terminal it is one line, redrawn in place (`\r`, clear line), with a
 * bar sized to the terminal's width (the status word always shows; a narrow
 * terminal gets a shorter bar, then fewer fields); messages are printed above
 * it. Anywhere else (a pipe, a file, a CI log) it prints plain lines, only
 * with news: the first once the size of the work is known, one whenever the
 * status changes, and one when the progress moved, at most once a second
 * while running (once in ten seconds otherwise). A job that stands still
 * prints nothing.
 *
 * A job shows an ETA only while it runs, and 100% once it has ended well,
 * even an empty one.
 *
 * The rate is measured over the last few seconds of samples, so a paused or
 * throttled job shows its current rate, not its average.
 */
import { RateMeter } from "../RateMeter.ts"

export interface Progress {
  readonly current: number
  readonly total: number
}

const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]

/** `0 B`, `512 B`, `1.5 KiB`, `12.3 MiB`, `1.02 GiB` (three significant digits from KiB on). */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes) || bytes < 0) return "?"
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  if (unit === 0) return `${Math.round(value)} B`
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2
  return `${value.toFixed(digits)} ${units[unit]}`
}

/** Elapsed time: `0.04 s`, `12.3 s`, then `m:ss` / `h:mm:ss`. */
export const formatElapsed = (seconds: number): string =>
  seconds < 60 ? `${Math.max(0, seconds).toFixed(seconds < 1 ? 2 : 1)} s` : formatDuration(seconds)

/** A rate in bytes per second, `-` when unknown. */
export const formatRate = (bytesPerSecond: number | undefined): string =>
  bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) ? "-" : `${formatBytes(bytesPerSecond)}/s`

/** `m:ss` or `h:mm:ss`; `-:--` when unknown. */
export const formatDuration = (seconds: number | undefined): string => {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "-:--"
  const whole = Math.ceil(seconds)
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = whole % 60
  const ss = String(s).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`
}

/**
 * How far a job got, for its display: its progress, its status, and whether
 * it ended well — a job that did, did everything, even when there was nothing
 * to do (an empty file: 0 B of 0 B).
 */
export interface Shown {
  readonly status?: string | undefined
  readonly succeeded?: boolean | undefined
}

/** Whether everything is done: all of a known total, or a job that ended well. */
const allDone = (progress: Progress, shown: Shown): boolean =>
  shown.succeeded === true || (progress.total > 0 && progress.current >= progress.total)

/** Done as a fraction in [0, 1]; an empty job (total 0) counts as not started, until it has ended well. */
export const fraction = (progress: Progress, shown: Shown = {}): number =>
  allDone(progress, shown) ? 1 : progress.total <= 0 ? 0 : Math.min(1, Math.max(0, progress.current / progress.total))

/** ` 42%`: whole percents, 100% only when everything is done. */
export const formatPercent = (progress: Progress, shown: Shown = {}): string => {
  const percent = allDone(progress, shown) ? 100 : Math.min(99, Math.floor(fraction(progress) * 100))
  return `${String(percent).padStart(3)}%`
}

/** `[██████░░░░]` of `width` cells inside the brackets. */
export const renderBar = (progress: Progress, width: number, shown: Shown = {}): string => {
  const cells = Math.max(1, width)
  const filled = Math.round(fraction(progress, shown) * cells)
  return `[${"█".repeat(filled)}${"░".repeat(cells - filled)}]`
}

/** Seconds left at `rate`, if it can be told. */
export const eta = (progress: Progress, rate: number | undefined): number | undefined =>
  rate === undefined || rate <= 0 || progress.total <= 0 ? undefined : Math.max(0, progress.total - progress.current) / rate

/**
 * The fields of a progress line, most important first: done / total, the
 * percentage, the rate, and the time left — only while the job runs and has
 * something left to do (a paused, READY, finished or cancelled job has no ETA).
 */
const fields = (progress: Progress, rate: number | undefined, shown: Shown): ReadonlyArray<string> => {
  const running = (shown.status === undefined || shown.status === "running") && !allDone(progress, shown)
  return [
    `${formatBytes(progress.current)} / ${formatBytes(progress.total)}`,
    formatPercent(progress, shown).trim(),
    formatRate(rate),
    ...(running ? [`ETA ${formatDuration(eta(progress, rate))}`] : [])
  ]
}

/** `12.0 MiB / 30.0 MiB  40%  5.00 MiB/s  ETA 0:04` (no ETA once the job no longer runs, or is done) */
export const describe = (progress: Progress, rate: number | undefined, shown: Shown = {}): string =>
  fields(progress, rate, shown).join("  ")

export interface ProgressBarOptions {
  /** What the line starts with, e.g. `backup`. */
  readonly label: string
  /** Redraw one line in place (a terminal) or print plain lines. */
  readonly interactive: boolean
  /** Writes text as it is (no newline added). */
  readonly write: (text: string) => void
  /** The terminal's width, for the bar (interactive only). */
  readonly columns?: () => number | undefined
  /**
   * Plain mode: at most one line per this many milliseconds while the job
   * runs (default 1000), and per ten times as many in any other status
   * (a READY mirror that follows a busy source).
   */
  readonly plainIntervalMillis?: number
}

const clearLine = "\r\x1b[2K"

/** The fewest cells a bar is drawn with; with less room there is no bar. */
const minimumBar = 5
const maximumBar = 40

/** Statuses in which the size of the work may still be unknown (0 B / 0 B is no news). */
const starting = new Set(["created", "running"])

export class ProgressBar {
  private readonly options: ProgressBarOptions
  private readonly meter = new RateMeter()
  private last: { progress: Progress; status: string; succeeded: boolean } | undefined
  /** Plain mode: what the last line said, and when. */
  private printed: { status: string; progress: string; at: number } | undefined
  private drawn = false

  constructor(options: ProgressBarOptions) {
    this.options = options
  }

  /** The rate measured so far. */
  get rate(): number | undefined {
    return this.meter.rate
  }

  /**
   * A new sample at `now` (milliseconds); redraws, or prints a plain line when
   * there is news: a new status, or progress at most once per interval.
   * Nothing is shown until the size of the work is known (or the job has
   * moved on: an empty file). `succeeded`: the job has ended well.
   */
  update(progress: Progress, status: string, now: number, succeeded: boolean = false): void {
    this.meter.add(now, progress.current)
    if (progress.total <= 0 && !succeeded && starting.has(status)) return
    this.last = { progress, status, succeeded }
    if (this.options.interactive) {
      this.draw()
      return
    }
    const progressNow = `${progress.current}/${progress.total}/${succeeded}`
    const interval = (this.options.plainIntervalMillis ?? 1000) * (status === "running" ? 1 : 10)
    const printed = this.printed
    const due = printed === undefined || printed.status !== status ||
      (printed.progress !== progressNow && now - printed.at >= interval)
    if (!due) return
    this.printed = { status, progress: progressNow, at: now }
    this.options.write(`${this.plainLine()}\n`)
  }

  /** A message on a line of its own; on a terminal the bar is redrawn below it. */
  note(message: string): void {
    if (this.options.interactive && this.drawn) {
      this.options.write(`${clearLine}${message}\n`)
      this.draw()
    } else {
      this.options.write(`${message}\n`)
    }
  }

  /** The last state, drawn once more and ended with a newline (on a terminal). */
  finish(): void {
    if (this.options.interactive && this.drawn) {
      this.draw()
      this.options.write("\n")
      this.drawn = false
    }
  }

  private plainLine(): string {
    const { progress, status, succeeded } = this.last!
    return `${this.options.label}: ${status}  ${describe(progress, this.meter.rate, { status, succeeded })}`
  }

  /**
   * `label [bar] done / total  percent  rate  ETA  status`, within the
   * terminal's width less its last column (which would wrap on some
   * terminals). The status always shows: when the line is too long the bar
   * shrinks (to 5 cells, then goes), then the ETA goes, then the rate, then
   * the byte counts.
   */
  private draw(): void {
    if (this.last === undefined) return
    const { progress, status, succeeded } = this.last
    const shown = { status, succeeded }
    const room = Math.max(1, (this.options.columns?.() || 80) - 1) // 0 or undefined: not known
    const all = fields(progress, this.meter.rate, shown)
    let line: string | undefined
    for (let kept = all.length; kept >= 1 && line === undefined; kept--) {
      // Without the bytes, the percentage still shows.
      const text = [...(kept === 1 ? [all[1]!] : all.slice(0, kept)), status].join("  ")
      const cells = Math.min(maximumBar, room - this.options.label.length - text.length - 4) // spaces, brackets
      if (cells >= minimumBar) line = `${this.options.label} ${renderBar(progress, cells, shown)} ${text}`
      else if (this.options.label.length + 1 + text.length <= room) line = `${this.options.label} ${text}`
    }
    // Narrower still: the status, with the label if it fits.
    line ??= this.options.label.length + 1 + status.length <= room ? `${this.options.label} ${status}` : status.slice(0, room)
    this.options.write(`${clearLine}${line}`)
    this.drawn = true
  }
}
