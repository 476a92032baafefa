/**
 * The dashboard in headless Chromium against a real server with real file
 * jobs (small files, low speed limits): a backup started from the form, its
 * progress bar advancing; pause and resume from its button; a button its
 * job's state refuses, disabled with QEMU's words as its reason; a READY
 * mirror soft-cancelled and completing; a transaction cancelled as one, every
 * member aborting; the QMP and CLI forms of an action; screenshots of the
 * main view and of a job's detail.
 */
import * as fs from "node:fs"
import { join } from "node:path"
import type { BrowserContext, Locator, Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { api, launchBrowser, openPage, problemsOf, screenshot, startServer, type TestServer, writeFile } from "./harness.ts"

// The page's own globals, for the functions that run in it (this file is type-checked for Node).
declare const document: any
declare const navigator: any

let server: TestServer
let browser: Awaited<ReturnType<typeof launchBrowser>>
let context: BrowserContext
let page: Page
let source: string

beforeAll(async () => {
  ;[server, browser] = await Promise.all([startServer(), launchBrowser()])
  context = browser.context
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url })
  source = writeFile(server.dir, "disk.img", 256 * 1024)
  page = await openPage(context, server.url)
  page.setDefaultTimeout(10_000)
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

const row = (id: string) => `.viewport .row[data-id="${id}"]`

/** Waits until the element's text satisfies `test` (read in the page, at each frame). */
const waitText = (selector: string, expected: string | RegExp) =>
  page.waitForFunction(
    ([selector, source, flags]) => {
      const text = document.querySelector(selector)?.textContent ?? ""
      return flags === null ? text === source : new RegExp(source, flags).test(text)
    },
    [selector, typeof expected === "string" ? expected : expected.source, typeof expected === "string" ? null : expected.flags] as const
  )

/** Fills the form's job fields (the single job's, or a transaction member's). */
const fill = async (scope: string | Locator, fields: Readonly<Record<string, string>>) => {
  const fields_ = typeof scope === "string" ? page.locator(scope) : scope
  for (const [name, value] of Object.entries(fields)) {
    const field = fields_.locator(`[data-field="${name}"]`)
    if (name === "type") await field.selectOption(value)
    else await field.fill(value)
  }
}

const single = ".new-form .job-fields:not(.member)"

describe("the dashboard, with real file jobs", () => {
  it("starts a rate-limited backup from the form; its progress bar advances", async () => {
    await fill(single, { id: "b1", source, target: join(server.dir, "b1.bak"), speed: "24K" })
    // The form asks the API as the user types: a target in a directory that is not there is refused inline.
    await page.locator(`${single} [data-field="target"]`).fill(join(server.dir, "nowhere", "b1.bak"))
    const refusal = await api(server, "/api/transactions/validate", {
      jobs: [{ type: "backup", id: "b1", speed: 24 * 1024, params: { source, target: join(server.dir, "nowhere", "b1.bak") } }]
    })
    assert.strictEqual(refusal.status, 400)
    await waitText("#new-message", refusal.json.error.desc)
    await page.locator(`${single} [data-field="target"]`).fill(join(server.dir, "b1.bak"))
    await page.getByRole("button", { name: "Start backup" }).click()
    await waitText("#new-message", "Started b1")
    await waitText(`${row("b1")} .badge`, "running")
    await waitText(`${row("b1")} .c-type`, "backup")
    await waitText(`${row("b1")} .c-limit`, "24.0 KiB/s")
    const progressOf = () => page.$eval(`${row("b1")} progress`, (bar) => (bar as { value: number }).value)
    await page.waitForFunction((selector) => document.querySelector(selector)?.value > 0, `${row("b1")} progress`)
    const first = await progressOf()
    await page.waitForFunction(
      ([selector, first]) => document.querySelector(selector).value > first,
      [`${row("b1")} progress`, first] as const
    )
    assert.isBelow(first, 1)
    assert.match((await page.textContent(`${row("b1")} .amount`))!, /^[\d.]+ KiB \/ 256 KiB · \d+%$/)
  }, 30_000)

  it("pauses the backup from its button and resumes it", async () => {
    await page.click(`${row("b1")} button[data-verb="pause"]`)
    await waitText(`${row("b1")} .badge`, "paused")
    assert.strictEqual((await api(server, "/api/jobs/b1")).json.status, "paused")
    // The same button now resumes.
    await waitText(`${row("b1")} button[data-verb="resume"]`, "Resume")
    await page.click(`${row("b1")} button[data-verb="resume"]`)
    await waitText(`${row("b1")} .badge`, "running")
    assert.strictEqual((await api(server, "/api/jobs/b1")).json.userPaused, false)
  }, 30_000)

  it("a button the job's state refuses is disabled, and says why in QEMU's words", async () => {
    const complete = page.locator(`${row("b1")} button[data-verb="complete"]`)
    const reason = "Job 'b1' in state 'running' cannot accept command verb 'complete'"
    assert.strictEqual(await complete.getAttribute("aria-disabled"), "true")
    assert.strictEqual(await complete.getAttribute("title"), reason)
    const described = await complete.getAttribute("aria-describedby")
    assert.strictEqual(await page.textContent(`#${described}`), reason)
    // It stays reachable by keyboard, and pressing it does nothing.
    await complete.focus()
    await page.keyboard.press("Enter")
    assert.isTrue(await page.locator(".jobs .error-line").isHidden())
    assert.strictEqual((await api(server, "/api/jobs/b1")).json.status, "running")

    // The detail view: every verb, each refused one with its reason; its QMP and CLI forms.
    await page.click(`${row("b1")} button.job-id`)
    const dialog = page.locator("dialog#detail")
    await dialog.waitFor()
    const resume = dialog.locator('button[data-verb="resume"]')
    assert.strictEqual(await resume.getAttribute("title"), "Can't resume a job that was not paused")
    assert.strictEqual(await dialog.locator('button[data-verb="finalize"]').getAttribute("title"), "Job 'b1' in state 'running' cannot accept command verb 'finalize'")
    assert.isNull(await dialog.locator('button[data-verb="pause"]').getAttribute("aria-disabled"))
    await dialog.locator('[data-action-row="pause"] button[data-copy="cli"]').click()
    assert.strictEqual(await page.evaluate(() => navigator.clipboard.readText()), `npx effect-jobs qmp job-pause '{"id":"b1"}'`)
    await dialog.locator('[data-action-row="cancel"] button[data-copy="qmp"]').click()
    assert.strictEqual(await page.evaluate(() => navigator.clipboard.readText()), `{"execute":"block-job-cancel","arguments":{"device":"b1"}}`)
    assert.include(await dialog.locator("#cancel-note").textContent(), "backup has no soft cancel")
    await waitText("#detail .params", new RegExp(`"target": "${join(server.dir, "b1.bak")}"`))
    await page.keyboard.press("Escape")
    await dialog.waitFor({ state: "hidden" })
  }, 30_000)

  it("soft-cancels a READY mirror, which then completes with its copy", async () => {
    await page.getByRole("radio", { name: "Mirror" }).check()
    await fill(single, { id: "m1", source, target: join(server.dir, "m1.bak"), speed: "" })
    await page.getByRole("button", { name: "Start mirror" }).click()
    await waitText(`${row("m1")} .badge`, "ready")
    // It waits for a person: the inbox has it.
    await waitText('.inbox-item[data-id="m1"] .why', "ready to complete")
    await page.click(`${row("m1")} button[data-verb="cancel"]`)
    await waitText(`${row("m1")} .badge`, /completed$/)
    assert.deepStrictEqual(fs.readFileSync(join(server.dir, "m1.bak")), fs.readFileSync(source))
  }, 30_000)

  it("cancels a transaction as one: every member aborts, and the page says which caused it", async () => {
    await page.getByRole("radio", { name: "Transaction" }).check()
    const members = page.locator(".new-form .job-fields.member")
    assert.strictEqual(await members.count(), 2)
    await fill(members.nth(0), { type: "backup", id: "x1", source, target: join(server.dir, "x1.bak"), speed: "16K" })
    await fill(members.nth(1), { type: "backup", id: "x2", source, target: join(server.dir, "x2.bak"), speed: "16K" })
    await page.getByRole("button", { name: "Start transaction" }).click()
    await waitText("#new-message", /^Started x1, x2 \(transaction t\d+\)$/)
    const txn = (await page.textContent("#new-message"))!.match(/transaction (t\d+)/)![1]!
    const article = `.txn[data-txn="${txn}"]`
    await waitText(`${article} li[data-id="x1"] .badge`, "running")
    await waitText(`${article} li[data-id="x2"] .badge`, "running")
    await page.click(`${article} button[data-action="cancel-transaction"]`)
    await page.waitForFunction(
      (article) => [...document.querySelectorAll(`${article} li`)].every((li: any) => li.getAttribute("data-outcome") === "cancelled"),
      article
    )
    await waitText(`${article} .txn-state`, "aborted")
    await waitText(`${article} .cause`, /^Aborted by x[12]/)
    assert.isFalse(fs.existsSync(join(server.dir, "x1.bak")))
    assert.isFalse(fs.existsSync(join(server.dir, "x2.bak")))
    // A transaction that has ended offers nothing more.
    await page.waitForFunction(
      (article) => document.querySelector(`${article} button[data-action="cancel-transaction"]`)?.getAttribute("aria-disabled") === "true",
      article
    )
  }, 30_000)

  it("screenshots: the main view and a job's detail", async () => {
    // A view with something in every part of it.
    const image = writeFile(server.dir, "vm.img", 4 * 1024 * 1024)
    const create = (body: object) => api(server, "/api/jobs", body)
    await create({ type: "backup", id: "nightly", speed: 160 * 1024, params: { source: image, target: join(server.dir, "nightly.bak") } })
    await create({ type: "mirror", id: "replica", manualDismiss: true, params: { source, target: join(server.dir, "replica.bak") } })
    await create({ type: "backup", id: "archive", speed: 64 * 1024, params: { source: image, target: join(server.dir, "archive.bak") } })
    await api(server, "/api/jobs/archive/pause", {})
    await api(server, "/api/transactions", {
      completionMode: "grouped",
      jobs: [
        { type: "backup", id: "db", speed: 96 * 1024, params: { source: image, target: join(server.dir, "db.bak") } },
        { type: "backup", id: "logs", speed: 256 * 1024, params: { source: image, target: join(server.dir, "logs.bak") } }
      ]
    })
    await waitText(`${row("replica")} .badge`, "ready")
    await waitText(`${row("archive")} .badge`, "paused")
    await page.getByRole("radio", { name: "Backup" }).check()
    await page.waitForFunction(() => /KiB\/s$/.test(document.querySelector('.viewport .row[data-id="db"] .c-rate')?.textContent ?? ""))
    await page.evaluate(() => (globalThis as any).scrollTo(0, 0))
    await screenshot(page, "dashboard-main.png")
    await page.click(`${row("nightly")} button.job-id`)
    await page.locator("dialog#detail").waitFor()
    await page.waitForFunction(() => document.querySelectorAll("#detail .timeline tbody tr").length >= 2)
    // A few seconds of rate for its chart.
    await page.waitForFunction(() => document.querySelector("#detail .rate-chart .line")?.getAttribute("points")?.split(" ").length > 12, undefined, { timeout: 15_000 })
    await screenshot(page, "dashboard-detail.png")
    await page.keyboard.press("Escape")
    // Dark, and a phone.
    await page.emulateMedia({ colorScheme: "dark" })
    await screenshot(page, "dashboard-main-dark.png")
    await page.setViewportSize({ width: 390, height: 844 })
    await screenshot(page, "dashboard-phone.png")
    await page.emulateMedia({ colorScheme: "light" })
    await screenshot(page, "dashboard-phone-light.png")
    await page.setViewportSize({ width: 1280, height: 800 })
    assert.deepStrictEqual(problemsOf(page), [])
  }, 30_000)
})
