/**
 * The durable server killed (SIGKILL) in the middle of a transaction's
 * commit, as real processes, then `effect-jobs serve` started again on the
 * same store and journal directories: the commit journals and the store must
 * agree that the transaction committed. Every target is in place and
 * byte-identical to its source, nothing of the commit is left beside the
 * targets (no journal, no temporary copy, no `.rejected` file), and every
 * member is CONCLUDED without an error, in `query-jobs` and in the event
 * stream.
 *
 * The first server is `fixtures/gatedServer.ts`: the real server plus a job
 * type `gate` whose commit creates a marker file and never returns. Members
 * commit newest first, so where the gate sits in the transaction picks the
 * moment of the kill, with no timing involved (the transaction is created over
 * the HTTP API: QMP's `transaction` takes `backup` and `mirror` actions only):
 *
 * 1. gate newest: the decision is stored, no backup has committed, no journal;
 * 2. gate between the backups: the newer one is in place, its journal written,
 *    the older one not yet renamed;
 * 3. gate oldest: both backups committed and their journal removed; only the
 *    gate's own conclusion is missing.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import * as fs from "node:fs"
import * as http from "node:http"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { wireClient } from "../qmp/harness.ts"
import { bytes, crash, entries, fetchJson, serve, start, tempDir } from "./harness.ts"

const gatedServer = fileURLToPath(new URL("./fixtures/gatedServer.ts", import.meta.url))

/** The gated server, once it listens: its process and the URL of its HTTP API. */
const serveGated = (args: ReadonlyArray<string>, cwd: string) =>
  Effect.gen(function*() {
    const server = yield* start(args, { cwd, program: gatedServer })
    yield* server.waitFor(/^stop with/)
    return { server, url: httpUrl(server.stdout()) }
  })

const httpUrl = (stdout: string): string => {
  const url = stdout.match(/^listening on (http:\/\/127\.0\.0\.1:\d+) \(HTTP API\)$/m)?.[1]
  if (url === undefined) throw new Error(`no HTTP API in:\n${stdout}`)
  return url
}

/** Polls until `path` exists (for at most 15 s); fails at once if the server exits first. */
const awaitFile = (path: string, server: Effect.Success<ReturnType<typeof serveGated>>["server"]) =>
  Effect.raceFirst(
    Effect.retry(
      Effect.suspend(() => fs.existsSync(path) ? Effect.void : Effect.fail(new Error(`${path} never appeared`))),
      { schedule: Schedule.spaced("20 millis"), times: 750 }
    ),
    Effect.flatMap(server.exited, (exited) =>
      Effect.fail(new Error(`the server exited (${exited.code ?? exited.signal}) first: ${exited.stderr}`)))
  )

interface SseEvent {
  readonly id: number
  readonly data: Record<string, any>
}

/** `GET url` as an event stream: its events until the one numbered `last`; then the connection is dropped. */
const eventsUpTo = (url: string, last: number) =>
  Effect.callback<ReadonlyArray<SseEvent>, Error>((resume) => {
    const events: Array<SseEvent> = []
    let pending = ""
    let done = false
    const req = http.get(url, { agent: false }, (res) => {
      res.setEncoding("utf8")
      res.on("data", (chunk: string) => {
        pending += chunk
        let end: number
        while ((end = pending.indexOf("\n\n")) !== -1) {
          const lines = pending.slice(0, end).split("\n")
          pending = pending.slice(end + 2)
          const id = lines.find((line) => line.startsWith("id:"))
          const data = lines.find((line) => line.startsWith("data:"))
          if (id !== undefined && data !== undefined) {
            events.push({ id: Number(id.slice(3)), data: JSON.parse(data.slice(5)) })
          }
        }
        if (!done && (events.at(-1)?.id ?? 0) >= last) {
          done = true
          req.destroy()
          resume(Effect.succeed(events))
        }
      })
      res.on("close", () => {
        if (!done) resume(Effect.fail(new Error(`the event stream ended before event ${last}: ${JSON.stringify(events)}`)))
      })
    })
    req.on("error", (error) => {
      if (!done) resume(Effect.fail(error))
    })
    return Effect.sync(() => req.destroy())
  })

/** What a directory holds, with the file drivers' own files named by kind. */
const kinds = (dir: string): Array<string> =>
  entries(dir).map((name) =>
    name.endsWith(".tmp") ? "temporary copy" : name.endsWith(".commit-journal") ? "journal" : name
  ).sort()

type Member = "backup-a" | "gate" | "backup-b"

/**
 * A transaction of two backups and a gate, in `order`; the server killed
 * once the gate's commit has begun, after the checks of what is on disk by
 * then (`atKill`: each target directory's kinds of files, and whether each
 * target holds its new copy); then the real server started again, and the
 * transaction found committed.
 */
