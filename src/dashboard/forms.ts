/**
 * The forms that start jobs: a backup, a mirror, or a transaction of them.
 * They are checked by the API's own rules, not copies of them: as the user
 * types, the request they would send goes to `POST
 * /api/transactions/validate`, which creates nothing and answers as the real
 * request would (an id in use, a missing source, a bad speed…). A refused
 * request shows the API's error under the form. Each form also gives its
 * request as a QMP command (`backup`, `mirror`, `transaction`) and CLI line.
 */
import { copyButtons } from "./actions.ts"
import { type CreateJob, type CreateTransaction, type JobView, post, type TransactionCreated } from "./api.ts"
import { h, setText, uniqueId } from "./dom.ts"
import * as Format from "./format.ts"
import type { Page } from "./page.ts"
import type { QmpCommand } from "./qmp.ts"

type Kind = "backup" | "mirror" | "transaction"

const kinds: ReadonlyArray<{ readonly value: Kind; readonly label: string }> = [
  { value: "backup", label: "Backup" },
  { value: "mirror", label: "Mirror" },
  { value: "transaction", label: "Transaction" }
]

const validateDelayMillis = 300

/** The fields of one job: its type (in a transaction), id, source, target, speed. */
class JobFields {
  readonly element: HTMLElement
  readonly type: HTMLSelectElement
  readonly id: HTMLInputElement
  readonly source: HTMLInputElement
  readonly target: HTMLInputElement
  readonly speed: HTMLInputElement

  constructor(options: { readonly withType: boolean; readonly id: string; readonly onRemove?: () => void }) {
    const field = (label: string, input: HTMLElement, hint?: string) => {
      const id = uniqueId("field")
      input.id = id
      return h("div", { class: "field" }, h("label", { for: id }, label), input, hint === undefined ? undefined : h("small", {}, hint))
    }
    this.type = h("select", { "data-field": "type" }, h("option", { value: "backup" }, "backup"), h("option", { value: "mirror" }, "mirror"))
    this.id = h("input", { "data-field": "id", value: options.id, autocomplete: "off", spellcheck: "false", required: true })
    this.source = h("input", { "data-field": "source", placeholder: "disk.img", autocomplete: "off", spellcheck: "false" })
    this.target = h("input", { "data-field": "target", placeholder: "disk.bak", autocomplete: "off", spellcheck: "false" })
    this.speed = h("input", { "data-field": "speed", inputmode: "numeric", placeholder: "unlimited", autocomplete: "off" })
    const remove = options.onRemove === undefined
      ? undefined
      : h("button", { type: "button", class: "remove", "aria-label": "Remove this member" }, "Remove")
    if (remove !== undefined) remove.addEventListener("click", options.onRemove!)
    this.element = h(
      "div",
      { class: options.withType ? "job-fields member" : "job-fields" },
      options.withType ? field("Type", this.type) : undefined,
      field("ID", this.id),
      field("Source", this.source, "a file on the server"),
      field("Target", this.target, "its directory must exist"),
      field("Speed limit", this.speed, "bytes/s: 1M, 512K; empty for none"),
      remove
    )
  }

  /** The job as the API takes it; a speed that is not one is an error of the form's own. */
  job(type: string, extra: Partial<CreateJob>): CreateJob | string {
    const speedText = this.speed.value.trim()
    const speed = speedText === "" ? undefined : Format.parseSize(speedText)
    if (speed === undefined && speedText !== "") return `Speed limit '${speedText}' is not a size (e.g. 1048576, 512K, 1M)`
    return {
      type,
      id: this.id.value.trim(),
      params: { source: this.source.value.trim(), target: this.target.value.trim(), ...extra.params },
      ...(speed === undefined ? {} : { speed }),
      ...(extra.manualFinalize === true ? { manualFinalize: true } : {}),
      ...(extra.manualDismiss === true ? { manualDismiss: true } : {})
    }
  }
}

