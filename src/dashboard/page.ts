/**
 * What every part of the page shares: the store, the tables and the server's
 * settings from the API, and the few things one part asks of another (open a
 * job's detail, apply a verb).
 */
import type { ServerInfo, Tables } from "./api.ts"
import type { Report } from "./actions.ts"
import type { JobRow, Store } from "./store.ts"
import type { Verb } from "./verbs.ts"

export interface Page {
  readonly store: Store
  readonly tables: Tables
  readonly server: ServerInfo
  /** Opens a job's detail view. */
  readonly openDetail: (id: string) => void
  /** Applies a verb to a job (`speed` for set-speed); a refusal goes to `report`. */
  readonly act: (verb: Verb, row: JobRow, report: Report, speed?: number) => void
}
