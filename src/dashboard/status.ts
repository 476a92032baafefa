/**
 * A job's status as the page shows it: a badge with the status (QEMU's name),
 * and for a finished job how it ended. A dismissed job (`null`) is shown by
 * how it ended alone (its row is greyed), "dismissed" when that is unknown;
 * the badge's tooltip has the whole.
 */
import { h, setAttribute, setText } from "./dom.ts"
import type { JobRow } from "./store.ts"

/** The status in full: `concluded · failed`, `dismissed · completed`, `running (held)`. */
export const statusText = (row: JobRow): string => {
  const status = row.status === "null" ? "dismissed" : row.status
  const paused = row.status === "running" && row.view.paused && !row.view.userPaused ? " (held)" : ""
  return row.outcome === undefined ? `${status}${paused}` : `${status} · ${row.outcome}`
}

export const statusLabel = (row: JobRow): string =>
  row.status === "null" && row.outcome !== undefined ? row.outcome : statusText(row)

/** A status badge, to update in place. */
export const statusBadge = (): { readonly element: HTMLElement; readonly update: (row: JobRow) => void } => {
  const element = h("span", { class: "badge" })
  return {
    element,
    update: (row) => {
      setAttribute(element, "data-status", row.status)
      setAttribute(element, "data-outcome", row.outcome)
      setText(element, statusLabel(row))
      setAttribute(element, "title", statusText(row))
    }
  }
}
