/**
 * The QMP commands with the real file drivers (src/drivers/) — over a real
 * Unix socket, on real files: a grouped transaction of two backups, the
 * drivers' own refusals as QMP errors, a mirror taken to READY and completed;
 * refusals before any job exists (no event, nothing in `query-jobs`); the
 * teardown of a transaction, newest first; and `speed`, with QEMU's texts and
 * QEMU's int64 range.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Layer, type Scope } from "effect"
import * as fs from "node:fs"
import * as FileDrivers from "../../src/drivers/layer.ts"
import * as Jobs from "../../src/Jobs.ts"
import * as Qmp from "../../src/Qmp.ts"

const services = FileDrivers.layer.pipe(Layer.provideMerge(Jobs.layer), Layer.provideMerge(NodeServices.layer))

/** A server on a socket in a fresh directory, and a negotiated client. */
const withServer = <A, E>(
  body: (c: Qmp.QmpClient, dir: string) => Effect.Effect<A, E, Scope.Scope | FileSystem.FileSystem | Jobs.Jobs>
) =>
  Effect.gen(function*() {
    const fileSystem = yield* FileSystem.FileSystem
    const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-files-" })
    yield* Qmp.make({ socket: `${dir}/qmp.sock` })
    const c = yield* Qmp.connect({ path: `${dir}/qmp.sock` })
    return yield* body(c, dir)
  }).pipe(Effect.scoped, Effect.provide(services))

const generic = (desc: string) => ({ error: { class: "GenericError", desc } })

/** The job an event is about. */
const subject = (e: Qmp.EventMessage): unknown => e.data?.id ?? e.data?.device

/**
 * Runs a backup `next` to its end. The server sends events in the engine's
 * order, so every event of a job refused before it would have come first.
 */
const sentinel = (c: Qmp.QmpClient, dir: string) =>
  Effect.gen(function*() {
    fs.writeFileSync(`${dir}/next-src`, "next")
    yield* c.execute("backup", { "job-id": "next", source: `${dir}/next-src`, target: `${dir}/next-dst` })
    yield* c.awaitEvent((e) => subject(e) === "next" && e.data?.status === "null")
  })

/** What the client saw apart from the sentinel. */
const eventsBesides = (c: Qmp.QmpClient, id: string) => c.events.filter((e) => subject(e) !== id)

/** A request as raw text, so that its numbers reach the server exactly as written. */
const raw = (c: Qmp.QmpClient, execute: string, args: string) =>
  c.request(`{"execute": "${execute}", "arguments": ${args}}`)

const maxSafe = Number.MAX_SAFE_INTEGER

/** A process id no running process has (above Linux's largest `pid_max`). */
const deadPid = 4_194_399


/** The JOB_STATUS_CHANGE events a client got, as `id status` lines. */
const statusChanges = (events: ReadonlyArray<{ readonly event: string; readonly data?: Record<string, unknown> | undefined }>) =>
  events.filter((e) => e.event === "JOB_STATUS_CHANGE").map((e) => `${String(e.data?.id)} ${String(e.data?.status)}`)
