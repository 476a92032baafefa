/**
 * What clients may cost the server: the connection limit (one error line to
 * the client turned away, the others served, the place given back as a
 * connection closes), the negotiation timeout, the timeout of an unfinished
 * message, the budget that every connection's unfinished messages share, and
 * a listener that runs out of file descriptors — all on real sockets, the
 * timeouts under `TestClock`.
 */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Scope } from "effect"
import { TestClock } from "effect/testing"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as Net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { InputBudget, looksLikeHttpRequest, type MessageFrame, MessageScanner } from "../../src/qmp/framing.ts"
import * as Qmp from "../../src/Qmp.ts"
import { captureLogs, layer, startServer } from "./harness.ts"

const encoder = new TextEncoder()

const netOptions = (target: Qmp.Target): Net.NetConnectOpts =>
  "path" in target ? { path: target.path } : { host: target.host, port: target.port }

/** A raw socket that records the lines it receives and whether the server closed it. */
interface RawClient {
  readonly socket: Net.Socket
  readonly lines: ReadonlyArray<Record<string, unknown>>
  /** Waits for a line matching `test` (already received or to come); fails if the connection closes first. */
  readonly line: (test: (line: Record<string, unknown>) => boolean) => Effect.Effect<Record<string, unknown>, Error>
  /** Completes when the server has closed the connection (end of input or a reset). */
  readonly closed: Effect.Effect<void>
}

const rawClient = (target: Qmp.Target): Effect.Effect<RawClient, Error, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* Effect.acquireRelease(
      Effect.callback<Net.Socket, Error>((resume) => {
        const s = Net.connect(netOptions(target))
        s.once("connect", () => resume(Effect.succeed(s)))
        s.once("error", (e) => resume(Effect.fail(e)))
      }),
      (s) => Effect.sync(() => s.destroy())
    )
    const lines: Array<Record<string, unknown>> = []
    const closed = Deferred.makeUnsafe<void>()
    const waiters = new Set<() => void>()
    let pending = ""
    socket.on("data", (chunk: Buffer) => {
      pending += chunk.toString("utf8")
      let newline: number
      while ((newline = pending.indexOf("\n")) >= 0) {
        lines.push(JSON.parse(pending.slice(0, newline)) as Record<string, unknown>)
        pending = pending.slice(newline + 1)
      }
      for (const wake of waiters) wake()
    })
    socket.on("error", () => {})
    socket.on("close", () => {
      Deferred.doneUnsafe(closed, Exit.void)
      for (const wake of waiters) wake()
    })
    const line = (test: (line: Record<string, unknown>) => boolean) =>
      Effect.callback<Record<string, unknown>, Error>((resume) => {
        const check = () => {
          const found = lines.find(test)
          if (found !== undefined) resume(Effect.succeed(found))
          else if (Deferred.isDoneUnsafe(closed)) resume(Effect.fail(new Error(`closed; received ${JSON.stringify(lines)}`)))
          else return false
          waiters.delete(check)
          return true
        }
        if (!check()) waiters.add(check)
        return Effect.sync(() => waiters.delete(check))
      })
    return { socket, lines, line, closed: Deferred.await(closed) }
  })

const greeted = (client: RawClient) => client.line((l) => "QMP" in l)

const negotiated = (client: RawClient) =>
  Effect.gen(function*() {
    yield* greeted(client)
    client.socket.write(`{"execute": "qmp_capabilities", "id": "caps"}\n`)
    yield* client.line((l) => l.id === "caps")
  })

const genericError = (desc: string) => ({ error: { class: "GenericError", desc } })

