/**
 * The jobs table: every job, filtered by status, type or text, sorted by a
 * column, drawn as rows of fixed height of which only those in view (and a
 * few around) exist in the document — 10,000 jobs cost what 40 do. Rows are
 * kept per job and updated in place, so a button keeps its focus while the
 * job under it changes. It redraws only when asked (once per frame at most).
 */
import { actionButton, type ActionButton, errorLine } from "./actions.ts"
import { h, setAttribute, setText } from "./dom.ts"
import * as Format from "./format.ts"
import type { Page } from "./page.ts"
import { statusBadge } from "./status.ts"
import type { JobRow } from "./store.ts"
import { refusal, type Verb, verbs } from "./verbs.ts"

type SortKey = "order" | "id" | "type" | "status" | "progress" | "rate" | "eta"

interface Column {
  readonly key: string
  readonly label: string
  readonly sort?: SortKey
}

const columns: ReadonlyArray<Column> = [
  { key: "id", label: "ID", sort: "id" },
  { key: "type", label: "Type", sort: "type" },
  { key: "status", label: "Status", sort: "status" },
  { key: "progress", label: "Progress", sort: "progress" },
  { key: "rate", label: "Rate", sort: "rate" },
  { key: "eta", label: "ETA", sort: "eta" },
  { key: "limit", label: "Limit" },
  { key: "txn", label: "Txn" },
  { key: "busy", label: "Busy" },
  { key: "actions", label: "Actions" }
]

/** The status filter's choices: groups of statuses, as a person looks for them. */
const statusFilters: ReadonlyArray<{ readonly value: string; readonly label: string; readonly test: (row: JobRow) => boolean }> = [
  { value: "all", label: "All", test: () => true },
  { value: "active", label: "Not dismissed", test: (row) => row.dismissedAt === undefined },
  { value: "running", label: "Running", test: (row) => row.status === "running" },
  { value: "paused", label: "Paused", test: (row) => row.status === "paused" || row.view.paused },
  { value: "ready", label: "Ready", test: (row) => row.status === "ready" || row.status === "standby" },
  { value: "waiting", label: "Waiting, pending", test: (row) => row.status === "waiting" || row.status === "pending" },
  { value: "ended", label: "Aborting, concluded", test: (row) => row.status === "aborting" || row.status === "concluded" },
  { value: "failed", label: "Failed or cancelled", test: (row) => row.outcome === "failed" || row.outcome === "cancelled" },
  { value: "dismissed", label: "Dismissed", test: (row) => row.dismissedAt !== undefined }
]

const compare = (key: SortKey) => (a: JobRow, b: JobRow): number => {
  switch (key) {
    case "order":
      return a.order - b.order
    case "id":
      return a.id.localeCompare(b.id, undefined, { numeric: true })
    case "type":
      return a.view.type.localeCompare(b.view.type) || a.order - b.order
    case "status":
      return a.status.localeCompare(b.status) || a.order - b.order
    case "progress":
      return Format.fraction(a.view.currentProgress, a.view.totalProgress) -
        Format.fraction(b.view.currentProgress, b.view.totalProgress) || a.order - b.order
    case "rate":
      return (a.view.rate ?? -1) - (b.view.rate ?? -1) || a.order - b.order
    case "eta":
      return (a.view.eta ?? Infinity) - (b.view.eta ?? Infinity) || a.order - b.order
  }
}

/** Sorting by these reads the views, which change without the list changing. */
const sortsByView = new Set<SortKey>(["progress", "rate", "eta"])

/** Rows drawn beyond the visible ones, above and below. */
const overscan = 8

class RowView {
  readonly element: HTMLElement
  private readonly id: HTMLButtonElement
  private readonly type: HTMLElement
  private readonly badge = statusBadge()
  private readonly bar: HTMLProgressElement
  private readonly amount: HTMLElement
  private readonly rate: HTMLElement
  private readonly eta: HTMLElement
  private readonly limit: HTMLElement
  private readonly txn: HTMLElement
  private readonly busy: HTMLElement
  private readonly buttons: ReadonlyArray<{ readonly verb: Verb; readonly button: ActionButton }>
  private readonly pauseButton: ActionButton | undefined
  private row: JobRow

