/**
 * A job's detail view, a modal dialog: what the job is now, the parameters
 * it was created with (`GET /api/jobs/:id`), its error, every action with its
 * reason when refused and its QMP and CLI forms, a chart of its rate, and its
 * timeline — each event with its sequence number and time.
 */
import { actionButton, type ActionButton, copyButtons, errorLine } from "./actions.ts"
import { get, type JobDetail, segment } from "./api.ts"
import { h, replaceChildren, setText } from "./dom.ts"
import * as Format from "./format.ts"
import type { Page } from "./page.ts"
import { RateChart } from "./rateChart.ts"
import { statusBadge } from "./status.ts"
import type { JobRow } from "./store.ts"
import { cancelExplanation, refusal, type Verb, verbs } from "./verbs.ts"

/** Timeline rows shown: the latest. */
const timelineShown = 200

const eventDetails = (event: JobRow["events"][number]): string => {
  switch (event._tag) {
    case "StatusChange":
      return event.status
    case "Pending":
      return "waits to be finalized"
    case "Ready":
    case "Cancelled":
      return `${Format.bytes(event.offset)} / ${Format.bytes(event.len)}, limit ${Format.limit(event.speed)}`
    case "Completed":
      return `${Format.bytes(event.offset)} / ${Format.bytes(event.len)}${event.error === undefined ? "" : `, error: ${event.error}`}`
  }
}

export class Detail {
  readonly element: HTMLDialogElement
  private readonly page: Page
  private readonly title: HTMLElement
  private readonly badge = statusBadge()
  private readonly facts: HTMLElement
  private readonly params: HTMLElement
  private readonly error: HTMLElement
  private readonly chart = new RateChart()
  private readonly timeline: HTMLElement
  private readonly cancelNote: HTMLElement
  private readonly buttons: Array<{ readonly verb: Verb; readonly button: ActionButton }> = []
  private readonly speedInput: HTMLInputElement
  private readonly report = errorLine()
  private id: string | undefined
  private drawnVersion = -1
  private firstEvent: JobRow["events"][number] | undefined
  private lastSeq = -1

  constructor(page: Page) {
    this.page = page
    this.title = h("h2", { id: "detail-title" })
    this.facts = h("dl", { class: "facts" })
    this.params = h("pre", { class: "params" })
    this.error = h("p", { class: "job-error" })
    this.timeline = h("tbody")
    this.cancelNote = h("p", { class: "note", id: "cancel-note" })
    this.speedInput = h("input", {
      id: "speed-input",
      inputmode: "numeric",
      placeholder: "e.g. 1M, 512K, 0 for none",
      "aria-label": "New speed limit, bytes per second"
    })
    const close = h("button", { type: "button", class: "close", "aria-label": "Close" }, "×")
    close.addEventListener("click", () => this.element.close())
    const actions = h("div", { class: "detail-actions" })
    if (!page.server.readOnly) {
      for (const verb of [verbs.pause, verbs.resume, verbs.cancel, verbs["force-cancel"], verbs.complete, verbs.finalize, verbs.dismiss, verbs.speed]) {
        const button = actionButton(verb.label, () => this.act(verb), { "data-verb": verb.name })
        this.buttons.push({ verb, button })
        const copy = copyButtons(() => verb.qmp(this.id ?? "", this.speed() ?? 0), () => page.server.qmpFlags)
        actions.append(
          h(
            "div",
            { class: "action-row", "data-action-row": verb.name },
            verb === verbs.speed ? this.speedInput : undefined,
            button.element,
            copy
          )
        )
        if (verb === verbs["force-cancel"]) actions.append(this.cancelNote)
      }
    }
    this.element = h(
      "dialog",
      { id: "detail", "aria-labelledby": "detail-title" },
      h("header", { class: "detail-head" }, this.title, this.badge.element, close),
      h(
        "div",
        { class: "detail-body" },
        h("section", { class: "detail-facts" }, this.facts, this.error, h("h3", {}, "Parameters"), this.params),
        page.server.readOnly
          ? undefined
          : h("section", { class: "detail-actions-section" }, h("h3", {}, "Actions"), this.report.element, actions),
        h("section", { class: "detail-chart" }, h("h3", {}, "Rate"), this.chart.element),
        h(
          "section",
          { class: "detail-timeline" },
          h("h3", {}, "Timeline"),
          h(
            "div",
            { class: "timeline-scroll" },
            h(
              "table",
              { class: "timeline" },
              h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Seq"), h("th", { scope: "col" }, "Time"), h("th", { scope: "col" }, "Event"), h("th", { scope: "col" }, "Details"))),
              this.timeline
            )
          )
        )
      )
    )
    this.element.addEventListener("close", () => {
      this.id = undefined
    })
  }

