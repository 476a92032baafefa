/**
 * `effect-jobs watch [--socket PATH | --tcp HOST:PORT [--tls-cert FILE
 * --tls-key FILE --tls-ca FILE]]`: the jobs of a server, live.
 *
 * Statuses come from the server's events (`JOB_STATUS_CHANGE`), as they
 * happen; progress comes from `query-jobs` (and the rate limit
 * from `query-block-jobs`) four times a second, and the speed shown is the
 * rate measured from it. A job leaves the table when it is dismissed (status
 * `null`).
 *
 * On a terminal the table is redrawn in place. Anywhere else it prints plain
 * lines: one per event as it arrives (`12:00:01 b0 running`), and, at most
 * once a second, one per job whose progress moved. It ends with exit code 0
 * when the server shuts down (event `SHUTDOWN`) or on Ctrl-C, and with 1 if
 * the connection ends otherwise. A server whose job store cannot be written
 * says so (`STORE_UNWRITABLE`): a line, and on a terminal a warning under
 * the title until the store can be written again.
 *
 * `--http URL` follows the server through its HTTP API instead (the event
 * stream, and `GET /api/jobs` for the progress): see `watchHttp.ts`.
 */
import { Clock, Effect, type FileSystem, Option, Schedule } from "effect"
import { Command } from "effect/cli"
import * as Qmp from "../Qmp.ts"
import { clientFlags, type ClientFlags, clientTarget, describeTarget, oneEndpoint } from "./endpoint.ts"
import { type CommandFailed, exitCodes, exitOnSignalWith, fail } from "./exit.ts"
import { httpAlone, watchHttpFlag } from "./http.ts"
import { connectHttp, type WatchSource } from "./watchHttp.ts"
import { RateMeter } from "../RateMeter.ts"
import { describe, formatBytes, formatPercent, formatRate, renderBar } from "./progressBar.ts"

interface Row {
  readonly id: string
  type: string
  status: string
  current: number
  total: number
  limit: number | undefined
  error: string | undefined
  readonly meter: RateMeter
  lastPlainAt: number
  lastPlainProgress: string
}

interface JobInfoReply {
  readonly id: string
  readonly type: string
  readonly status: string
  readonly "current-progress": number
  readonly "total-progress": number
  readonly error?: string
}

interface BlockJobInfoReply {
  readonly device: string
  readonly speed: number
}

const tick = "250 millis"
const plainProgressMillis = 1000
/** The size of the table last drawn on the terminal, and the terminal's width then. */
export interface Drawn {
  readonly lines: number
  readonly columns: number
}

/**
 * What starts a redraw of the table: the cursor back up to the top of the
 * previous table, and everything below it erased (a shorter table leaves no
 * stale lines). After a resize the old lines may have been rewrapped and no
 * longer take one row each, so the screen is cleared and the table starts at
 * its top instead.
 */
export const redrawFrom = (previous: Drawn | undefined, columns: number): string => {
  if (previous === undefined) return "\x1b[J"
  if (previous.columns !== columns) return "\x1b[H\x1b[2J"
  return `\x1b[${previous.lines}A\r\x1b[J`
}

const clock = (millis: number): string => {
  const date = new Date(millis)
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, "0")).join(":")
}

const pad = (text: string, width: number) => text.length >= width ? `${text} ` : text.padEnd(width)

const activeStatuses = new Set(["running", "ready", "standby", "paused", "waiting", "pending", "aborting"])

export interface WatchOptions extends ClientFlags {
  /** `--http URL`: the server's HTTP API instead of QMP. */
  readonly http?: Option.Option<string> | undefined
}