  constructor(page: Page, row: JobRow, report: ReturnType<typeof errorLine>["report"]) {
    this.row = row
    this.id = h("button", { type: "button", class: "job-id", "aria-haspopup": "dialog" }, row.id)
    this.id.addEventListener("click", () => page.openDetail(this.row.id))
    this.type = h("span")
    this.bar = h("progress", { max: 1, "aria-label": `progress of ${row.id}` })
    this.amount = h("span", { class: "amount" })
    this.rate = h("span")
    this.eta = h("span")
    this.limit = h("span")
    this.txn = h("span")
    this.busy = h("span", { class: "busy" })
    const buttons: Array<{ verb: Verb; button: ActionButton }> = []
    if (!page.server.readOnly) {
      // Pause and resume share a place: the one the job's pause calls for is shown.
      for (const verb of [verbs.pause, verbs.cancel, verbs.complete]) {
        const button = actionButton(verb.label, () => {
          const applied = verb === verbs.pause && this.row.view.userPaused ? verbs.resume : verb
          page.act(applied, this.row, report)
        }, { "data-verb": verb.name })
        buttons.push({ verb, button })
      }
    }
    this.buttons = buttons
    this.pauseButton = buttons.find((b) => b.verb === verbs.pause)?.button
    const cell = (key: string, ...children: Array<Node>) => h("div", { role: "cell", class: `c-${key}` }, ...children)
    this.element = h(
      "div",
      { role: "row", class: "row", "data-id": row.id },
      cell("id", this.id),
      cell("type", this.type),
      cell("status", this.badge.element),
      cell("progress", this.bar, this.amount),
      cell("rate", this.rate),
      cell("eta", this.eta),
      cell("limit", this.limit),
      cell("txn", this.txn),
      cell("busy", this.busy),
      cell("actions", ...buttons.map((b) => b.button.element))
    )
  }

  update(page: Page, row: JobRow, index: number): void {
    this.row = row
    const { view } = row
    setAttribute(this.element, "aria-rowindex", String(index + 2))
    setAttribute(this.element, "data-status", row.status)
    setAttribute(this.element, "data-dismissed", row.dismissedAt === undefined ? undefined : "true")
    setText(this.type, row.detailed ? view.type : "…")
    this.badge.update(row)
    const done = Format.fraction(view.currentProgress, view.totalProgress)
    if (this.bar.value !== done) this.bar.value = done
    setText(
      this.amount,
      `${Format.bytes(view.currentProgress)} / ${Format.bytes(view.totalProgress)} · ${
        Format.percent(view.currentProgress, view.totalProgress)
      }`
    )
    // A dismissed job does nothing any more: its last rate and time left mean nothing.
    const gone = row.dismissedAt !== undefined
    setText(this.rate, gone ? "–" : Format.rate(view.rate))
    setText(this.eta, gone ? "–" : Format.eta(view.eta))
    setText(this.limit, Format.limit(view.speed))
    setText(this.txn, view.txn ?? "–")
    setText(this.busy, gone ? "–" : view.busy ? "busy" : "idle")
    setAttribute(this.busy, "data-busy", !gone && view.busy ? "true" : "false")
    for (const { verb, button } of this.buttons) {
      const applied = verb === verbs.pause && view.userPaused ? verbs.resume : verb
      if (button === this.pauseButton) {
        button.setLabel(applied.label)
        setAttribute(button.element, "data-verb", applied.name)
      }
      button.setRefusal(refusal(applied, row, page.tables))
    }
  }
}

export class JobsTable {
  readonly element: HTMLElement
  private readonly page: Page
  private readonly viewport: HTMLElement
  private readonly spacer: HTMLElement
  private readonly count: HTMLOutputElement
  private readonly empty: HTMLElement
  private readonly statusFilter: HTMLSelectElement
  private readonly typeFilter: HTMLSelectElement
  private readonly textFilter: HTMLInputElement
  private readonly sortButtons = new Map<SortKey, HTMLElement>()
  private readonly report: ReturnType<typeof errorLine>
  private readonly rows = new Map<string, RowView>()
  private sortKey: SortKey = "order"
  private descending = false
  private shown: Array<JobRow> = []
  private drawnList = -1
  private drawnVersion = -1
  private filtersChanged = true
  private rowHeight = 0
  private knownTypes = new Set<string>()

