/**
 * The inbox: the jobs that wait for a person — READY jobs to complete,
 * manual-finalize jobs in PENDING, manual-dismiss jobs in CONCLUDED (with
 * their error) — each with the one action it waits for.
 */
import { actionButton, errorLine } from "./actions.ts"
import { h, setText } from "./dom.ts"
import { KeyedList } from "./keyedList.ts"
import type { Page } from "./page.ts"
import { statusBadge } from "./status.ts"
import type { JobRow } from "./store.ts"
import { refusal, type Verb, verbs } from "./verbs.ts"

/** What a job waits for, if for a person. */
const waitsFor = (row: JobRow): { readonly verb: Verb; readonly why: string } | undefined => {
  if (row.dismissedAt !== undefined) return undefined
  if (row.status === "ready" || row.status === "standby") return { verb: verbs.complete, why: "ready to complete" }
  if (row.status === "pending" && row.view.manualFinalize) return { verb: verbs.finalize, why: "waits to be finalized" }
  if (row.status === "concluded" && row.view.manualDismiss) {
    return { verb: verbs.dismiss, why: row.error === undefined ? "ended; waits to be dismissed" : `failed: ${row.error}` }
  }
  return undefined
}

export class Inbox {
  readonly element: HTMLElement
  private readonly page: Page
  private readonly list: KeyedList<JobRow>
  private readonly count: HTMLElement
  private readonly empty: HTMLElement
  private drawn = -1

  constructor(page: Page) {
    this.page = page
    const items = h("ul", { class: "inbox-items" })
    const report = errorLine()
    this.list = new KeyedList<JobRow>(items, (first) => {
      let row = first
      const badge = statusBadge()
      const why = h("span", { class: "why" })
      const id = h("button", { type: "button", class: "job-id", "aria-haspopup": "dialog" }, first.id)
      id.addEventListener("click", () => page.openDetail(row.id))
      const wait = waitsFor(first)!
      const button = page.server.readOnly
        ? undefined
        : actionButton(wait.verb.label, () => page.act(waitsFor(row)?.verb ?? wait.verb, row, report.report), {
          "data-verb": wait.verb.name
        })
      const element = h("li", { class: "inbox-item", "data-id": first.id }, id, badge.element, why, button?.element)
      return {
        element,
        update: (value) => {
          row = value
          const waiting = waitsFor(value)
          if (waiting === undefined) return
          badge.update(value)
          setText(why, waiting.why)
          if (button !== undefined) {
            button.setLabel(waiting.verb.label)
            button.element.dataset.verb = waiting.verb.name
            button.setRefusal(refusal(waiting.verb, value, page.tables))
          }
        }
      }
    })
    this.count = h("span", { class: "count" })
    this.empty = h("p", { class: "empty" }, "Nothing waits for you.")
    this.element = h(
      "section",
      { class: "inbox panel", "aria-labelledby": "inbox-title" },
      h("div", { class: "section-head" }, h("h2", { id: "inbox-title" }, "Inbox"), this.count),
      report.element,
      items,
      this.empty
    )
  }

  draw(): void {
    if (this.drawn === this.page.store.version) return
    this.drawn = this.page.store.version
    const waiting: Array<readonly [string, JobRow]> = []
    for (const row of this.page.store.jobs.values()) {
      // Keyed by what it waits for too: a job that moves on to wait for another thing gets a new item.
      const wait = waitsFor(row)
      if (wait !== undefined) waiting.push([`${row.id} ${wait.verb.name}`, row])
    }
    this.list.draw(waiting)
    setText(this.count, String(waiting.length))
    this.empty.hidden = waiting.length > 0
  }
}
