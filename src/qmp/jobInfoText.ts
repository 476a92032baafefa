/**
 * `query-jobs`' reply value as JSON text, written from the engine's rows and
 * reused while they stay the same.
 *
 * A client that polls `query-jobs` gets the same rows time after time, and
 * writing a hundred of them out again is most of what the command costs.
 * Each row's text is kept with the values it was written from, by its
 * position in the listing (the engine lists jobs in the order they were
 * created, so rows seldom move): a row whose values differ from those kept at
 * its position is written anew, and when no row differs the text of the
 * whole list is reused as it is. The text is exactly `JSON.stringify` of the
 * rows as `jobInfo` makes them.
 *
 * One per server: every client's listing shares it. What it keeps is the
 * latest listing, so it costs no more than one reply.
 */
import type { JobInfo } from "../Job.ts"
import { JsonText } from "./wire.ts"

/** QEMU's JobInfo of one row. */
export const jobInfo = (row: JobInfo): Record<string, unknown> => {
  const info: Record<string, unknown> = {
    id: row.id,
    type: row.type,
    status: row.status,
    "current-progress": row.currentProgress,
    "total-progress": row.totalProgress
  }
  if (row.error !== undefined) info.error = row.error
  return info
}

/** A row's values as they were when its text was written (copied: rows are not ours to keep). */
interface WrittenRow {
  readonly id: string
  readonly type: string
  readonly status: string
  readonly currentProgress: number
  readonly totalProgress: number
  readonly error: string | undefined
  readonly text: string
}

const written = (row: JobInfo): WrittenRow => ({
  id: row.id,
  type: row.type,
  status: row.status,
  currentProgress: row.currentProgress,
  totalProgress: row.totalProgress,
  error: row.error,
  text: JSON.stringify(jobInfo(row))
})

const unchanged = (row: JobInfo, kept: WrittenRow): boolean =>
  row.id === kept.id &&
  row.type === kept.type &&
  row.status === kept.status &&
  row.currentProgress === kept.currentProgress &&
  row.totalProgress === kept.totalProgress &&
  row.error === kept.error

export class JobInfoText {
  private kept: Array<WrittenRow> = []
  private whole = new JsonText("[]")

  /** The rows as `query-jobs` returns them, as JSON text. */
  of(rows: ReadonlyArray<JobInfo>): JsonText {
    const kept = this.kept
    let changed = rows.length !== kept.length
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!
      const previous = kept[i]
      if (previous !== undefined && unchanged(row, previous)) continue
      kept[i] = written(row)
      changed = true
    }
    if (changed) {
      kept.length = rows.length
      // Joined into one flat string: every reply copies it, and a string built piece by piece is a tree to walk.
      this.whole = new JsonText(`[${kept.map((row) => row.text).join(",")}]`)
    }
    return this.whole
  }
}
