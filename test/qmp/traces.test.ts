/**
 * Replays the QMP sessions recorded against QEMU 7.2 (qemu-traces/, see its
 * README) against effect-jobs and compares: every reply (errors exactly;
 * progress numbers only as numbers), each job's own sequence of events (status
 * changes and BLOCK_JOB_* events, without the drain pairs of QEMU's block
 * layer), and every BLOCK_JOB_* payload (same members, same values except
 * progress numbers).
 *
 * QEMU's `blockdev-add` is skipped; `blockdev-backup`/`blockdev-mirror` become
 * effect-jobs's `backup`/`mirror` (`device` → `source`). Jobs are the test
 * stand-ins of standIn.ts; where QEMU's job made progress between two
 * commands, the replay advances the TestClock by one whole copy (a job at
 * speed 1, like the recorded ones, does not move).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { readFileSync } from "node:fs"
import type { QmpClient } from "../../src/Qmp.ts"
import { layer, startServer } from "./harness.ts"
import * as StandIn from "./standIn.ts"

interface Entry {
  readonly t: "cmd" | "resp" | "event"
  readonly n?: number
  readonly execute?: string
  readonly arguments?: Record<string, unknown>
  readonly return?: unknown
  readonly error?: unknown
  readonly event?: string
  readonly data?: Record<string, unknown>
}

interface Trace {
  readonly summary: {
    readonly status_sequences_without_drain: Record<string, Array<string>>
    readonly event_order: Array<string>
  }
  readonly log: Array<Entry>
}

const load = (name: string): Trace =>
  JSON.parse(readFileSync(new URL(`./qemu-traces/${name}.json`, import.meta.url), "utf8")) as Trace

const translateJob = (args: Record<string, unknown>): Record<string, unknown> => {
  const { device, sync: _sync, ...rest } = args
  return { ...rest, source: device }
}

/** The effect-jobs command for a recorded one; undefined for commands effect-jobs has no use for. */
const translate = (entry: Entry): { execute: string; arguments?: Record<string, unknown> } | undefined => {
  switch (entry.execute) {
    case "blockdev-add":
      return undefined
    case "blockdev-backup":
      return { execute: "backup", arguments: translateJob(entry.arguments!) }
    case "blockdev-mirror":
      return { execute: "mirror", arguments: translateJob(entry.arguments!) }
    case "transaction": {
      const args = entry.arguments as { actions: Array<{ type: string; data: Record<string, unknown> }> }
      return {
        execute: "transaction",
        arguments: {
          ...entry.arguments,
          actions: args.actions.map((a) => ({
            type: a.type === "blockdev-backup" ? "backup" : "mirror",
            data: translateJob(a.data)
          }))
        }
      }
    }
    default:
      return entry.arguments === undefined
        ? { execute: entry.execute! }
        : { execute: entry.execute!, arguments: entry.arguments }
  }
}

const progressKeys = new Set(["len", "offset", "current-progress", "total-progress"])

/** Progress numbers become "<number>"; everything else is kept. */
const normalize = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(normalize)
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = progressKeys.has(k) && typeof v === "number" ? "<number>" : normalize(v)
    }
    return out
  }
  return value
}

const jobOf = (e: { readonly data?: Readonly<Record<string, unknown>> }) => String(e.data?.id ?? e.data?.device)
const keyOf = (e: { readonly event?: string; readonly data?: Readonly<Record<string, unknown>> }) =>
  e.event === "JOB_STATUS_CHANGE" ? String(e.data?.status) : String(e.event)

/** One job's entries of `event_order`, without the paused/running and standby/ready drain pairs. */
const withoutDrain = (order: ReadonlyArray<string>, job: string): Array<string> => {
  const mine = order.filter((e) => e.startsWith(`${job}:`)).map((e) => e.slice(job.length + 1))
  const out: Array<string> = []
  for (let i = 0; i < mine.length; i++) {
    const pair = (mine[i] === "paused" && mine[i + 1] === "running") || (mine[i] === "standby" && mine[i + 1] === "ready")
    if (pair) i++
    else out.push(mine[i]!)
  }
  return out
}