export const watch = (options: WatchOptions): Effect.Effect<void, CommandFailed, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    yield* exitOnSignalWith(exitCodes.success)
    const http = Option.getOrUndefined(options.http ?? Option.none())
    const target = http === undefined ? yield* clientTarget(options) : undefined
    const where = http ?? describeTarget(target!)
    // Events wait here until the next redraw; the client keeps none of them itself.
    const pending: Array<Qmp.EventMessage> = []
    const client: WatchSource = target === undefined
      ? yield* connectHttp(http!, { onEvent: (event) => pending.push(event) }).pipe(
        Effect.catch((error) => fail(error.message))
      )
      : yield* Qmp.connect(target, { keepEvents: false, onEvent: (event) => pending.push(event) }).pipe(
        Effect.catch((error) =>
          // A connection the system refused names the address and the reason (ENOENT, …) itself.
          fail(error.code === undefined ? `cannot watch the QMP server at ${where}: ${error.message}` : error.message)
        )
      )
    const interactive = process.stdout.isTTY === true
    const write = (text: string) => {
      process.stdout.write(text)
    }

    const rows = new Map<string, Row>()
    /** Ids whose `null` event was seen: a late `query-jobs` reply must not bring them back. */
    const gone = new Set<string>()
    let lastEvent = ""
    let drawn: Drawn | undefined = undefined
    let shutdown = false
    /** While the server's store cannot be written: what it said (shown under the table's title). */
    let storeProblem: string | undefined = undefined

    const rowFor = (id: string): Row => {
      let row = rows.get(id)
      if (row === undefined) {
        row = {
          id,
          type: "?",
          status: "?",
          current: 0,
          total: 0,
          limit: undefined,
          error: undefined,
          meter: new RateMeter(),
          lastPlainAt: Number.NEGATIVE_INFINITY,
          lastPlainProgress: ""
        }
        rows.set(id, row)
      }
      return row
    }

    /** Applies the events received since the last look. */
    const applyEvents = () => {
      for (const event of pending.splice(0)) {
        const data = event.data ?? {}
        let line: string
        if (event.event === "JOB_STATUS_CHANGE") {
          const id = String(data.id)
          const status = String(data.status)
          if (status === "null") {
            rows.delete(id)
            gone.add(id)
          } else {
            if (status === "created") gone.delete(id)
            rowFor(id).status = status
          }
          line = `${id} ${status}`
        } else if (event.event === "SHUTDOWN") {
          shutdown = true
          line = `server shutting down (${String(data.reason)})`
        } else if (event.event === "STORE_UNWRITABLE") {
          storeProblem = `the job store cannot be written: ${String(data.error)}; new jobs are refused until it can`
          line = storeProblem
        } else if (event.event === "STORE_WRITABLE") {
          storeProblem = undefined
          line = `the job store can be written again (after ${formatSeconds(Number(data["unwritable-ms"]))})`
        } else {
          const id = String(data.device ?? data.id ?? "")
          if (typeof data.error === "string") {
            const row = rows.get(id)
            if (row !== undefined) row.error = data.error
          }
          line = `${id} ${event.event}${typeof data.error === "string" ? ` error: ${data.error}` : ""}`
        }
        const stamp = clock(event.timestamp.seconds * 1000 + Math.floor(event.timestamp.microseconds / 1000))
        lastEvent = `${stamp} ${line}`
        if (!interactive) write(`${stamp} ${line}\n`)
      }
    }

    /** Progress from a listing; the first listing also adds the jobs older than this watch (returned). */
    const applyQuery = (
      jobs: ReadonlyArray<JobInfoReply>,
      blockJobs: ReadonlyArray<BlockJobInfoReply>,
      first: boolean,
      now: number
    ): Array<Row> => {
      const limits = new Map(blockJobs.map((job) => [job.device, job.speed]))
      const added: Array<Row> = []
      for (const job of jobs) {
        const known = rows.get(job.id)
        // Later jobs come from their events; a job already seen gone is not brought back.
        if (known === undefined && (!first || gone.has(job.id))) continue
        const row = known ?? rowFor(job.id)
        if (known === undefined) {
          row.status = job.status
          added.push(row)
        }
        row.type = job.type
        row.current = job["current-progress"]
        row.total = job["total-progress"]
        row.error = job.error ?? row.error
        const limit = limits.get(job.id)
        row.limit = limit === undefined || limit === 0 ? undefined : limit
        row.meter.add(now, row.current)
      }
      return added
    }

    const progressText = (row: Row) =>
      `${describe(row, row.meter.rate, { status: row.status })}${row.limit === undefined ? "" : `  limit ${formatRate(row.limit)}`}`

    const printPlainProgress = (now: number) => {
      for (const row of rows.values()) {
        if (!activeStatuses.has(row.status) || now - row.lastPlainAt < plainProgressMillis) continue
        // Only progress: a job that stands still (paused, READY and in sync) prints nothing new.
        const progress = `${row.status} ${row.current} ${row.total} ${row.limit}`
        if (progress === row.lastPlainProgress) continue
        row.lastPlainAt = now
        row.lastPlainProgress = progress
        write(`${clock(now)} ${row.id} ${row.type} ${row.status}  ${progressText(row)}\n`)
      }
    }

    const drawTable = (now: number) => {
      const columns = process.stdout.columns || 120
      const lines: Array<string> = []
      const count = `${rows.size} job${rows.size === 1 ? "" : "s"}`
      lines.push(`effect-jobs watch  ${where}  ${clock(now)}  ${count}  (Ctrl-C to quit)`)
      lines.push(storeProblem === undefined ? "" : `! ${storeProblem}`)
      lines.push(
        `${pad("ID", 12)}${pad("TYPE", 8)}${pad("STATUS", 11)}${pad("PROGRESS", 26)}${pad("DONE / TOTAL", 22)}${pad("SPEED", 12)}LIMIT`
      )
      for (const row of rows.values()) {
        const done = `${formatBytes(row.current)} / ${formatBytes(row.total)}`
        const bar = `${renderBar(row, 18)} ${formatPercent(row)}`
        const speed = activeStatuses.has(row.status) ? formatRate(row.meter.rate) : "-"
        let line = `${pad(row.id, 12)}${pad(row.type, 8)}${pad(row.status, 11)}${pad(bar, 26)}${pad(done, 22)}${pad(speed, 12)}${
          row.limit === undefined ? "-" : formatRate(row.limit)
        }`
        if (row.error !== undefined) line += `  error: ${row.error}`
        lines.push(line)
      }
      if (rows.size === 0) lines.push("(no jobs)")
      lines.push("")
      lines.push(lastEvent === "" ? "last event: -" : `last event: ${lastEvent}`)
      const text = lines.map((line) => line.length >= columns ? line.slice(0, Math.max(1, columns - 1)) : line).join("\n")
      write(`${redrawFrom(drawn, columns)}${text}\n`)
      drawn = { lines: lines.length, columns }
    }

    let first = true
    const refresh = Effect.gen(function*() {
      const jobs = (yield* client.execute("query-jobs")) as ReadonlyArray<JobInfoReply>
      const blockJobs = (yield* client.execute("query-block-jobs")) as ReadonlyArray<BlockJobInfoReply>
      const now = yield* Clock.currentTimeMillis
      if (first && !interactive) write(`watching ${where}: ${jobs.length} job${jobs.length === 1 ? "" : "s"}\n`)
      applyEvents()
      const older = applyQuery(jobs, blockJobs, first, now)
      if (!interactive) for (const row of older) write(`${clock(now)} ${row.id} ${row.status}\n`)
      first = false
      if (interactive) drawTable(now)
      else printPlainProgress(now)
    })

    // Until the server closes the connection (a query in flight then may never be answered).
    yield* refresh.pipe(
      Effect.repeat(Schedule.spaced(tick)),
      Effect.catchTag("QmpClientError", () => client.closed),
      Effect.catchTag("QmpCommandError", (error) => fail(`the server refused a query: ${error.message}`)),
      Effect.raceFirst(client.closed)
    )
    // Show the events that arrived last.
    const now = yield* Clock.currentTimeMillis
    applyEvents()
    if (interactive) drawTable(now)
    if (!shutdown) return yield* fail(`the ${http === undefined ? "QMP server" : "HTTP API"} at ${where} closed the connection`)
    write("the server shut down\n")
  }).pipe(Effect.scoped)

export const watchCommand = Command.make("watch", { ...clientFlags, http: watchHttpFlag }, watch).pipe(
  Command.validate((input) => Effect.andThen(httpAlone(input), oneEndpoint(input))),
  Command.withDescription(
    "Show the jobs of a QMP server live: id, type, status, progress, speed. Redrawn in place on a terminal, plain lines otherwise."
  ),
  Command.withExamples([
    { command: "effect-jobs watch", description: `Watch the server on ${Qmp.defaultSocketPath}` },
    { command: "effect-jobs watch --tcp 127.0.0.1:4444 > jobs.log", description: "Log every event and the progress" },
    { command: "effect-jobs watch --http http://127.0.0.1:8080", description: "Through the HTTP API" }
  ])
)

const formatSeconds = (millis: number): string => `${(millis / 1000).toFixed(millis < 10_000 ? 1 : 0)} s`