describe("the connection limit", () => {
  it.effect("one client too many gets one error line and is closed; the others are served; a place comes back", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const h = yield* startServer({ maxConnections: 2 })
      const first = yield* rawClient(h.unix)
      yield* negotiated(first)
      const second = yield* h.client("tcp")

      // Over both transports alike, and with only that line: no greeting.
      for (const target of [h.unix, h.tcp]) {
        const refused = yield* rawClient(target)
        refused.socket.write(`{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n`)
        yield* refused.closed
        assert.deepStrictEqual(refused.lines, [genericError("Too many connections (limit 2)")])
      }
      // Logged once for the burst, not once per client.
      yield* logs.waitFor(/turned away: Too many connections \(limit 2\)/, "Warn")
      assert.strictEqual(logs.lines.filter((l) => /turned away/.test(l.text)).length, 1)

      // Nothing the refused clients sent ran; the two admitted clients are served as before.
      assert.deepStrictEqual(yield* second.execute("query-jobs"), [])
      first.socket.write(`{"execute": "query-version", "id": "v"}\n`)
      assert.deepStrictEqual((yield* first.line((l) => l.id === "v")).return, Qmp.version)
      assert.strictEqual(yield* h.server.clientCount, 2)

      // A client that leaves gives its place back before the server's side of it closes.
      first.socket.end()
      yield* first.closed
      const third = yield* h.client("unix")
      assert.deepStrictEqual(yield* third.execute("query-jobs"), [])
    }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(logs.layer))
  })
})

describe("the negotiation timeout", () => {
  it.effect("a client that has not sent qmp_capabilities after 10 s gets an error and is closed; one that did stays", () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      const idle = yield* rawClient(h.tcp)
      const prompt = yield* rawClient(h.unix)
      const late = yield* rawClient(h.unix)
      yield* greeted(idle)
      yield* negotiated(prompt)
      yield* greeted(late)

      yield* TestClock.adjust("9999 millis")
      // Still served (before negotiation, as always, only qmp_capabilities runs).
      idle.socket.write(`{"execute": "query-jobs", "id": 1}\n`)
      assert.deepStrictEqual(yield* idle.line((l) => l.id === 1), {
        error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" },
        id: 1
      })
      yield* negotiated(late)

      yield* TestClock.adjust("1 millis")
      yield* idle.closed
      assert.deepStrictEqual(idle.lines.at(-1), genericError("Capabilities negotiation timed out after 10s"))
      for (const client of [prompt, late]) {
        client.socket.write(`{"execute": "query-jobs", "id": "after"}\n`)
        assert.deepStrictEqual(yield* client.line((l) => l.id === "after"), { return: [], id: "after" })
      }
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("the timeout is an option", () =>
    Effect.gen(function*() {
      const h = yield* startServer({ negotiationTimeout: "2 seconds" })
      const idle = yield* rawClient(h.unix)
      yield* greeted(idle)
      yield* TestClock.adjust("2 seconds")
      yield* idle.closed
      assert.deepStrictEqual(idle.lines.at(-1), genericError("Capabilities negotiation timed out after 2s"))
    }).pipe(Effect.scoped, Effect.provide(layer)))
})

describe("unfinished messages", () => {
  it.effect("one that gets no new byte for 30 s ends the connection; each new byte starts the 30 s again", () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      const slow = yield* rawClient(h.tcp)
      const quiet = yield* rawClient(h.unix)
      yield* negotiated(slow)
      yield* negotiated(quiet)

      // A complete message, then the start of one: its reply says the server has read both.
      slow.socket.write(`{"execute": "query-jobs", "id": 1}\n{"execute": "query-`)
      yield* slow.line((l) => l.id === 1)
      yield* TestClock.adjust("20 seconds")
      slow.socket.write(`jobs", "id": 2}\n{"execute": "query-`)
      yield* slow.line((l) => l.id === 2)
      yield* TestClock.adjust("20 seconds") // 40 s since the first byte of it, 20 s since the last
      slow.socket.write(`jobs", "id": 3}\n{"execute": `)
      yield* slow.line((l) => l.id === 3)
      yield* TestClock.adjust("30 seconds")
      yield* slow.closed
      assert.deepStrictEqual(slow.lines.at(-1), genericError("QMP input timed out: no data for 30s within a message"))

      // A client that sends nothing between messages may stay as long as it likes.
      yield* TestClock.adjust("1 hour")
      quiet.socket.write(`{"execute": "query-jobs", "id": "still"}\n`)
      assert.deepStrictEqual(yield* quiet.line((l) => l.id === "still"), { return: [], id: "still" })
    }).pipe(Effect.scoped, Effect.provide(layer)))

  it.effect("their bytes share one budget: the connection whose message would overspend it gets an error and is closed", () =>
    Effect.gen(function*() {
      // 40 KiB each, kept in at most 48 KiB each (the message cap): two cannot both fit in 64 KiB.
      const h = yield* startServer({ maxLineBytes: 48 * 1024, partialMessageBudget: 64 * 1024 })
      const start = `{"execute": "query-jobs", "id": "`
      const partial = start + "x".repeat(40 * 1024 - start.length)
      const a = yield* rawClient(h.tcp)
      const b = yield* rawClient(h.unix)
      yield* negotiated(a)
      yield* negotiated(b)
      a.socket.write(partial)
      b.socket.write(partial)
      const refusedFirst = yield* Effect.raceFirst(Effect.as(a.closed, "a" as const), Effect.as(b.closed, "b" as const))
      const [refused, kept] = refusedFirst === "a" ? [a, b] : [b, a]
      assert.deepStrictEqual(
        refused.lines.at(-1),
        genericError("Too much unfinished input across all connections (limit 65536 bytes)")
      )
      // The other's message goes on and is answered; then the budget is whole again.
      kept.socket.write(`"}\n`)
      const reply = yield* kept.line((l) => "return" in l && l.id !== "caps")
      assert.strictEqual((reply.id as string).length, 40 * 1024 - start.length)
      const c = yield* rawClient(h.tcp)
      yield* negotiated(c)
      for (let i = 0; i < 40; i++) c.socket.write(i === 0 ? partial.slice(0, 1024) : partial.slice(i * 1024, (i + 1) * 1024))
      c.socket.write(`"}\n`)
      assert.isTrue("return" in (yield* c.line((l) => "return" in l && l.id !== "caps")))
    }).pipe(Effect.scoped, Effect.provide(layer)))
})