/** The recorded events, drain pairs removed (the same rule as `withoutDrain`, applied to the log). */
const recordedEvents = (trace: Trace): Array<Entry & { readonly index: number }> => {
  const events = trace.log.map((e, index) => ({ ...e, index })).filter((e) => e.t === "event")
  const drop = new Set<number>()
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!
    const key = keyOf(e)
    if (key !== "paused" && key !== "standby") continue
    const next = events.slice(i + 1).find((f) => jobOf(f) === jobOf(e))
    if (next !== undefined && keyOf(next) === (key === "paused" ? "running" : "ready")) {
      drop.add(e.index)
      drop.add(next.index)
    }
  }
  return events.filter((e) => !drop.has(e.index))
}

/** Waits until the client has `count` events of `job` with `key`. */
const awaitCount = (client: QmpClient, job: string, key: string, count: number) =>
  Effect.suspend(() => {
    let seen = 0
    return client.awaitEvent((e) => jobOf(e) === job && keyOf(e) === key && ++seen >= count)
  })

const replay = (name: string) =>
  Effect.gen(function*() {
    const trace = load(name)
    const h = yield* startServer()
    const client = yield* h.client()
    const expected = recordedEvents(trace)
    const cmds = trace.log.map((e, index) => ({ ...e, index })).filter((e) => e.t === "cmd")
    for (let c = 0; c < cmds.length; c++) {
      const cmd = cmds[c]!
      const translated = translate(cmd)
      if (translated === undefined) continue
      const reply = yield* client.request(translated)
      const recorded = trace.log.find((e) => e.t === "resp" && e.n === cmd.n)!
      const want = "error" in recorded ? { error: recorded.error } : { return: normalize(recorded.return) }
      const got = "error" in reply ? { error: reply.error } : { return: normalize(reply.return) }
      assert.deepStrictEqual(got, want, `reply to ${cmd.execute} (#${cmd.n})`)
      // The events QEMU sent up to the next command: let the jobs run, then wait for all of them.
      const until = cmds[c + 1]?.index ?? Number.POSITIVE_INFINITY
      const due = expected.filter((e) => e.index < until)
      if (due.some((e) => e.index > cmd.index)) {
        yield* TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)
        for (const e of due) yield* awaitCount(client, jobOf(e), keyOf(e), due.filter((f) => jobOf(f) === jobOf(e) && keyOf(f) === keyOf(e)).length)
      }
    }
    // Each job's own event sequence, exactly.
    for (const job of Object.keys(trace.summary.status_sequences_without_drain)) {
      const ours = client.events.filter((e) => e.event !== "SHUTDOWN" && jobOf(e) === job).map(keyOf)
      const theirs = withoutDrain(trace.summary.event_order, job)
      assert.deepStrictEqual(
        theirs.filter((k) => !k.startsWith("BLOCK_JOB_")),
        trace.summary.status_sequences_without_drain[job],
        "the drain-free event order agrees with the recorded status sequence"
      )
      assert.deepStrictEqual(ours, theirs, `events of ${job}`)
    }
    // BLOCK_JOB_* payloads, job by job, in order.
    const payloads = (events: ReadonlyArray<{ readonly event?: string; readonly data?: Readonly<Record<string, unknown>> }>) =>
      events
        .filter((e) => e.event?.startsWith("BLOCK_JOB_"))
        .map((e) => ({ job: jobOf(e), event: e.event, data: normalize(e.data) }))
        .sort((a, b) => a.job.localeCompare(b.job))
    assert.deepStrictEqual(payloads(client.events), payloads(expected))
    // Not a recorded fact, a consistency check: every event carries a timestamp.
    for (const e of client.events) assert.isNumber(e.timestamp.seconds)
  })

describe("QMP sessions recorded against QEMU 7.2", () => {
  it.effect("backup with auto-finalize and auto-dismiss off: every refused verb, query-jobs and query-block-jobs at each stage", () =>
    replay("backup_manual_finalize_dismiss").pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("soft block-job-cancel of a READY mirror: COMPLETED without error", () =>
    replay("mirror_cancel_ready_soft").pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("grouped transaction: cancelling one member aborts all, the finished one included", () =>
    replay("txn_grouped_one_cancelled").pipe(Effect.scoped, Effect.provide(layer)))
})
