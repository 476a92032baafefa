/**
 * The dashboard's connection, killed for real: a TCP proxy between Chromium
 * and the server drops every connection and holds the new ones while jobs
 * change. Once let through, the page resumes from its last sequence number
 * (`Last-Event-ID`), says "caught up (N events)" with exactly the events it
 * missed, and shows what `GET /api/jobs` shows. When the server no longer
 * keeps the missed events, the page gets a reset and reloads the list. A
 * hidden tab does not redraw; shown again, it draws what happened meanwhile.
 */
import { Effect } from "effect"
import { join } from "node:path"
import type { Page } from "playwright-core"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { api, launchBrowser, openPage, problemsOf, startServer, type TestServer, until, writeFile } from "./harness.ts"

declare const document: any

const cutStream = "console error: Failed to load resource: net::ERR_INCOMPLETE_CHUNKED_ENCODING"

let browser: Awaited<ReturnType<typeof launchBrowser>>
const servers: Array<TestServer> = []

beforeAll(async () => {
  browser = await launchBrowser()
}, 30_000)

afterAll(async () => {
  await browser?.close()
  for (const server of servers) await server.close()
})

const pageSeq = (page: Page) => page.$eval("#seq", (element) => Number((element as any).dataset.seq))

/** Waits until the page has applied every event the server has published. */
const inStep = async (page: Page, server: TestServer) => {
  await page.waitForSelector('.connection[data-state="live"]')
  const { seq } = (await api(server, "/api/server")).json
  await page.waitForFunction((seq) => Number(document.querySelector("#seq")?.dataset.seq) >= seq, seq)
  return seq as number
}

/** The page's rows against `GET /api/jobs`: every listed job with its status, and no other job not dismissed. */
const sameAsApi = async (page: Page, server: TestServer) => {
  const listed = (await api(server, "/api/jobs")).json
  assert.strictEqual(await pageSeq(page), listed.seq)
  const shown = await page.$$eval(".viewport .row:not([data-dismissed])", (rows) =>
    rows.map((row) => [(row as any).dataset.id, (row as any).dataset.status]).sort())
  assert.deepStrictEqual(shown, listed.jobs.map((job: { id: string; status: string }) => [job.id, job.status]).sort())
}

