/**
 * Transactions as units: each user-made transaction (`txn` of its jobs) with
 * its members together, how it stands (running, committed, aborting,
 * aborted), which member's failure or cancel aborted it (the first member to
 * reach ABORTING in the event log), and "Cancel transaction": one request,
 * `POST /api/transactions/:id/cancel`, which force-cancels a member and so
 * aborts them all.
 */
import { actionButton, copyButtons, errorLine, perform } from "./actions.ts"
import { segment } from "./api.ts"
import { h, setAttribute, setText } from "./dom.ts"
import { KeyedList } from "./keyedList.ts"
import type { Page } from "./page.ts"
import { statusLabel } from "./status.ts"
import type { JobRow } from "./store.ts"
import { verbNotAllowed, verbs } from "./verbs.ts"

/** Transactions shown: the newest. */
const shownTransactions = 50

export interface Transaction {
  readonly id: string
  readonly members: ReadonlyArray<JobRow>
}

type Standing = "running" | "committed" | "aborting" | "aborted"

const ended = (row: JobRow) => row.status === "concluded" || row.status === "null"

export const standing = (txn: Transaction): Standing => {
  const aborted = txn.members.some((m) => m.status === "aborting" || m.outcome === "cancelled" || m.outcome === "failed")
  const allEnded = txn.members.every(ended)
  if (aborted) return allEnded ? "aborted" : "aborting"
  return allEnded && txn.members.every((m) => m.outcome === "completed") ? "committed" : "running"
}

/** The member that aborted the transaction: the first to reach ABORTING, by sequence number. */
export const abortCause = (txn: Transaction): JobRow | undefined => {
  let cause: JobRow | undefined
  let first = Infinity
  for (const member of txn.members) {
    const aborting = member.events.find((e) => e._tag === "StatusChange" && e.status === "aborting")
    if (aborting !== undefined && aborting.seq < first) {
      first = aborting.seq
      cause = member
    }
  }
  // Without the events (the page came later than they), a member with an error of its own.
  return cause ?? txn.members.find((m) => m.outcome === "failed")
}

/** The member a cancel of the whole goes to, or why there is none. */
const cancelTarget = (txn: Transaction, page: Page): { readonly member?: JobRow; readonly refusal?: string } => {
  const accepted = page.tables.acceptedIn["cancel"] ?? []
  const member = txn.members.find((m) => m.dismissedAt === undefined && accepted.includes(m.status))
  if (member !== undefined) return { member }
  const first = txn.members[0]
  return {
    refusal: first === undefined || first.dismissedAt !== undefined
      ? "Transaction not found"
      : verbNotAllowed(first.id, first.status, "cancel")
  }
}

export class Transactions {
  readonly element: HTMLElement
  private readonly page: Page
  private readonly list: KeyedList<Transaction>
  private readonly empty: HTMLElement
  private drawn = -1

  constructor(page: Page) {
    this.page = page
    const items = h("div", { class: "txn-items" })
    this.list = new KeyedList<Transaction>(items, (first) => this.item(first))
    this.empty = h("p", { class: "empty" }, "No transactions.")
    this.element = h(
      "section",
      { class: "transactions panel", "aria-labelledby": "txn-title" },
      h("div", { class: "section-head" }, h("h2", { id: "txn-title" }, "Transactions")),
      items,
      this.empty
    )
  }

  private item(first: Transaction) {
    const page = this.page
    let txn = first
    const title = h("h3", {}, `Transaction ${first.id}`)
    const state = h("span", { class: "badge txn-state" })
    const cause = h("p", { class: "cause" })
    const members = h("ul", { class: "members" })
    const memberList = new KeyedList<JobRow>(members, (member) => {
      let current = member
      const id = h("button", { type: "button", class: "job-id", "aria-haspopup": "dialog" }, member.id)
      id.addEventListener("click", () => page.openDetail(current.id))
      const badge = h("span", { class: "badge" })
      const item = h("li", { "data-id": member.id }, id, " ", badge)
      return {
        element: item,
        update: (m) => {
          current = m
          setAttribute(item, "data-status", m.status)
          setAttribute(item, "data-outcome", m.outcome)
          setAttribute(badge, "data-status", m.status)
          setAttribute(badge, "data-outcome", m.outcome)
          setText(badge, statusLabel(m))
        }
      }
    })
    const report = errorLine()
    const cancel = page.server.readOnly ? undefined : actionButton("Cancel transaction", () => {
      void perform(`/api/transactions/${segment(txn.id)}/cancel`, {}, `Cancel transaction ${txn.id}`, report.report)
    }, { "data-action": "cancel-transaction" })
    const copy = page.server.readOnly ? undefined : copyButtons(
      () => verbs["force-cancel"].qmp(cancelTarget(txn, page).member?.id ?? txn.members[0]?.id ?? txn.id, 0),
      () => page.server.qmpFlags
    )
    const element = h(
      "article",
      { class: "txn", "data-txn": first.id },
      h("header", {}, title, state),
      members,
      cause,
      cancel === undefined ? undefined : h("div", { class: "actions-line" }, cancel.element, copy),
      report.element
    )
    return {
      element,
      update: (value: Transaction) => {
        txn = value
        const now = standing(value)
        setText(state, now)
        setAttribute(state, "data-standing", now)
        memberList.draw(value.members.map((m) => [m.id, m] as const))
        const culprit = now === "aborting" || now === "aborted" ? abortCause(value) : undefined
        cause.hidden = culprit === undefined
        setText(
          cause,
          culprit === undefined
            ? ""
            : `Aborted by ${culprit.id}${culprit.error === undefined ? ` (${culprit.outcome ?? "cancelled"})` : `: ${culprit.error}`}`
        )
        if (cancel !== undefined) {
          const target = cancelTarget(value, page)
          cancel.setRefusal(target.member === undefined ? target.refusal : undefined)
        }
      }
    }
  }

  draw(): void {
    if (this.drawn === this.page.store.version) return
    this.drawn = this.page.store.version
    const groups = new Map<string, Array<JobRow>>()
    for (const row of this.page.store.jobs.values()) {
      const txn = row.view.txn
      if (txn === null) continue
      let members = groups.get(txn)
      if (members === undefined) groups.set(txn, members = [])
      members.push(row)
    }
    const newest = [...groups].map(([id, members]) => ({ id, members: members.sort((a, b) => a.order - b.order) }))
      .sort((a, b) => b.members[0]!.order - a.members[0]!.order)
      .slice(0, shownTransactions)
    this.list.draw(newest.map((txn) => [txn.id, txn] as const))
    this.empty.hidden = newest.length > 0
  }
}
