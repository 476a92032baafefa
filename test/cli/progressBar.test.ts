/**
 * The progress display's arithmetic and output, with made-up times: sizes,
 * percentages, rates, ETA, the bar, and when plain lines are printed.
 */
import { assert, describe, it } from "@effect/vitest"
import {
  describe as describeProgress,
  eta,
  formatBytes,
  formatDuration,
  formatElapsed,
  formatPercent,
  ProgressBar,
  renderBar
} from "../../src/cli/progressBar.ts"
import { RateMeter } from "../../src/RateMeter.ts"

describe("progress arithmetic", () => {
  it("sizes, percentages, durations", () => {
    assert.deepStrictEqual(
      [0, 512, 1024, 1536, 10 * 1024 * 1024 + 1, 150 * 1024 * 1024, 3 * 1024 ** 3].map(formatBytes),
      ["0 B", "512 B", "1.00 KiB", "1.50 KiB", "10.0 MiB", "150 MiB", "3.00 GiB"]
    )
    // 100% only when everything is done; nothing known yet is 0%.
    assert.deepStrictEqual(
      [{ current: 0, total: 0 }, { current: 1, total: 3 }, { current: 999, total: 1000 }, { current: 5, total: 5 }].map((p) => formatPercent(p)),
      ["  0%", " 33%", " 99%", "100%"]
    )
    // A job that ended well did everything, even with nothing to do.
    assert.strictEqual(formatPercent({ current: 0, total: 0 }, { succeeded: true }), "100%")
    assert.strictEqual(renderBar({ current: 0, total: 0 }, 4, { succeeded: true }), "[████]")
    assert.deepStrictEqual([0, 4.2, 61, 3600 + 62, undefined].map(formatDuration), ["0:00", "0:05", "1:01", "1:01:02", "-:--"])
    assert.deepStrictEqual([0.04, 12.34, 75].map(formatElapsed), ["0.04 s", "12.3 s", "1:15"])
    assert.strictEqual(eta({ current: 25, total: 125 }, 10), 10)
    assert.isUndefined(eta({ current: 25, total: 125 }, undefined))
    assert.strictEqual(renderBar({ current: 1, total: 4 }, 8), "[██░░░░░░]")
    assert.strictEqual(
      describeProgress({ current: 3 * 1024 * 1024, total: 12 * 1024 * 1024 }, 1024 * 1024),
      "3.00 MiB / 12.0 MiB  25%  1.00 MiB/s  ETA 0:09"
    )
    assert.strictEqual(describeProgress({ current: 10, total: 10 }, 5), "10 B / 10 B  100%  5 B/s")
  })

  it("an ETA only while the job runs: not once it is paused, READY, cancelled or finished", () => {
    const halfway = { current: 50, total: 100 }
    assert.strictEqual(describeProgress(halfway, 10, { status: "running" }), "50 B / 100 B  50%  10 B/s  ETA 0:05")
    for (const status of ["paused", "ready", "aborting", "concluded", "null"]) {
      assert.strictEqual(describeProgress(halfway, 10, { status }), "50 B / 100 B  50%  10 B/s", status)
    }
  })

  it("the rate is measured over the recent samples, and starts over when the counter goes back", () => {
    const meter = new RateMeter(1000)
    meter.add(0, 0)
    assert.isUndefined(meter.rate)
    meter.add(500, 500)
    assert.strictEqual(meter.rate, 1000)
    meter.add(1000, 1000)
    meter.add(2000, 1000) // stalled: the window now holds only the stall
    meter.add(3000, 1000)
    assert.strictEqual(meter.rate, 0)
    meter.add(3100, 10)
    assert.isUndefined(meter.rate)
  })
})