describe("the dashboard's connection", () => {
  it("after a lost connection it resumes from its last event, catches up exactly, and agrees with GET /api/jobs", async () => {
    const server = await startServer({ proxy: true })
    servers.push(server)
    const source = writeFile(server.dir, "disk.img", 1024 * 1024)
    const slowBackup = (id: string) => ({ type: "backup", id, speed: 8 * 1024, params: { source, target: join(server.dir, `${id}.bak`) } })
    assert.strictEqual((await api(server, "/api/jobs", slowBackup("slow"))).status, 201)
    await api(server, "/api/jobs/slow/pause", {})
    const page = await openPage(browser.context, server.url)
    await page.waitForSelector('.viewport .row[data-id="slow"][data-status="paused"]')
    const before = await inStep(page, server)

    // Every connection dropped; new ones wait.
    server.proxy!.hold()
    server.proxy!.cut()
    await page.waitForFunction(() => document.querySelector(".connection")?.dataset.state !== "live")
    // Meanwhile: a job created and paused, another created and force-cancelled, a limit changed.
    assert.strictEqual((await api(server, "/api/jobs", slowBackup("gap1"))).status, 201)
    assert.strictEqual((await api(server, "/api/jobs/gap1/pause", {})).status, 204)
    assert.strictEqual((await api(server, "/api/jobs", slowBackup("gap2"))).status, 201)
    assert.strictEqual((await api(server, "/api/jobs/gap2/cancel", { force: true })).status, 204)
    assert.strictEqual((await api(server, "/api/jobs/slow/speed", { speed: 4096 })).status, 204)
    await until("gap2 to be dismissed", async () =>
      (await api(server, "/api/jobs")).json.jobs.every((job: { id: string }) => job.id !== "gap2"))
    await until("gap1 to be paused", async () => (await api(server, "/api/jobs/gap1")).json.status === "paused")
    const after = (await api(server, "/api/server")).json.seq as number
    assert.isAbove(after, before)

    server.proxy!.release()
    await page.waitForFunction(
      (expected) => document.querySelector("#connection")?.textContent === expected,
      `live: caught up (${after - before} events)`
    )
    await sameAsApi(page, server)
    // The job that came and went while the page was away is shown with how it ended, its whole life in its timeline.
    await page.waitForSelector('.viewport .row[data-id="gap2"][data-dismissed] .badge[data-outcome="cancelled"]')
    await page.click('.viewport .row[data-id="gap2"] button.job-id')
    const timeline = await page.$$eval("#detail .timeline tbody tr td:nth-child(4)", (cells) => cells.map((cell) => cell.textContent).reverse())
    assert.deepStrictEqual(timeline.filter((text) => !/\//.test(text ?? "")), ["created", "running", "aborting", "concluded", "null"])
    await page.keyboard.press("Escape")
    // The progress stream came back too: the new limit is shown.
    await page.waitForFunction(() => document.querySelector('.viewport .row[data-id="slow"] .c-limit')?.textContent === "4.00 KiB/s")
    // No error but the two streams (events, progress) that were cut.
    assert.deepStrictEqual(problemsOf(page), Array(2).fill(cutStream))
    await page.close()
  }, 30_000)

  it("when the server no longer keeps the missed events, it reloads the list (reset)", async () => {
    const server = await startServer({ proxy: true, testDriver: true, retainedEvents: 10 })
    servers.push(server)
    await server.run(Effect.orDie(server.jobs.run({ type: "test", id: "keep", params: { iterations: 5, wait: "yield" } })))
    const page = await openPage(browser.context, server.url)
    await page.waitForSelector('.viewport .row[data-id="keep"][data-status="running"]')
    await inStep(page, server)

    server.proxy!.hold()
    server.proxy!.cut()
    await page.waitForFunction(() => document.querySelector(".connection")?.dataset.state !== "live")
    // Far more events than the server keeps: the page's cursor expires.
    await server.run(Effect.gen(function*() {
      for (let i = 0; i < 5; i++) {
        yield* Effect.orDie(server.jobs.run({ type: "test", id: `quick${i}`, params: { iterations: 0 } }))
        // It dismisses itself: once gone, it has ended.
        yield* Effect.ignore(server.jobs.awaitOutcome(`quick${i}`))
      }
      yield* Effect.orDie(server.jobs.run({ type: "test", id: "late", params: { iterations: 5, wait: "yield" } }))
      yield* Effect.orDie(server.jobs.pause("late"))
      yield* Effect.orDie(server.jobs.awaitStatus("late", "paused"))
    }))
    server.proxy!.release()
    await page.waitForFunction(() => document.querySelector("#connection")?.textContent?.includes("the list was reloaded"))
    await page.waitForSelector('.viewport .row[data-id="late"][data-status="paused"]')
    await sameAsApi(page, server)
    // No error but the two streams (events, progress) that were cut.
    assert.deepStrictEqual(problemsOf(page), Array(2).fill(cutStream))
    await page.close()
  }, 30_000)

  it("a hidden tab draws nothing; shown again, it draws what happened meanwhile", async () => {
    const server = await startServer({ testDriver: true })
    servers.push(server)
    await server.run(Effect.orDie(server.jobs.run({ type: "test", id: "h", params: { iterations: 5, wait: "yield" } })))
    const page = await openPage(browser.context, server.url)
    await page.waitForSelector('.viewport .row[data-id="h"][data-status="running"]')
    const seq = await inStep(page, server)
    // The page is told it is hidden (as a browser tells a background tab), and watched.
    await page.evaluate(() => {
      const win = (globalThis as any)
      Object.defineProperty(document, "visibilityState", { configurable: true, get: () => win.fakeVisibility ?? "visible" })
      win.fakeVisibility = "hidden"
      document.dispatchEvent(new win.Event("visibilitychange"))
      win.mutations = 0
      new win.MutationObserver(() => win.mutations++).observe(document.querySelector("main"), { subtree: true, childList: true, characterData: true, attributes: true })
    })
    await server.run(Effect.gen(function*() {
      yield* Effect.orDie(server.jobs.pause("h"))
      yield* Effect.orDie(server.jobs.awaitStatus("h", "paused"))
    }))
    // Time for the event to arrive and a few frames to pass: nothing is drawn.
    await page.evaluate(() => new Promise((resolve) => {
      let frames = 0
      const frame = () => (++frames === 30 ? resolve(undefined) : (globalThis as any).requestAnimationFrame(frame))
      ;(globalThis as any).requestAnimationFrame(frame)
    }))
    assert.strictEqual(await page.evaluate(() => (globalThis as any).mutations), 0)
    assert.strictEqual(await page.getAttribute('.viewport .row[data-id="h"]', "data-status"), "running")
    await page.evaluate(() => {
      const win = (globalThis as any)
      win.fakeVisibility = "visible"
      document.dispatchEvent(new win.Event("visibilitychange"))
    })
    await page.waitForSelector('.viewport .row[data-id="h"][data-status="paused"]')
    assert.strictEqual(await pageSeq(page), seq + 1)
    assert.deepStrictEqual(problemsOf(page), [])
    await page.close()
  }, 30_000)
})