const show = (frames: ReadonlyArray<MessageFrame>) => frames.map((f) => (f._tag === "Message" ? new TextDecoder().decode(f.bytes) : f._tag))

describe("MessageScanner with a budget", () => {
  it("a message sent a byte at a time costs its bytes, not a buffer per byte; charged to the budget, and given back", () => {
    const budget = new InputBudget(1 << 20)
    const scanner = new MessageScanner(1 << 20, 1024, budget)
    const message = `{"execute": "query-jobs", "id": "${"y".repeat(20_000)}"}`
    const bytes = encoder.encode(message)
    for (let i = 0; i < bytes.length - 1; i++) assert.deepStrictEqual(scanner.push(bytes.slice(i, i + 1)), [])
    assert.isTrue(scanner.unfinished)
    // Copied together into blocks of 8 KiB: its bytes, and less than one block more.
    assert.isAtLeast(scanner.heldBytes, bytes.length - 1)
    assert.isBelow(scanner.heldBytes, bytes.length + 8 * 1024)
    assert.strictEqual(scanner.heldPieces, Math.ceil((bytes.length - 1) / (8 * 1024)))
    assert.strictEqual(budget.held, scanner.heldBytes)
    assert.deepStrictEqual(show(scanner.push(bytes.subarray(bytes.length - 1))), [message])
    assert.isFalse(scanner.unfinished)
    assert.strictEqual(budget.held, 0)
  })

  it("over the budget: the messages before come out, then OverBudget, then nothing; what it held is given back", () => {
    const budget = new InputBudget(16 * 1024)
    const other = new MessageScanner(1 << 20, 1024, budget)
    other.push(encoder.encode(`{"a": "${"z".repeat(2000)}`))
    const held = other.heldBytes
    assert.isAtLeast(held, 2000)
    assert.strictEqual(budget.held, held)
    const scanner = new MessageScanner(1 << 20, 1024, budget)
    const frames = scanner.push(encoder.encode(`{"b": 1}\n{"c": "${"z".repeat(16 * 1024 - held)}`))
    assert.deepStrictEqual(show(frames), ['{"b": 1}', "OverBudget"])
    assert.isTrue(scanner.failed)
    assert.deepStrictEqual(scanner.push(encoder.encode(`"}\n{"d": 1}\n`)), [])
    assert.strictEqual(budget.held, held)
    other.discard()
    assert.strictEqual(budget.held, 0)
  })
})

