/**
 * The dashboard: reads the server's settings, the state machine's tables and
 * the job list, then follows the event log and the progress stream, and
 * draws the jobs table, the inbox, the transactions, the forms and a job's
 * detail once per frame. A read-only server (`GET /api/server`) gets the
 * same page without a single action.
 */
import { perform } from "./actions.ts"
import { get, type JobsSnapshot, type ServerInfo, type Tables } from "./api.ts"
import { ConnectionIndicator } from "./connection.ts"
import { Detail } from "./detail.ts"
import { byId, h, replaceChildren, setText } from "./dom.ts"
import { EventLog } from "./eventLog.ts"
import { NewJobs } from "./forms.ts"
import { FrameScheduler } from "./frames.ts"
import { Inbox } from "./inbox.ts"
import { JobsTable } from "./jobsTable.ts"
import type { Page } from "./page.ts"
import { ProgressFeed } from "./progressFeed.ts"
import { Store } from "./store.ts"
import { StoreNoticeBanner } from "./storeNotice.ts"
import { Transactions } from "./transactions.ts"

/** "3 running · 1 paused · 2 ready": the statuses of the jobs not yet dismissed. */
const summary = (store: Store): string => {
  const counts = new Map<string, number>()
  for (const row of store.jobs.values()) {
    if (row.dismissedAt !== undefined) continue
    counts.set(row.status, (counts.get(row.status) ?? 0) + 1)
  }
  return counts.size === 0 ? "no jobs" : [...counts].map(([status, n]) => `${n} ${status}`).join(" · ")
}

const start = async (): Promise<void> => {
  const app = byId("app")
  const [server, tables, snapshot] = await Promise.all([
    get<ServerInfo>("/api/server"),
    get<Tables>("/api/tables"),
    get<JobsSnapshot>("/api/jobs")
  ])
  if (!server.ok || !tables.ok || !snapshot.ok) {
    const failed = [server, tables, snapshot].find((answer) => !answer.ok)
    const retry = h("button", { type: "button", onclick: () => location.reload() }, "Try again")
    replaceChildren(app, h("p", { class: "error-line", role: "alert" }, `The API did not answer: ${failed?.ok === false ? failed.error.desc : ""}`), retry)
    return
  }

  let draw = () => {}
  const frames = new FrameScheduler(() => draw())
  const store = new Store(frames.request)
  store.load(snapshot.value)

  let detail: Detail | undefined
  const page: Page = {
    store,
    tables: tables.value,
    server: server.value,
    openDetail: (id) => detail?.open(id),
    act: (verb, row, report, speed) => {
      void perform(verb.path(row.id), verb.body(speed ?? 0), `${verb.label} ${row.id}`, report)
    }
  }

  const indicator = new ConnectionIndicator()
  const counts = h("p", { class: "summary", id: "summary" })
  const jobs = new JobsTable(page, frames.request)
  const inbox = new Inbox(page)
  const transactions = new Transactions(page)
  detail = new Detail(page)
  const forms = page.server.readOnly ? undefined : new NewJobs(page)

  const header = byId("header")
  header.append(indicator.element)
  if (page.server.readOnly) {
    header.append(h("p", { class: "read-only", id: "read-only" }, "Read-only: this server refuses every action"))
  }
  header.append(counts)
  const storeNotice = new StoreNoticeBanner()
  header.append(storeNotice.element)
  replaceChildren(
    app,
    h("div", { class: "main-column" }, jobs.element),
    h("div", { class: "side-column" }, inbox.element, transactions.element, forms?.element)
  )
  document.body.append(detail.element)
  document.body.dataset.mode = page.server.readOnly ? "read-only" : "full"

  let summarized = -1
  draw = () => {
    jobs.draw()
    inbox.draw()
    transactions.draw()
    detail?.draw()
    indicator.showSeq(store.seq)
    if (summarized !== store.version) {
      summarized = store.version
      setText(counts, summary(store))
    }
  }
  frames.request()

  // From the start of the log: the events already in the list fill in the jobs' timelines.
  new EventLog({
    onEvent: (event) => store.apply(event),
    onReset: (reset) => store.load(reset),
    onState: (state) => indicator.show(state),
    onStoreNotice: (event, data) => storeNotice.apply(event, data)
  }, 0).start()
  new ProgressFeed((progress) => store.update(progress)).start()
  document.body.dataset.ready = "true"
}

void start()