describe("QMP with the file drivers", () => {
  it.effect("backup transaction, refusals, mirror to READY and complete", () =>
    Effect.gen(function*() {
      const fileSystem = yield* FileSystem.FileSystem
      const dir = yield* fileSystem.makeTempDirectoryScoped({ prefix: "qmp-files-" })
      fs.writeFileSync(`${dir}/a`, Buffer.alloc(3_000_000, 7))
      fs.writeFileSync(`${dir}/b`, Buffer.alloc(1_000_001, 9))
      yield* Qmp.make({ socket: `${dir}/qmp.sock` })
      const c = yield* Qmp.connect({ path: `${dir}/qmp.sock` })
      const statuses = (id: string) =>
        c.events.filter((e) => (e.data?.id ?? e.data?.device) === id).map((e) => String(e.data?.status ?? e.event))

      assert.deepStrictEqual(
        yield* c.execute("transaction", {
          actions: [
            { type: "backup", data: { "job-id": "a", source: `${dir}/a`, target: `${dir}/a.bak` } },
            { type: "backup", data: { "job-id": "b", source: `${dir}/b`, target: `${dir}/b.bak` } }
          ],
          properties: { "completion-mode": "grouped" }
        }),
        {}
      )
      for (const id of ["a", "b"]) {
        yield* c.awaitEvent((e) => e.data?.id === id && e.data?.status === "null")
        assert.deepStrictEqual(statuses(id), ["created", "running", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"])
        assert.isTrue(fs.readFileSync(`${dir}/${id}.bak`).equals(fs.readFileSync(`${dir}/${id}`)))
      }

      const refused = yield* Effect.flip(c.execute("backup", { "job-id": "x", source: `${dir}/a`, target: `${dir}/a.bak` }))
      assert.strictEqual(refused._tag === "QmpCommandError" ? refused.errorClass : refused._tag, "GenericError")
      assert.include(refused.message, `${dir}/a.bak`)

      yield* c.execute("mirror", { "job-id": "m", source: `${dir}/a`, target: `${dir}/m` })
      yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_READY")
      yield* c.execute("job-complete", { id: "m" })
      yield* c.awaitEvent((e) => e.data?.id === "m" && e.data?.status === "null")
      assert.deepStrictEqual(statuses("m"), ["created", "running", "ready", "BLOCK_JOB_READY", "waiting", "pending", "BLOCK_JOB_COMPLETED", "concluded", "null"])
      assert.isTrue(fs.readFileSync(`${dir}/m`).equals(fs.readFileSync(`${dir}/a`)))
    }).pipe(Effect.scoped, Effect.provide(services)))

  it.effect("a missing or unusable source: an error reply before any job exists — no event, nothing in query-jobs", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, "a")
        fs.writeFileSync(`${dir}/kept`, "old")
        const job = (id: string, source: string, target: string) => ({ "job-id": id, source, target })
        assert.deepStrictEqual(
          yield* c.request({ execute: "backup", arguments: job("x", `${dir}/nope`, `${dir}/x`) }),
          generic(`Source file '${dir}/nope' does not exist`)
        )
        assert.deepStrictEqual(
          yield* c.request({ execute: "mirror", arguments: job("y", dir, `${dir}/y`) }),
          generic(`Source '${dir}' is not a regular file`)
        )
        assert.deepStrictEqual(
          yield* c.request({ execute: "backup", arguments: job("z", `${dir}/a`, `${dir}/kept`) }),
          generic(`Target '${dir}/kept' already exists (pass overwrite: true to replace it)`)
        )
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        yield* sentinel(c, dir)
        assert.deepStrictEqual(eventsBesides(c, "next"), [])
        assert.strictEqual(fs.readFileSync(`${dir}/kept`, "utf8"), "old")
        assert.isFalse(fs.existsSync(`${dir}/x`) || fs.existsSync(`${dir}/y`))
      })))

  it.effect("transaction: a member whose source is missing refuses the whole transaction before any member exists", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, "a")
        for (const mode of ["grouped", "individual"]) {
          assert.deepStrictEqual(
            yield* c.request({
              execute: "transaction",
              arguments: {
                actions: [
                  { type: "backup", data: { "job-id": "a", source: `${dir}/a`, target: `${dir}/a.bak` } },
                  { type: "mirror", data: { "job-id": "b", source: `${dir}/missing`, target: `${dir}/b.bak` } }
                ],
                properties: { "completion-mode": mode }
              }
            }),
            generic(`Source file '${dir}/missing' does not exist`)
          )
        }
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        yield* sentinel(c, dir)
        assert.deepStrictEqual(eventsBesides(c, "next"), [])
        assert.deepStrictEqual(fs.readdirSync(dir).filter((n) => n.includes("a.bak") || n.includes("b.bak")), [])
      })))

  it.effect("transaction: a member that fails in make tears down the members created before it, newest first", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, "a")
        fs.writeFileSync(`${dir}/b`, "b")
        // An interrupted commit of a killed process in sub/: it renames its copy onto sub/t. The check
        // of `c` finds no sub/t; `c`'s make finishes the commit first, and then finds sub/t there.
        fs.mkdirSync(`${dir}/sub`)
        const temp = `${dir}/sub/.t.effect-jobs-${deadPid}-k1.tmp`
        const journal = `${dir}/sub/.effect-jobs-${deadPid}-k1.commit-journal`
        fs.writeFileSync(temp, "from the interrupted commit")
        fs.writeFileSync(
          journal,
          JSON.stringify({
            format: "effect-jobs commit journal",
            version: 1,
            pid: deadPid,
            token: "k1",
            renames: [{ temp, target: `${dir}/sub/t` }],
            copies: [journal]
          })
        )
        const reply = yield* c.request({
          execute: "transaction",
          arguments: {
            actions: [
              { type: "backup", data: { "job-id": "a", source: `${dir}/a`, target: `${dir}/ta` } },
              { type: "mirror", data: { "job-id": "b", source: `${dir}/b`, target: `${dir}/tb` } },
              { type: "backup", data: { "job-id": "c", source: `${dir}/a`, target: `${dir}/sub/t` } }
            ]
          }
        })
        assert.deepStrictEqual(reply, generic(`Target '${dir}/sub/t' already exists (pass overwrite: true to replace it)`))
        yield* c.awaitEvent((e) => e.data?.id === "a" && e.data?.status === "null")
        const changes = statusChanges(c.events)
        assert.deepStrictEqual(changes, [
          "a created",
          "b created",
          "c created",
          "c null",
          "b aborting",
          "b concluded",
          "b null",
          "a aborting",
          "a concluded",
          "a null"
        ])
        assert.isFalse(c.events.some((e) => e.event.startsWith("BLOCK_JOB_")), "jobs that never ran send no BLOCK_JOB_* event")
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["a", "b", "qmp.sock", "sub"])
        assert.deepStrictEqual(fs.readdirSync(`${dir}/sub`), ["t"])
        assert.strictEqual(fs.readFileSync(`${dir}/sub/t`, "utf8"), "from the interrupted commit")
      })))

  it.effect("transaction: a member refused by its check when created (its target taken by an earlier member) tears the others down, newest first", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, "a")
        fs.writeFileSync(`${dir}/b`, "b")
        // Each action passes the check before anything exists; `c` then finds its target taken by `a`.
        const reply = yield* c.request({
          execute: "transaction",
          arguments: {
            actions: [
              { type: "backup", data: { "job-id": "a", source: `${dir}/a`, target: `${dir}/t1` } },
              { type: "backup", data: { "job-id": "b", source: `${dir}/b`, target: `${dir}/t2` } },
              { type: "mirror", data: { "job-id": "c", source: `${dir}/b`, target: `${dir}/t1` } }
            ],
            properties: { "completion-mode": "individual" }
          }
        })
        assert.deepStrictEqual(reply, generic(`Target '${dir}/t1' is already being written by job 'a'`))
        yield* c.awaitEvent((e) => e.data?.id === "a" && e.data?.status === "null")
        const changes = statusChanges(c.events)
        assert.deepStrictEqual(changes, [
          "a created",
          "b created",
          "b aborting",
          "b concluded",
          "b null",
          "a aborting",
          "a concluded",
          "a null"
        ])
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["a", "b", "qmp.sock"])
      })))

  it.effect("speed: a negative one is QEMU's text, every desc is one line", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, "a")
        const data = (id: string, extra: Record<string, unknown> = {}) => ({ "job-id": id, source: `${dir}/a`, target: `${dir}/${id}`, ...extra })
        const negative = generic("Parameter 'speed' expects a non-negative value")
        assert.deepStrictEqual(yield* c.request({ execute: "backup", arguments: data("b", { speed: -1 }) }), negative)
        assert.deepStrictEqual(yield* c.request({ execute: "mirror", arguments: data("m", { speed: -1 }) }), negative)
        assert.deepStrictEqual(
          yield* c.request({
            execute: "transaction",
            arguments: { actions: [{ type: "backup", data: data("t1") }, { type: "mirror", data: data("t2", { speed: -1 }) }] }
          }),
          negative
        )
        // The driver's parameter schema: its text, path included, on one line.
        assert.deepStrictEqual(
          yield* c.request({ execute: "backup", arguments: data("e", { source: "" }) }),
          generic(`Invalid parameters for job type 'backup': Expected a value with a length of at least 1 at ["source"]`)
        )
        // A driver's message names a path, which may hold a line break.
        assert.deepStrictEqual(
          yield* c.request({ execute: "backup", arguments: data("n", { source: `${dir}/no\nsuch` }) }),
          generic(`Source file '${dir}/no such' does not exist`)
        )
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
      })))

  it.effect("speed: any int64 is an integer (2^53 − 1 and more are recorded and reported as 2^53 − 1); 2^63, 1.0, 1e3 are not", () =>
    withServer((c, dir) =>
      Effect.gen(function*() {
        fs.writeFileSync(`${dir}/a`, Buffer.alloc(200_000, 3))
        const notInteger = generic("Invalid parameter type for 'speed', expected: integer")
        const backup = (id: string, speed: string) =>
          raw(c, "backup", `{"job-id": "${id}", "source": "${dir}/a", "target": "${dir}/${id}", "auto-finalize": false, "speed": ${speed}}`)
        for (const speed of ["9223372036854775808", "1.0", "1e3", "-9223372036854775809"]) {
          assert.deepStrictEqual(yield* backup("r", speed), notInteger)
        }
        assert.deepStrictEqual(yield* backup("r", "-9223372036854775808"), generic("Parameter 'speed' expects a non-negative value"))

        assert.deepStrictEqual(yield* backup("big", "9223372036854775807"), { return: {} })
        yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_PENDING" && e.data?.id === "big")
        const [info] = (yield* c.execute("query-block-jobs")) as Array<Record<string, unknown>>
        assert.strictEqual(info?.speed, maxSafe)
        yield* c.execute("job-finalize", { id: "big" })
        const completed = yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data?.device === "big")
        assert.strictEqual(completed.data?.speed, maxSafe)
        assert.isTrue(fs.readFileSync(`${dir}/big`).equals(fs.readFileSync(`${dir}/a`)))

        // block-job-set-speed: the same rule.
        // (Under the TestClock a rate-limited copy would wait for ever: the limits are set once READY.)
        yield* c.execute("mirror", { "job-id": "m", source: `${dir}/a`, target: `${dir}/m` })
        yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_READY" && e.data?.device === "m")
        const setSpeed = (speed: string) => raw(c, "block-job-set-speed", `{"device": "m", "speed": ${speed}}`)
        const speedOf = Effect.map(c.execute("query-block-jobs"), (rows) => (rows as Array<Record<string, unknown>>)[0]?.speed)
        assert.deepStrictEqual(yield* setSpeed(String(1 << 20)), { return: {} })
        assert.strictEqual(yield* speedOf, 1 << 20)
        for (const speed of ["9223372036854775808", "2.0", "1e3"]) assert.deepStrictEqual(yield* setSpeed(speed), notInteger)
        assert.deepStrictEqual(yield* setSpeed("-1"), generic("Parameter 'speed' expects a non-negative value"))
        assert.strictEqual(yield* speedOf, 1 << 20)
        assert.deepStrictEqual(yield* setSpeed("9007199254740993"), { return: {} })
        assert.strictEqual(yield* speedOf, maxSafe)
        assert.deepStrictEqual(yield* setSpeed("9223372036854775807"), { return: {} })
        assert.strictEqual(yield* speedOf, maxSafe)
        yield* c.execute("job-complete", { id: "m" })
        const done = yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data?.device === "m")
        assert.strictEqual(done.data?.speed, maxSafe)
      })))
})
