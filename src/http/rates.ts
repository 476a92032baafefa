/**
 * The current rate of each job and its time left, measured from samples of
 * its progress: the rate is the progress made over the last few seconds of
 * samples (so a paused or throttled job shows what it does now, not its
 * average), the ETA the work left at that rate.
 */

/** How far back the rate looks, by default. */
export const defaultWindowMillis = 3000

/** Samples closer together than this say nothing yet. */
const minimumSpanMillis = 200

interface Sample {
  readonly at: number
  readonly value: number
}

/** The rate of one growing counter, over the samples of the last `windowMillis`. */
export class RateMeter {
  private samples: Array<Sample> = []
  private readonly windowMillis: number

  constructor(windowMillis: number = defaultWindowMillis) {
    this.windowMillis = windowMillis
  }

  /** Records the counter's value at `at` (milliseconds). */
  add(at: number, value: number): void {
    const last = this.samples[this.samples.length - 1]
    if (last !== undefined && value < last.value) {
      // A counter that went back (a job restarted its measure) starts a new measurement.
      this.samples = []
    } else if (last !== undefined && last.at === at) {
      // Two samples of one instant: the later one stands.
      this.samples.pop()
    }
    this.samples.push({ at, value })
    const oldest = at - this.windowMillis
    // Keep one sample at or before the window's start, so the window is covered in full.
    while (this.samples.length > 2 && this.samples[1]!.at <= oldest) this.samples.shift()
  }

  /** Units per second; `undefined` until two samples at least 200 ms apart. */
  get rate(): number | undefined {
    const first = this.samples[0]
    const last = this.samples[this.samples.length - 1]
    if (first === undefined || last === undefined || last.at - first.at < minimumSpanMillis) return undefined
    return ((last.value - first.value) * 1000) / (last.at - first.at)
  }
}

/** Seconds left for the work from `current` to `total` at `rate`; `undefined` when that cannot be told. */
export const eta = (current: number, total: number, rate: number | undefined): number | undefined =>
  rate === undefined || rate <= 0 ? undefined : Math.max(0, total - current) / rate

/** A rate meter per job, keyed by the job object (an id may be reused once its job is dismissed). */
export class Rates {
  private readonly meters = new Map<object, RateMeter>()
  private readonly windowMillis: number

  constructor(windowMillis: number = defaultWindowMillis) {
    this.windowMillis = windowMillis
  }

  /** Records every listed job's progress at `at`, and forgets the jobs no longer listed. */
  sample(at: number, jobs: Iterable<{ readonly job: object; readonly current: number }>): void {
    const seen = new Set<object>()
    for (const { current, job } of jobs) {
      seen.add(job)
      let meter = this.meters.get(job)
      if (meter === undefined) {
        meter = new RateMeter(this.windowMillis)
        this.meters.set(job, meter)
      }
      meter.add(at, current)
    }
    for (const job of this.meters.keys()) if (!seen.has(job)) this.meters.delete(job)
  }

  /** The job's rate in units per second, `undefined` while unknown. */
  rateOf(job: object): number | undefined {
    return this.meters.get(job)?.rate
  }
}
