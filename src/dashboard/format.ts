/**
 * Numbers as the page shows them: sizes in binary units (as the CLI's
 * progress bar), rates, limits, times left, and event times.
 */

const units = ["B", "KiB", "MiB", "GiB", "TiB"]

export const bytes = (n: number): string => {
  let value = n
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${units[unit]}`
}

/** A rate in units per second; `null`: not measured yet. */
export const rate = (perSecond: number | null): string => perSecond === null ? "–" : `${bytes(Math.round(perSecond))}/s`

/** A speed limit; 0 is none. */
export const limit = (speed: number): string => speed === 0 ? "unlimited" : `${bytes(speed)}/s`

/** Seconds left as h:mm:ss or m:ss; `null`: unknown. */
export const eta = (seconds: number | null): string => {
  if (seconds === null) return "–"
  const total = Math.ceil(seconds)
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = String(total % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`
}

/** The share done, 0 to 1; 0 while the total is unknown. */
export const fraction = (current: number, total: number): number => total > 0 ? Math.min(1, current / total) : 0

export const percent = (current: number, total: number): string =>
  total > 0 ? `${Math.floor(fraction(current, total) * 100)}%` : "–"

/** An event's time: hh:mm:ss.mmm, local. */
export const time = (millis: number): string => {
  const date = new Date(millis)
  const pad = (n: number, width = 2) => String(n).padStart(width, "0")
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/**
 * A size as a person writes it: `1048576`, `512K`, `1.5M`, `2 MiB` (binary
 * units). `undefined` if it is not one.
 */
export const parseSize = (text: string): number | undefined => {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (match === null) return undefined
  const power = ["", "k", "m", "g", "t"].indexOf(match[2]!.toLowerCase())
  const value = Number(match[1]) * 1024 ** power
  return Number.isFinite(value) ? Math.round(value) : undefined
}