  open(id: string): void {
    this.id = id
    this.drawnVersion = -1
    this.firstEvent = undefined
    this.report.report(undefined, "")
    this.speedInput.value = ""
    setText(this.params, "…")
    void get<JobDetail>(`/api/jobs/${segment(id)}`).then((answer) => {
      if (this.id !== id) return
      setText(
        this.params,
        !answer.ok
          ? `(${answer.error.desc})`
          : answer.value.params === undefined
          ? "(not known: the job was not created over the HTTP API)"
          : JSON.stringify(answer.value.params, null, 2)
      )
    })
    this.draw()
    if (!this.element.open) this.element.showModal()
  }

  private speed(): number | undefined {
    return Format.parseSize(this.speedInput.value)
  }

  private act(verb: Verb): void {
    const row = this.id === undefined ? undefined : this.page.store.jobs.get(this.id)
    if (row === undefined) return
    if (verb === verbs.speed) {
      const speed = this.speed()
      if (speed === undefined) {
        this.report.report({ status: 400, class: "GenericError", desc: "Give a speed in bytes per second (1M, 512K, 0 for none)" }, "Set speed")
        this.speedInput.focus()
        return
      }
      this.page.act(verb, row, this.report.report, speed)
      return
    }
    this.page.act(verb, row, this.report.report)
  }

  draw(): void {
    if (this.id === undefined) return
    const row = this.page.store.jobs.get(this.id)
    if (row === undefined) return
    const store = this.page.store
    if (this.drawnVersion === store.version) return
    this.drawnVersion = store.version
    const { view } = row
    setText(this.title, `Job ${row.id}`)
    this.badge.update(row)
    const fact = (term: string, value: string) => [h("dt", {}, term), h("dd", {}, value)]
    replaceChildren(
      this.facts,
      ...fact("Type", row.detailed ? view.type : "…"),
      ...fact("Transaction", view.txn ?? "its own"),
      ...fact("Progress", `${Format.bytes(view.currentProgress)} / ${Format.bytes(view.totalProgress)} (${Format.percent(view.currentProgress, view.totalProgress)})`),
      ...fact("Rate", Format.rate(view.rate)),
      ...fact("ETA", Format.eta(view.eta)),
      ...fact("Speed limit", Format.limit(view.speed)),
      ...fact("Busy", view.busy ? "yes" : "no"),
      ...fact("Paused", view.userPaused ? "by the user" : view.paused ? "held" : "no"),
      ...fact("Finalize", view.manualFinalize ? "manual" : "automatic"),
      ...fact("Dismiss", view.manualDismiss ? "manual" : "automatic"),
      ...fact("Outcome", row.outcome ?? "–")
    )
    this.error.hidden = row.error === undefined
    setText(this.error, row.error === undefined ? "" : `Error: ${row.error}`)
    setText(this.cancelNote, cancelExplanation(view.type))
    for (const { verb, button } of this.buttons) button.setRefusal(refusal(verb, row, this.page.tables))
    this.chart.draw(row.rates, Date.now())
    this.drawTimeline(row)
  }

  private drawTimeline(row: JobRow): void {
    const events = row.events
    // Drawn anew when the job's timeline starts elsewhere (another job took the id); otherwise only what is new.
    if (events[0] !== this.firstEvent) {
      this.timeline.replaceChildren()
      this.lastSeq = -1
      this.firstEvent = events[0]
    }
    for (const event of events) {
      if (event.seq <= this.lastSeq) continue
      this.lastSeq = event.seq
      this.timeline.prepend(
        h(
          "tr",
          { "data-seq": event.seq },
          h("td", { class: "num" }, String(event.seq)),
          h("td", { class: "num" }, Format.time(event.timestamp)),
          h("td", {}, event._tag),
          h("td", {}, eventDetails(event))
        )
      )
    }
    while (this.timeline.childElementCount > timelineShown) this.timeline.lastElementChild!.remove()
  }
}