/** A QMP action's data for a job of the form. */
const qmpJob = (job: CreateJob): Record<string, unknown> => ({
  "job-id": job.id,
  ...job.params,
  ...(job.speed === undefined ? {} : { speed: job.speed }),
  ...(job.manualFinalize === true ? { "auto-finalize": false } : {}),
  ...(job.manualDismiss === true ? { "auto-dismiss": false } : {})
})

export class NewJobs {
  readonly element: HTMLElement
  private readonly page: Page
  private kind: Kind = "backup"
  private readonly single: JobFields
  private readonly members: Array<JobFields> = []
  private readonly membersBox: HTMLElement
  private readonly transactionBox: HTMLElement
  private readonly grouped: HTMLInputElement
  private readonly overwrite: HTMLInputElement
  private readonly manualFinalize: HTMLInputElement
  private readonly manualDismiss: HTMLInputElement
  private readonly message: HTMLElement
  private readonly submit: HTMLButtonElement
  private validateTimer: ReturnType<typeof setTimeout> | undefined
  private validation = 0

  constructor(page: Page) {
    this.page = page
    this.single = new JobFields({ withType: false, id: this.suggestId("b") })
    this.membersBox = h("div", { class: "members-box" })
    this.grouped = h("input", { type: "checkbox", id: "new-grouped", checked: true })
    this.overwrite = h("input", { type: "checkbox", id: "new-overwrite" })
    this.manualFinalize = h("input", { type: "checkbox", id: "new-manual-finalize" })
    this.manualDismiss = h("input", { type: "checkbox", id: "new-manual-dismiss" })
    const addMember = h("button", { type: "button", class: "secondary" }, "Add member")
    addMember.addEventListener("click", () => this.addMember())
    this.transactionBox = h(
      "div",
      { class: "transaction-box", hidden: true },
      h("label", { class: "check" }, this.grouped, " Grouped: all commit or all abort"),
      this.membersBox,
      addMember
    )
    this.message = h("p", { class: "form-message", "aria-live": "polite", id: "new-message" })
    this.submit = h("button", { type: "submit", class: "primary" }, "Start backup")
    const kindName = uniqueId("kind")
    const kindRadios = h(
      "fieldset",
      { class: "kinds" },
      h("legend", {}, "Start"),
      ...kinds.map((kind) => {
        const radio = h("input", { type: "radio", name: kindName, value: kind.value, checked: kind.value === this.kind })
        radio.addEventListener("change", () => this.setKind(kind.value))
        return h("label", { class: "kind" }, radio, ` ${kind.label}`)
      })
    )
    const form = h(
      "form",
      { class: "new-form", novalidate: true, "aria-describedby": "new-message" },
      kindRadios,
      this.single.element,
      this.transactionBox,
      h(
        "div",
        { class: "checks" },
        h("label", { class: "check" }, this.overwrite, " Overwrite an existing target"),
        h("label", { class: "check" }, this.manualFinalize, " Manual finalize"),
        h("label", { class: "check" }, this.manualDismiss, " Manual dismiss")
      ),
      this.message,
      h("div", { class: "actions-line" }, this.submit, copyButtons(() => this.qmp(), () => page.server.qmpFlags))
    )
    form.addEventListener("submit", (event) => {
      event.preventDefault()
      void this.send()
    })
    form.addEventListener("input", () => this.scheduleValidation())
    form.addEventListener("change", () => this.scheduleValidation())
    this.element = h(
      "section",
      { class: "new-jobs panel", "aria-labelledby": "new-title" },
      h("div", { class: "section-head" }, h("h2", { id: "new-title" }, "New jobs")),
      form
    )
  }

  /** An id not in use: `b1`, `b2`, … */
  private suggestId(prefix: string, taken: ReadonlySet<string> = new Set()): string {
    for (let n = 1;; n++) {
      const id = `${prefix}${n}`
      const row = this.page.store.jobs.get(id)
      if ((row === undefined || row.dismissedAt !== undefined) && !taken.has(id)) return id
    }
  }

