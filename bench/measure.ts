/**
 * Timing and summary statistics for the benchmarks: a monotonic nanosecond
 * clock, percentiles of latency samples, and rounding for the report.
 */

/** Monotonic time in nanoseconds. */
export const now = (): bigint => process.hrtime.bigint()

/** Nanoseconds elapsed since `start` (a value of `now()`). */
export const elapsedNs = (start: bigint): number => Number(process.hrtime.bigint() - start)

/** Rounds to `digits` decimals (for the report only). */
export const round = (value: number, digits = 1): number => {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

/** The `p`-th percentile (0..100) of ascending samples, nearest-rank. */
export const percentile = (sorted: ReadonlyArray<number>, p: number): number => {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export interface LatencySummary {
  readonly samples: number
  readonly p50Us: number
  readonly p99Us: number
  readonly minUs: number
  readonly maxUs: number
}

/** Summarizes latency samples given in nanoseconds, reported in microseconds. */
export const summarize = (samplesNs: ReadonlyArray<number>): LatencySummary => {
  const sorted = [...samplesNs].sort((a, b) => a - b)
  const us = (ns: number) => round(ns / 1000, 1)
  return {
    samples: sorted.length,
    p50Us: us(percentile(sorted, 50)),
    p99Us: us(percentile(sorted, 99)),
    minUs: us(sorted[0] ?? Number.NaN),
    maxUs: us(sorted[sorted.length - 1] ?? Number.NaN)
  }
}

/** Writes a progress line to stderr (stdout carries only the JSON report). */
export const progress = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`)
}
