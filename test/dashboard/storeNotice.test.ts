/**
 * The dashboard of a durable server whose store stops taking writes (a full
 * disk, as the store reports it): the page shows why, at once, from the
 * event stream's `StoreUnwritable` (a page opened during the outage too, from
 * the start of its stream); once the store can be written again
 * (`StoreWritable`) the warning goes, and the job created meanwhile is listed.
 */
import { Effect, Ref } from "effect"
import { join } from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import * as JobStore from "../../src/JobStore.ts"
import { failingStore } from "../helpers/failingStore.ts"
import { api, launchBrowser, openPage, problemsOf, startServer, type TestServer, writeFile } from "./harness.ts"

const failing = Effect.runSync(Ref.make(false))
let browser: Awaited<ReturnType<typeof launchBrowser>>
let server: TestServer

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startServer({ store: failingStore(JobStore.memory, failing) })])
}, 30_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe("the dashboard of a durable server", () => {
  it("warns while the job store cannot be written, with the store's reason, and stops once it can", async () => {
    const page = await openPage(browser.context, server.url)
    await page.waitForSelector('.connection[data-state="live"]')
    assert.isTrue(await page.isHidden("#store-notice"))

    Effect.runSync(Ref.set(failing, true))
    const source = writeFile(server.dir, "disk.img", 64 * 1024)
    // Accepted (the store had not failed yet); its commit is the one that fails.
    const created = await api(server, "/api/jobs", { type: "backup", id: "b1", params: { source, target: join(server.dir, "b1.bak") } })
    assert.strictEqual(created.status, 201, JSON.stringify(created.json))
    await page.waitForSelector("#store-notice:not([hidden])")
    const warning = await page.textContent("#store-notice")
    assert.include(warning, "The job store cannot be written")
    assert.include(warning, "no space left on device")
    // Its events wait for the store: the page has not heard of the job.
    assert.strictEqual(await page.locator('.viewport .row[data-id="b1"]').count(), 0)
    // A page opened during the outage shows it too.
    const late = await openPage(browser.context, server.url)
    await late.waitForSelector("#store-notice:not([hidden])")
    assert.include(await late.textContent("#store-notice"), "no space left on device")

    Effect.runSync(Ref.set(failing, false))
    for (const shown of [page, late]) {
      await shown.waitForSelector("#store-notice", { state: "hidden" })
      await shown.waitForSelector('.viewport .row[data-id="b1"]')
      assert.deepStrictEqual(problemsOf(shown), [])
    }
  })
})