const killDuringCommit = (
  order: ReadonlyArray<Member>,
  atKill: {
    readonly a: ReadonlyArray<string>
    readonly b: ReadonlyArray<string>
    readonly copied: { readonly a: boolean; readonly b: boolean }
    /** The targets the restarted server's journal recovery renames. */
    readonly renamedAtRestart: ReadonlyArray<"a" | "b">
  }
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir
    const a = join(dir, "a")
    const b = join(dir, "b")
    fs.mkdirSync(a)
    fs.mkdirSync(b)
    const sourceA = bytes(3_000_000, 11)
    const sourceB = bytes(2_000_000, 12)
    const old = bytes(50_000, 13)
    fs.writeFileSync(join(dir, "src-a"), sourceA)
    fs.writeFileSync(join(dir, "src-b"), sourceB)
    fs.writeFileSync(join(a, "copy"), old) // replaced (a rename); b/copy is new (a link)
    const marker = join(dir, "gate-reached")
    const common = ["--store", `sqlite:${join(dir, "jobs.db")}`, "--journal-dir", a, "--journal-dir", b]

    const members = {
      "backup-a": { type: "backup", id: "backup-a", params: { source: "src-a", target: "a/copy", overwrite: true } },
      "backup-b": { type: "backup", id: "backup-b", params: { source: "src-b", target: "b/copy" } },
      gate: { type: "gate", id: "gate", params: { marker } }
    }
    const first = yield* serveGated([...common, "--socket", join(dir, "a.sock"), "--http", "127.0.0.1:0"], dir)
    const created = yield* fetchJson(`${first.url}/api/transactions`, {
      method: "POST",
      body: { completionMode: "grouped", jobs: order.map((id) => ({ ...members[id], manualDismiss: true })) }
    })
    assert.strictEqual(created.status, 201, JSON.stringify(created.json))
    yield* awaitFile(marker, first.server)

    const holds = (target: string, data: Uint8Array) =>
      fs.existsSync(target) && fs.readFileSync(target).equals(data)
    assert.deepStrictEqual(
      { a: kinds(a), b: kinds(b), copied: { a: holds(join(a, "copy"), sourceA), b: holds(join(b, "copy"), sourceB) } },
      { a: [...atKill.a].sort(), b: [...atKill.b].sort(), copied: atKill.copied },
      "the files when the gate's commit began"
    )
    yield* crash(first.server)

    const second = yield* serve([...common, "--socket", join(dir, "b.sock"), "--http", "127.0.0.1:0"], { cwd: dir })
    const stdout = second.server.stdout()
    assert.deepStrictEqual(
      Array.from(stdout.matchAll(/^ {2}(.+): renamed into place$/gm), (m) => m[1]),
      atKill.renamedAtRestart.map((name) => join(dir, name, "copy"))
    )

    // The journal and the store agree: both targets in place, nothing else left beside them.
    assert.deepStrictEqual(entries(a), ["copy"])
    assert.deepStrictEqual(entries(b), ["copy"])
    assert.isTrue(fs.readFileSync(join(a, "copy")).equals(sourceA), "a/copy is byte-identical to src-a")
    assert.isTrue(fs.readFileSync(join(b, "copy")).equals(sourceB), "b/copy is byte-identical to src-b")

    const client = yield* wireClient({ path: join(dir, "b.sock") })
    const index = yield* client.execute("query-jobs")
    const rows = client.messages[index]!.return as Array<Record<string, unknown>>
    assert.deepStrictEqual(
      rows.map((row) => [row.id, row.status, row.error]).sort(),
      [["backup-a", "concluded", undefined], ["backup-b", "concluded", undefined], ["gate", "concluded", undefined]]
    )

    // Every event since the first server's first: each member completed without an error, none aborted.
    const url = httpUrl(stdout)
    const seq: number = (yield* fetchJson(`${url}/api/jobs`)).json.seq
    const events = yield* eventsUpTo(`${url}/api/events?since=0`, seq)
    for (const id of order) {
      const own = events.map((e) => e.data).filter((e) => e.id === id)
      const ends = own.filter((e) => e._tag === "Completed" || e._tag === "Cancelled")
      assert.isAbove(ends.length, 0, `${id} has no Completed event`)
      assert.deepStrictEqual(ends.map((e) => [e._tag, e.error]), ends.map(() => ["Completed", undefined]), id)
      const statuses = own.filter((e) => e._tag === "StatusChange").map((e) => e.status)
      assert.notInclude(statuses, "aborting", id)
      assert.strictEqual(statuses.at(-1), "concluded", id)
    }

    assert.notMatch(stdout, /^failed /m)
    // The gate never concluded: it is among the jobs the restart commits.
    assert.match(stdout, /^committed \d job\(s\) whose commit had begun: (.+, )?gate(, .+)?$/m)

    yield* second.server.signal("SIGTERM")
    const exited = yield* second.server.exited
    assert.strictEqual(exited.code, 0, exited.stderr)
  }).pipe(Effect.scoped)

describe("effect-jobs serve killed during a transaction's commit, then started again", () => {
  it.live("before any backup committed (the gate commits first): the restart puts both copies in place", () =>
    killDuringCommit(["backup-a", "backup-b", "gate"], {
      a: ["temporary copy", "copy"],
      b: ["temporary copy"],
      copied: { a: false, b: false },
      renamedAtRestart: []
    }))

  it.live("between the two backups' renames: the journal's recovery finishes the older one", () =>
    killDuringCommit(["backup-a", "gate", "backup-b"], {
      a: ["temporary copy", "journal", "copy"],
      b: ["journal", "copy"],
      copied: { a: false, b: true },
      renamedAtRestart: ["a"]
    }))

  it.live("after both backups committed, before the gate concluded: the targets stay, the transaction commits", () =>
    killDuringCommit(["gate", "backup-a", "backup-b"], {
      a: ["copy"],
      b: ["copy"],
      copied: { a: true, b: true },
      renamedAtRestart: []
    }))
})