  private setKind(kind: Kind): void {
    this.kind = kind
    const transaction = kind === "transaction"
    this.single.element.hidden = transaction
    this.transactionBox.hidden = !transaction
    if (transaction && this.members.length === 0) {
      this.addMember()
      this.addMember()
    }
    this.single.id.value = this.suggestId(kind === "mirror" ? "m" : "b")
    setText(this.submit, transaction ? "Start transaction" : `Start ${kind}`)
    this.scheduleValidation()
  }

  private addMember(): void {
    const taken = new Set(this.members.map((m) => m.id.value))
    const member: JobFields = new JobFields({
      withType: true,
      id: this.suggestId("t", taken),
      onRemove: () => {
        this.members.splice(this.members.indexOf(member), 1)
        member.element.remove()
        this.scheduleValidation()
      }
    })
    this.members.push(member)
    this.membersBox.append(member.element)
  }

  /** The request the form makes, or what is wrong with it before the API is asked. */
  private request(): CreateTransaction | string {
    const extra: Partial<CreateJob> = {
      params: this.overwrite.checked ? { overwrite: true } : {},
      manualFinalize: this.manualFinalize.checked,
      manualDismiss: this.manualDismiss.checked
    }
    if (this.kind !== "transaction") {
      const job = this.single.job(this.kind, extra)
      return typeof job === "string" ? job : { completionMode: "individual", jobs: [job] }
    }
    const jobs: Array<CreateJob> = []
    for (const member of this.members) {
      const job = member.job(member.type.value, extra)
      if (typeof job === "string") return job
      jobs.push(job)
    }
    if (jobs.length === 0) return "A transaction needs a member"
    return { completionMode: this.grouped.checked ? "grouped" : "individual", jobs }
  }

  private qmp(): QmpCommand {
    const request = this.request()
    const jobs = typeof request === "string" ? [] : request.jobs
    if (this.kind !== "transaction" && jobs[0] !== undefined) return { execute: this.kind, arguments: qmpJob(jobs[0]) }
    return {
      execute: "transaction",
      arguments: {
        actions: jobs.map((job) => ({ type: job.type, data: qmpJob(job) })),
        ...(typeof request !== "string" && request.completionMode === "grouped"
          ? { properties: { "completion-mode": "grouped" } }
          : {})
      }
    }
  }

  private say(text: string, kind: "error" | "ok" | "none"): void {
    setText(this.message, text)
    this.message.dataset.kind = kind
    this.message.setAttribute("role", kind === "error" ? "alert" : "status")
  }

  private scheduleValidation(): void {
    clearTimeout(this.validateTimer)
    this.validateTimer = setTimeout(() => void this.validate(), validateDelayMillis)
  }

  private async validate(): Promise<void> {
    const request = this.request()
    const turn = ++this.validation
    if (typeof request === "string") return this.say(request, "error")
    const answer = await post("/api/transactions/validate", request)
    // A later edit has asked again: its answer counts.
    if (turn !== this.validation) return
    this.say(answer.ok ? "" : answer.error.desc, answer.ok ? "none" : "error")
  }

  private async send(): Promise<void> {
    clearTimeout(this.validateTimer)
    this.validation++
    const request = this.request()
    if (typeof request === "string") return this.say(request, "error")
    this.submit.disabled = true
    const single = this.kind !== "transaction"
    const answer = single
      ? await post<JobView>("/api/jobs", request.jobs[0])
      : await post<TransactionCreated>("/api/transactions", request)
    this.submit.disabled = false
    if (!answer.ok) return this.say(answer.error.desc, "error")
    const jobs = single ? [answer.value as JobView] : (answer.value as TransactionCreated).jobs
    this.page.store.update({ jobs })
    const txn = single ? null : (answer.value as TransactionCreated).txn
    this.say(`Started ${jobs.map((job) => job.id).join(", ")}${txn === null ? "" : ` (transaction ${txn})`}`, "ok")
    if (single) this.single.id.value = this.suggestId(this.kind === "mirror" ? "m" : "b", new Set(jobs.map((j) => j.id)))
    else {
      const taken = new Set(jobs.map((j) => j.id))
      for (const member of this.members) {
        member.id.value = this.suggestId("t", taken)
        taken.add(member.id.value)
      }
    }
  }
}