  constructor(page: Page, requestDraw: () => void) {
    this.page = page
    const filterChanged = () => {
      this.filtersChanged = true
      requestDraw()
    }
    this.statusFilter = h(
      "select",
      { id: "filter-status", onchange: filterChanged },
      ...statusFilters.map((f) => h("option", { value: f.value }, f.label))
    )
    this.statusFilter.value = "all"
    this.typeFilter = h("select", { id: "filter-type", onchange: filterChanged }, h("option", { value: "" }, "All types"))
    this.textFilter = h("input", {
      id: "filter-text",
      type: "search",
      placeholder: "id, type, transaction, error",
      oninput: filterChanged
    })
    this.count = h("output", { class: "count", "aria-live": "polite" })
    this.report = errorLine()
    const header = h(
      "div",
      { role: "row", class: "row header", "aria-rowindex": "1" },
      ...columns.map((column) => {
        if (column.sort === undefined) return h("div", { role: "columnheader", class: `c-${column.key}` }, column.label)
        const key = column.sort
        const button = h("button", { type: "button", class: "sort" }, column.label)
        button.addEventListener("click", () => {
          this.descending = this.sortKey === key ? !this.descending : false
          this.sortKey = key
          filterChanged()
        })
        const cell = h("div", { role: "columnheader", class: `c-${column.key}`, "aria-sort": "none" }, button)
        this.sortButtons.set(key, cell)
        return cell
      })
    )
    this.spacer = h("div", { class: "spacer" })
    this.viewport = h("div", { class: "viewport", role: "rowgroup", tabindex: "-1" }, this.spacer)
    this.viewport.addEventListener("scroll", requestDraw, { passive: true })
    window.addEventListener("resize", () => {
      this.rowHeight = 0
      requestDraw()
    })
    this.empty = h("p", { class: "empty", hidden: true }, "No jobs match.")
    this.element = h(
      "section",
      { class: "jobs", "aria-labelledby": "jobs-title" },
      h(
        "div",
        { class: "section-head" },
        h("h2", { id: "jobs-title" }, "Jobs"),
        this.count
      ),
      h(
        "div",
        { class: "filters", role: "search" },
        h("label", {}, "Status ", this.statusFilter),
        h("label", {}, "Type ", this.typeFilter),
        h("label", { class: "grow" }, "Search ", this.textFilter)
      ),
      this.report.element,
      h(
        "div",
        { role: "table", class: "table", "aria-labelledby": "jobs-title", id: "jobs-table" },
        h("div", { role: "rowgroup", class: "head" }, header),
        this.viewport
      ),
      this.empty
    )
  }

  /** Redraws what changed since the last time. */
  draw(): void {
    const { store } = this.page
    const listChanged = store.listVersion !== this.drawnList || this.filtersChanged ||
      (sortsByView.has(this.sortKey) && store.version !== this.drawnVersion)
    if (listChanged) this.filter()
    this.drawRows()
    this.drawnList = store.listVersion
    this.drawnVersion = store.version
    this.filtersChanged = false
  }

  private filter(): void {
    const { store } = this.page
    const status = statusFilters.find((f) => f.value === this.statusFilter.value) ?? statusFilters[0]!
    const type = this.typeFilter.value
    const text = this.textFilter.value.trim().toLowerCase()
    const shown: Array<JobRow> = []
    for (const row of store.jobs.values()) {
      if (row.detailed && row.view.type !== "" && !this.knownTypes.has(row.view.type)) {
        this.knownTypes.add(row.view.type)
        this.typeFilter.append(h("option", { value: row.view.type }, row.view.type))
      }
      if (!status.test(row)) continue
      if (type !== "" && row.view.type !== type) continue
      if (text !== "" && !matches(row, text)) continue
      shown.push(row)
    }
    const order = compare(this.sortKey)
    shown.sort(this.descending ? (a, b) => order(b, a) : order)
    this.shown = shown
    for (const [key, cell] of this.sortButtons) {
      cell.setAttribute("aria-sort", key !== this.sortKey ? "none" : this.descending ? "descending" : "ascending")
    }
    setText(this.count, `${shown.length} of ${store.jobs.size} jobs`)
    this.empty.hidden = shown.length > 0
    if (store.jobs.size === 0) setText(this.empty, "No jobs yet.")
    else setText(this.empty, "No jobs match.")
  }

  private drawRows(): void {
    if (this.rowHeight === 0) {
      this.rowHeight = parseFloat(getComputedStyle(this.viewport).getPropertyValue("--row-height")) || 44
    }
    const height = this.rowHeight
    const total = this.shown.length
    this.spacer.style.height = `${total * height}px`
    this.element.querySelector("[role=table]")?.setAttribute("aria-rowcount", String(total + 1))
    const top = this.viewport.scrollTop
    const first = Math.max(0, Math.floor(top / height) - overscan)
    const last = Math.min(total, Math.ceil((top + this.viewport.clientHeight) / height) + overscan)
    const wanted = new Set<string>()
    for (let index = first; index < last; index++) {
      const row = this.shown[index]!
      wanted.add(row.id)
      let view = this.rows.get(row.id)
      if (view === undefined) {
        view = new RowView(this.page, row, this.report.report)
        this.rows.set(row.id, view)
        this.viewport.append(view.element)
      }
      view.update(this.page, row, index)
      const offset = `translateY(${index * height}px)`
      if (view.element.style.transform !== offset) view.element.style.transform = offset
    }
    for (const [id, view] of this.rows) {
      if (wanted.has(id)) continue
      view.element.remove()
      this.rows.delete(id)
    }
  }
}

const matches = (row: JobRow, text: string): boolean =>
  row.id.toLowerCase().includes(text) ||
  row.view.type.toLowerCase().includes(text) ||
  (row.view.txn ?? "").toLowerCase().includes(text) ||
  (row.error ?? "").toLowerCase().includes(text)