describe("ProgressBar", () => {
  it("plain: a line at the first sample, on every status change, and at most once per interval otherwise", () => {
    const out: Array<string> = []
    const bar = new ProgressBar({ label: "backup", interactive: false, write: (t) => void out.push(t), plainIntervalMillis: 1000 })
    bar.update({ current: 0, total: 100 }, "running", 0)
    bar.update({ current: 10, total: 100 }, "running", 250)
    bar.update({ current: 20, total: 100 }, "running", 500)
    bar.update({ current: 40, total: 100 }, "running", 1000)
    bar.note("a message")
    bar.update({ current: 100, total: 100 }, "concluded", 1100)
    bar.finish()
    assert.deepStrictEqual(out, [
      "backup: running  0 B / 100 B  0%  -  ETA -:--\n",
      "backup: running  40 B / 100 B  40%  40 B/s  ETA 0:02\n",
      "a message\n",
      "backup: concluded  100 B / 100 B  100%  91 B/s\n"
    ])
  })

  it("plain: nothing until the size of the work is known; an empty file ends at 100% without an ETA", () => {
    const out: Array<string> = []
    const bar = new ProgressBar({ label: "backup", interactive: false, write: (t) => void out.push(t) })
    bar.update({ current: 0, total: 0 }, "created", 0)
    bar.update({ current: 0, total: 0 }, "running", 250)
    bar.update({ current: 0, total: 0 }, "concluded", 500, true)
    bar.finish()
    assert.deepStrictEqual(out, ["backup: concluded  0 B / 0 B  100%  0 B/s\n"])

    const cancelled: Array<string> = []
    const early = new ProgressBar({ label: "backup", interactive: false, write: (t) => void cancelled.push(t) })
    early.update({ current: 0, total: 0 }, "running", 0)
    early.update({ current: 0, total: 0 }, "aborting", 250)
    early.update({ current: 0, total: 0 }, "concluded", 500)
    assert.deepStrictEqual(cancelled, ["backup: aborting  0 B / 0 B  0%  0 B/s\n", "backup: concluded  0 B / 0 B  0%  0 B/s\n"])
  })

  it("plain: a job that stands still prints nothing more; a READY one that moves, once in ten seconds", () => {
    const out: Array<string> = []
    const bar = new ProgressBar({ label: "mirror", interactive: false, write: (t) => void out.push(t) })
    bar.update({ current: 100, total: 100 }, "ready", 0)
    // An hour in READY, sampled four times a second, with nothing new.
    for (let t = 250; t <= 3_600_000; t += 250) bar.update({ current: 100, total: 100 }, "ready", t)
    assert.strictEqual(out.length, 1)
    // The source grows and the mirror follows: progress moves at every sample.
    for (let t = 3_600_250, n = 101; t <= 3_630_000; t += 250, n++) bar.update({ current: n, total: n }, "ready", t)
    assert.strictEqual(out.length, 1 + 3, out.join("")) // at 3 600 250, 3 610 250 and 3 620 250
    bar.update({ current: 230, total: 230 }, "concluded", 3_630_100, true)
    assert.match(out.at(-1)!, /^mirror: concluded {2}230 B \/ 230 B {2}100% {2}\d+ B\/s\n$/)
  })

  it("interactive, narrow: the status word always shows; the bar shrinks, then the ETA and the rate go", () => {
    const lineAt = (columns: number, status = "running") => {
      const out: Array<string> = []
      const bar = new ProgressBar({ label: "backup", interactive: true, write: (t) => void out.push(t), columns: () => columns })
      bar.update({ current: 0, total: 256 * 1024 ** 2 }, status, 0)
      bar.update({ current: 110 * 1024 ** 2, total: 256 * 1024 ** 2 }, status, 11_000)
      const line = out.at(-1)!.replace("\r\x1b[2K", "")
      assert.isAtMost(line.length, columns - 1, line)
      return line
    }
    assert.strictEqual(lineAt(80), "backup [███████░░░░░░░░░] 110 MiB / 256 MiB  42%  10.0 MiB/s  ETA 0:15  running")
    assert.strictEqual(lineAt(66), "backup 110 MiB / 256 MiB  42%  10.0 MiB/s  ETA 0:15  running")
    assert.strictEqual(lineAt(60), "backup [███░░░] 110 MiB / 256 MiB  42%  10.0 MiB/s  running")
    assert.strictEqual(lineAt(50), "backup [███░░░░░] 110 MiB / 256 MiB  42%  running")
    assert.strictEqual(lineAt(30), "backup [███░░░░] 42%  running")
    assert.strictEqual(lineAt(20), "backup 42%  running")
    assert.strictEqual(lineAt(12), "running")
    assert.strictEqual(lineAt(60, "concluded"), "backup 110 MiB / 256 MiB  42%  10.0 MiB/s  concluded")
  })

  it("interactive: one line redrawn in place, messages above it, a newline at the end", () => {
    const out: Array<string> = []
    const bar = new ProgressBar({ label: "mirror", interactive: true, write: (t) => void out.push(t), columns: () => 70 })
    bar.update({ current: 50, total: 100 }, "running", 0)
    bar.note("mirror: READY")
    bar.finish()
    const line = "mirror [██████████░░░░░░░░░░] 50 B / 100 B  50%  -  ETA -:--  running"
    assert.strictEqual(line.length, 69) // the width of the terminal, less the last column
    assert.deepStrictEqual(out, [
      `\r\x1b[2K${line}`,
      "\r\x1b[2Kmirror: READY\n",
      `\r\x1b[2K${line}`,
      `\r\x1b[2K${line}`,
      "\n"
    ])
  })
})
