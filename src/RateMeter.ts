/**
 * The current rate of a growing counter — a job's progress — measured over the
 * samples of the last few seconds, so a paused or throttled job shows what it
 * does now, not its average. The HTTP API's `rate`/`eta` and the CLI's progress
 * bar and `watch` table read it.
 *
 * @since 0.1.0
 */

/**
 * How far back the rate looks, by default.
 *
 * @since 0.1.0
 */
export const defaultWindowMillis = 3000

/** Samples closer together than this say nothing yet. */
const minimumSpanMillis = 200

interface Sample {
  readonly at: number
  readonly value: number
}

/**
 * The rate of one growing counter, over the samples of the last `windowMillis`.
 *
 * @since 0.1.0
 * @category models
 */
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
