/**
 * The current rate of each job (a `RateMeter` per job) and its time left at
 * that rate.
 */
import { defaultWindowMillis, RateMeter } from "../RateMeter.ts"

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
