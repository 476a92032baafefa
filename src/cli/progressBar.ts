/**
 * A progress display for one job: bytes done and total, percentage, rate and
 * time left.
 *
 * On a terminal it is one line, redrawn in place (`\r`, clear line), with a
 * bar sized to the terminal's width; messages are printed above it. Anywhere
 * else (a pipe, a file, a CI log) it prints plain lines: one at the first
 * update, one whenever the status changes, and at most one per
 * `plainIntervalMillis` in between.
 *
 * The rate is measured over the last few seconds of samples, so a paused or
 * throttled job shows its current rate, not its average.
 */

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

/** Done as a fraction in [0, 1]; an empty job (total 0) counts as not started. */
export const fraction = (progress: Progress): number =>
  progress.total <= 0 ? 0 : Math.min(1, Math.max(0, progress.current / progress.total))

/** ` 42%`: whole percents, 100% only when everything is done. */
export const formatPercent = (progress: Progress): string => {
  const f = fraction(progress)
  const percent = progress.total > 0 && progress.current >= progress.total ? 100 : Math.min(99, Math.floor(f * 100))
  return `${String(percent).padStart(3)}%`
}

/** `[██████░░░░]` of `width` cells inside the brackets. */
export const renderBar = (progress: Progress, width: number): string => {
  const cells = Math.max(1, width)
  const filled = Math.round(fraction(progress) * cells)
  return `[${"█".repeat(filled)}${"░".repeat(cells - filled)}]`
}

/** Seconds left at `rate`, if it can be told. */
export const eta = (progress: Progress, rate: number | undefined): number | undefined =>
  rate === undefined || rate <= 0 || progress.total <= 0 ? undefined : Math.max(0, progress.total - progress.current) / rate

/** `12.0 MiB / 30.0 MiB  40%  5.00 MiB/s  ETA 0:04` (no ETA once everything is done) */
export const describe = (progress: Progress, rate: number | undefined): string => {
  const done = progress.total > 0 && progress.current >= progress.total
  return `${formatBytes(progress.current)} / ${formatBytes(progress.total)}  ${formatPercent(progress).trim()}  ` +
    `${formatRate(rate)}${done ? "" : `  ETA ${formatDuration(eta(progress, rate))}`}`
}

/**
 * The rate of a growing counter, over the samples of the last `windowMillis`.
 */
export class RateMeter {
  private readonly windowMillis: number
  private samples: Array<{ readonly at: number; readonly value: number }> = []

  constructor(windowMillis: number = 3000) {
    this.windowMillis = windowMillis
  }

  /** Records the counter's value at time `at` (milliseconds). */
  add(at: number, value: number): void {
    const last = this.samples[this.samples.length - 1]
    // A counter that went back (a mirror re-reading its source) starts a new measurement.
    if (last !== undefined && value < last.value) this.samples = []
    this.samples.push({ at, value })
    const oldest = at - this.windowMillis
    while (this.samples.length > 2 && this.samples[1]!.at <= oldest) this.samples.shift()
  }

  /** Units per second; undefined until two samples at least 200 ms apart. */
  get rate(): number | undefined {
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    if (first === undefined || last === undefined || last.at - first.at < 200) return undefined
    return ((last.value - first.value) * 1000) / (last.at - first.at)
  }
}

export interface ProgressBarOptions {
  /** What the line starts with, e.g. `backup`. */
  readonly label: string
  /** Redraw one line in place (a terminal) or print plain lines. */
  readonly interactive: boolean
  /** Writes text as it is (no newline added). */
  readonly write: (text: string) => void
  /** The terminal's width, for the bar (interactive only). */
  readonly columns?: () => number | undefined
  /** Plain mode: the most one line per this many milliseconds (default 1000). */
  readonly plainIntervalMillis?: number
}

const clearLine = "\r\x1b[2K"

export class ProgressBar {
  private readonly options: ProgressBarOptions
  private readonly meter = new RateMeter()
  private last: { progress: Progress; status: string } | undefined
  private lastPlainAt = Number.NEGATIVE_INFINITY
  private drawn = false

  constructor(options: ProgressBarOptions) {
    this.options = options
  }

  /** The rate measured so far. */
  get rate(): number | undefined {
    return this.meter.rate
  }

  /** A new sample at `now` (milliseconds); redraws, or prints a plain line when one is due. */
  update(progress: Progress, status: string, now: number): void {
    this.meter.add(now, progress.current)
    const statusChanged = this.last === undefined || this.last.status !== status
    this.last = { progress, status }
    if (this.options.interactive) {
      this.draw()
    } else if (statusChanged || now - this.lastPlainAt >= (this.options.plainIntervalMillis ?? 1000)) {
      this.lastPlainAt = now
      this.options.write(`${this.plainLine()}\n`)
    }
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
    const { progress, status } = this.last!
    return `${this.options.label}: ${status}  ${describe(progress, this.meter.rate)}`
  }

  private draw(): void {
    if (this.last === undefined) return
    const { progress, status } = this.last
    const text = `${describe(progress, this.meter.rate)}  ${status}`
    const columns = this.options.columns?.() || 80 // 0 or undefined: not known
    // label, a space, [bar], a space, the text, within columns - 1 (the last column would wrap on some
    // terminals): the bar takes what is left, 10 to 40 cells.
    const room = columns - 1 - this.options.label.length - text.length - 4
    const line = room >= 10
      ? `${this.options.label} ${renderBar(progress, Math.min(40, room))} ${text}`
      : `${this.options.label} ${text}`.slice(0, Math.max(1, columns - 1))
    this.options.write(`${clearLine}${line}`)
    this.drawn = true
  }
}