describe("looksLikeHttpRequest", () => {
  it("HTTP request lines are recognised; QMP and other bad input are not", () => {
    const yes = [
      "GET / HTTP/1.1\r",
      "POST /qmp?x=1 HTTP/1.1",
      "OPTIONS * HTTP/1.1\r",
      "HEAD /index.html HTTP/1.0",
      "PRI * HTTP/2.0\r",
      "M-SEARCH * HTTP/1.1",
      "patch /lower-case HTTP/1.1"
    ]
    const no = [
      `{"execute": "qmp_capabilities"}`,
      `{"execute": "GET / HTTP/1.1"}`,
      "GET /",
      "GET / HTTP/",
      "GET  / HTTP/1.1",
      "hello world",
      "[1, 2]",
      ""
    ]
    for (const line of yes) assert.isTrue(looksLikeHttpRequest(encoder.encode(line)), line)
    for (const line of no) assert.isFalse(looksLikeHttpRequest(encoder.encode(line)), line)
  })
})

const fixture = fileURLToPath(new URL("./fixtures/serve.ts", import.meta.url))

/** The fixture server in a process that may open only `fds` files. */
const limitedServer = (socket: string, fds: number) =>
  Effect.acquireRelease(
    Effect.callback<ChildProcess, Error>((resume) => {
      const child = spawn("sh", ["-c", `ulimit -n ${fds} && exec "$0" "$@"`, process.execPath, fixture, socket], {
        stdio: ["ignore", "pipe", "pipe"]
      })
      let out = ""
      let err = ""
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString()
        if (out.startsWith("listening\n")) resume(Effect.succeed(child))
      })
      child.stderr!.on("data", (b: Buffer) => {
        err += b.toString()
      })
      child.once("exit", (code) => resume(Effect.fail(new Error(`server exited (${code}) before listening: ${err}`))))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** Connects and waits for what the server does first: greet (`true`) or close (`false`). */
const firstAnswer = (path: string) =>
  Effect.callback<{ readonly socket: Net.Socket; readonly greeted: boolean }>((resume) => {
    const socket = Net.connect({ path })
    socket.on("error", () => {})
    socket.once("data", () => resume(Effect.succeed({ socket, greeted: true })))
    socket.once("close", () => resume(Effect.succeed({ socket, greeted: false })))
  })

describe("out of file descriptors", () => {
  it.live("the listener closes the connections it cannot take and goes on accepting", () =>
    Effect.gen(function*() {
      const tmp = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "qmp-fds-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      const socket = path.join(tmp, "qmp.sock")
      const server = yield* limitedServer(socket, 48)
      const answers: Array<{ readonly socket: Net.Socket; readonly greeted: boolean }> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => answers.forEach((a) => a.socket.destroy())))
      for (let i = 0; i < 80; i++) answers.push(yield* firstAnswer(socket))
      const greetedCount = answers.filter((a) => a.greeted).length
      // Some were served until the descriptors ran out; the rest were closed at once, not left waiting.
      assert.isAbove(greetedCount, 0)
      assert.isBelow(greetedCount, answers.length)
      for (const answer of answers) answer.socket.destroy()
      // Once the server has closed those, a client is served again. (Each attempt is answered at
      // once, by a greeting or a close, so this is bounded by the server's own pace.)
      let again = yield* firstAnswer(socket)
      for (let attempt = 0; !again.greeted && attempt < 1000; attempt++) again = yield* firstAnswer(socket)
      again.socket.destroy()
      assert.isTrue(again.greeted)
      const client = yield* Qmp.connect({ path: socket })
      assert.deepStrictEqual(yield* client.execute("query-jobs"), [])
      assert.strictEqual(server.exitCode, null)
    }).pipe(Effect.scoped))
})
