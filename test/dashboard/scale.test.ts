/**
 * The dashboard with 10,000 jobs in headless Chromium: only the rows in view
 * exist in the document, scrolling reaches the last job, and under a storm of
 * status changes (over a thousand events a second) it draws at most once per
 * animation frame — a MutationObserver on the table sees no more batches of
 * changes than there were frames — still answers a search as it is typed, and
 * ends up where the server is.
 */
import { Effect, Fiber } from "effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { api, launchBrowser, openPage, problemsOf, startServer, type TestServer } from "./harness.ts"

declare const document: any
declare const MutationObserver: any
declare const requestAnimationFrame: any
declare const window: any

const total = 10_000

let browser: Awaited<ReturnType<typeof launchBrowser>>
let server: TestServer

beforeAll(async () => {
  ;[browser, server] = await Promise.all([launchBrowser(), startServer({ testDriver: true })])
  // Jobs that wait, each for its turn that never comes: 20,000 events, more than the log keeps.
  await server.run(Effect.gen(function*() {
    for (let i = 0; i < total; i++) {
      yield* Effect.orDie(server.jobs.run({ type: "test", id: `j${i}`, params: { iterations: 1_000_000, wait: "yield" } }))
    }
  }))
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe("the dashboard with 10,000 jobs", () => {
  it("keeps only the rows in view, and under 1,000+ events a second draws once per frame and stays responsive", async () => {
    const page = await openPage(browser.context, server.url)
    await page.waitForFunction((total) => document.querySelector(".jobs .count")?.textContent === `${total} of ${total} jobs`, total)
    const drawn = () => page.locator(".viewport .row").count()
    assert.isBelow(await drawn(), 60)
    // The last job is a scroll away.
    await page.$eval(".viewport", (viewport) => {
      ;(viewport as any).scrollTop = (viewport as any).scrollHeight
    })
    await page.waitForSelector(`.viewport .row[data-id="j${total - 1}"]`)
    assert.isBelow(await drawn(), 60)

    // Count the frames, and the batches of changes to the table, while the storm lasts.
    await page.evaluate(() => {
      const counts = { frames: 0, batches: 0, running: true }
      window.counts = counts
      new MutationObserver(() => counts.batches++).observe(document.querySelector(".viewport"), {
        subtree: true,
        childList: true,
        characterData: true,
        attributes: true
      })
      const frame = () => {
        counts.frames++
        if (counts.running) requestAnimationFrame(frame)
      }
      requestAnimationFrame(frame)
    })
    const before = (await api(server, "/api/server")).json.seq as number
    // 50 jobs paused and resumed every 20 ms: 5,000 events a second, for a second and a half.
    const storm = await server.run(Effect.forkDetach(Effect.gen(function*() {
      for (let round = 0; round < 75; round++) {
        const ids = Array.from({ length: 50 }, (_, i) => `j${total - 1 - ((round * 50 + i) % 200)}`)
        for (const id of ids) yield* Effect.orDie(server.jobs.pause(id))
        for (const id of ids) yield* Effect.orDie(server.jobs.awaitStatus(id, "paused"))
        for (const id of ids) yield* Effect.orDie(server.jobs.resume(id))
        yield* Effect.sleep("20 millis")
      }
    })))
    // A search typed during the storm is answered: j42, j420–j429, j4200–j4299.
    await page.fill("#filter-text", "j42")
    await page.waitForFunction((total) => document.querySelector(".jobs .count")?.textContent === `111 of ${total} jobs`, total)
    await page.fill("#filter-text", "")
    await server.run(Fiber.join(storm))
    const after = (await api(server, "/api/server")).json.seq as number
    assert.isAtLeast(after - before, 7_500)
    await page.waitForFunction((seq) => Number(document.querySelector("#seq")?.dataset.seq) === seq, after, { timeout: 20_000 })
    const counts = await page.evaluate(() => {
      window.counts.running = false
      return window.counts
    })
    // Drawn per frame, not per event: no more batches of changes than frames (one more for the last).
    assert.isAtLeast(counts.frames, 1)
    assert.isAtMost(counts.batches, counts.frames + 1, JSON.stringify(counts))
    assert.isBelow(counts.batches, (after - before) / 10, JSON.stringify(counts))
    assert.isBelow(await drawn(), 60)
    // Where the server is: every job running again.
    const listed = (await api(server, "/api/jobs")).json
    assert.isTrue(listed.jobs.every((job: { status: string }) => job.status === "running"))
    assert.isNull(await page.$('.viewport .row[data-status="paused"]'))
    assert.deepStrictEqual(problemsOf(page), [])
  }, 60_000)
})
