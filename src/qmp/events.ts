/**
 * Engine events as QMP events, with QEMU's names and payloads:
 *
 * - every status change → `JOB_STATUS_CHANGE {id, status}`;
 * - for block jobs only (QEMU's block layer sends these; other job types get
 *   status changes alone): `Ready` → `BLOCK_JOB_READY`, `Pending` →
 *   `BLOCK_JOB_PENDING {type, id}`, `Completed` → `BLOCK_JOB_COMPLETED` (with
 *   `error` on failure), `Cancelled` → `BLOCK_JOB_CANCELLED`, each other one
 *   with `{type, device, len, offset, speed}`.
 *
 * The engine publishes them in QEMU's order; they are forwarded in that order.
 *
 * A durable store's notices, which QEMU has no counterpart of, are
 * `STORE_UNWRITABLE {error}` and `STORE_WRITABLE {unwritable-ms}`.
 */
import type { JobEvent } from "../JobEvent.ts"
import type { StoreNotice } from "../StoreNotice.ts"

/** The job types QEMU's block layer runs; `block-job-*` commands and events see only these. */
export const defaultBlockJobTypes: ReadonlyArray<string> = ["backup", "mirror", "commit", "stream"]

export interface QmpEvent {
  readonly event: string
  readonly data: Readonly<Record<string, unknown>>
}

const progress = (e: { readonly id: string; readonly type: string; readonly len: number; readonly offset: number; readonly speed: number }) => ({
  type: e.type,
  device: e.id,
  len: e.len,
  offset: e.offset,
  speed: e.speed
})

/** The QMP event for an engine event, or `undefined` when QMP has none. */
export const toQmpEvent = (event: JobEvent, blockJobTypes: ReadonlySet<string>): QmpEvent | undefined => {
  switch (event._tag) {
    case "StatusChange":
      return { event: "JOB_STATUS_CHANGE", data: { id: event.id, status: event.status } }
    case "Ready":
      return blockJobTypes.has(event.type) ? { event: "BLOCK_JOB_READY", data: progress(event) } : undefined
    case "Pending":
      return blockJobTypes.has(event.type)
        ? { event: "BLOCK_JOB_PENDING", data: { type: event.type, id: event.id } }
        : undefined
    case "Completed":
      return blockJobTypes.has(event.type)
        ? {
          event: "BLOCK_JOB_COMPLETED",
          data: event.error === undefined ? progress(event) : { ...progress(event), error: event.error }
        }
        : undefined
    case "Cancelled":
      return blockJobTypes.has(event.type) ? { event: "BLOCK_JOB_CANCELLED", data: progress(event) } : undefined
  }
}

/** The QMP event for a store notice. */
export const storeNoticeEvent = (notice: StoreNotice): QmpEvent =>
  notice._tag === "StoreUnwritable"
    ? { event: "STORE_UNWRITABLE", data: { error: notice.error } }
    : { event: "STORE_WRITABLE", data: { "unwritable-ms": notice.unwritableMillis } }
