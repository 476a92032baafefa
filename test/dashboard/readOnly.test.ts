/**
 * A read-only server's dashboard in headless Chromium: the jobs, their
 * statuses, transactions and details are all there, and not one action is —
 * no verb button, no form, no "Cancel transaction". The API itself refuses a
 * POST made from the page with its typed 403.
 */
import { Effect } from "effect"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as JobTxn from "../../src/JobTxn.ts"
import { launchBrowser, openPage, problemsOf, startServer, type TestServer, writeFile } from "./harness.ts"

declare const fetch: any

let browser: Awaited<ReturnType<typeof launchBrowser>>
let server: TestServer

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startServer({ readOnly: true })])
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe("a read-only dashboard", () => {
  it("shows every job and offers no action; the API refuses the page's POST", async () => {
    const source = writeFile(server.dir, "disk.img", 256 * 1024)
    const backup = (id: string) => ({ type: "backup", id, speed: 8 * 1024, params: { source, target: join(server.dir, `${id}.bak`) } })
    // The engine's own jobs: the API would refuse to create them.
    await server.run(Effect.gen(function*() {
      const { jobs } = server
      yield* Effect.orDie(jobs.run(backup("solo")))
      const txn = yield* JobTxn.make
      const a = yield* Effect.orDie(jobs.create({ ...backup("a"), txn }))
      const b = yield* Effect.orDie(jobs.create({ ...backup("b"), txn }))
      yield* Effect.orDie(jobs.start(a))
      yield* Effect.orDie(jobs.start(b))
    }))
    const page = await openPage(browser.context, server.url)
    await page.waitForSelector('.viewport .row[data-id="solo"][data-status="running"]')
    await page.waitForSelector('.txn li[data-id="b"][data-status="running"]')
    assert.strictEqual(await page.getAttribute("body", "data-mode"), "read-only")
    assert.strictEqual(await page.textContent("#read-only"), "Read-only: this server refuses every action")
    assert.strictEqual(await page.locator("button.action").count(), 0)
    assert.strictEqual(await page.locator("button.copy").count(), 0)
    assert.strictEqual(await page.locator("form, .new-jobs, [data-action]").count(), 0)
    // The detail view has the job, and no actions either.
    await page.click('.viewport .row[data-id="solo"] button.job-id')
    await page.waitForSelector("#detail .timeline tbody tr")
    assert.strictEqual(await page.locator("#detail .detail-actions-section").count(), 0)
    // Created by the engine, not over the API: its parameters are not known to the API.
    assert.strictEqual(await page.textContent("#detail .params"), "(not known: the job was not created over the HTTP API)")
    await page.keyboard.press("Escape")
    // What the page would get if it tried: the API's typed refusal.
    const refused = await page.evaluate(async () => {
      const response = await fetch("/api/jobs/solo/pause", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
      return { status: response.status, body: await response.json() }
    })
    assert.deepStrictEqual(refused, {
      status: 403,
      body: { error: { class: "GenericError", desc: "The server is read-only: POST /api/jobs/solo/pause is refused" } }
    })
    // Nothing else went wrong (a refused request is the page's to show, not an error of its own).
    assert.deepStrictEqual(problemsOf(page), [])
  }, 30_000)
})
