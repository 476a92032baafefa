/**
 * `npm run tour` (examples/start.ts), run for real as a child process: its
 * output must read in the order things happen — a driver's or the program's
 * own line after the events that led to it, never before.
 */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

const tour = fileURLToPath(new URL("../../examples/start.ts", import.meta.url))

describe("npm run tour", () => {
  it("prints every line after the events that led to it", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [tour], { timeout: 15_000 })
    const lines = stdout.trimEnd().split("\n")
    /** Each line, found after the one before it: `starts` is a subsequence of the output. */
    const inOrder = (...starts: Array<string>) => {
      let from = 0
      for (const start of starts) {
        const index = lines.findIndex((line, i) => i >= from && line.startsWith(start))
        expect(index, `${JSON.stringify(start)} after line ${from} of\n${stdout}`).toBeGreaterThanOrEqual(0)
        from = index + 1
      }
    }

    inOrder("copy     → paused", "  copy paused at", "copy     → running")
    inOrder("doomed   → aborting", "  [doomed] abort", "doomed   CANCELLED", "doomed   → null")
    inOrder("mirror   → ready", "mirror   → pending", "  [mirror] commit", "mirror   COMPLETED", "mirror   → null")
    inOrder("copy     → pending", "  [copy] commit", "copy     COMPLETED", "copy     → null")
    // Each outcome comes after the job's last event.
    inOrder("copy     → null", "  copy: {\"_tag\":\"Succeeded\"}")
    inOrder("doomed   → null", "  doomed: {\"_tag\":\"Cancelled\"}")
    inOrder("mirror   → null", "  mirror: {\"_tag\":\"Succeeded\"}")
    expect(lines.filter((line) => line.endsWith("→ null"))).toHaveLength(3)
  })
})
