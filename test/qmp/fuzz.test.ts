/**
 * Fuzzing the server with fast-check: random bytes, random JSON, random
 * commands with random (mostly wrong) arguments, unknown commands, over-long
 * lines and abrupt disconnects. Each input gets an error reply (or, for a
 * blank line, none) or the connection is closed; the server stays up, and a job
 * started before the fuzzing is untouched by it (still RUNNING, no progress:
 * its clock never moved), then finishes normally.
 *
 * `FC_SEED` replays a run.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { TestClock } from "effect/testing"
import * as fc from "fast-check"
import * as Net from "node:net"
import type { QmpClient, Reply } from "../../src/Qmp.ts"
import * as Qmp from "../../src/Qmp.ts"
import { type Harness, layer, startServer } from "./harness.ts"
import * as StandIn from "./standIn.ts"

const seed = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED)
const params = (numRuns: number) => (seed === undefined ? { numRuns } : { numRuns, seed })

const errorClasses = new Set(["GenericError", "CommandNotFound", "DeviceNotActive"])
const background = "background-job-7f3a"

const encoder = new TextEncoder()
let pings = 0

/** Sends `bytes` as one line, then a ping; returns the replies that came before the ping's. */
const sendLine = (c: QmpClient, bytes: Uint8Array) =>
  Effect.gen(function*() {
    const ping = `ping-${++pings}`
    const line = new Uint8Array(bytes.length + 1)
    line.set(bytes)
    line[bytes.length] = 0x0a
    yield* c.raw(line)
    yield* c.raw(`{"execute": "query-version", "id": "${ping}"}\n`)
    const before: Array<Reply> = []
    while (true) {
      const reply = yield* c.nextReply
      if (reply.id === ping) {
        assert.deepStrictEqual(reply.return, Qmp.version)
        return before
      }
      before.push(reply)
    }
  })

const assertError = (reply: Reply) => {
  const error = reply.error as { class?: unknown; desc?: unknown } | undefined
  assert.isDefined(error, JSON.stringify(reply))
  assert.isTrue(errorClasses.has(String(error!.class)), JSON.stringify(reply))
  assert.isString(error!.desc)
}

const commandNames = Qmp.commandNames.filter((name) => name !== "quit")
const knownKeys = [
  "id",
  "device",
  "speed",
  "force",
  "job-id",
  "source",
  "target",
  "actions",
  "properties",
  "enable",
  "auto-finalize",
  "auto-dismiss",
  "overwrite",
  "type",
  "data"
]

const argumentsArb = fc.oneof(
  fc.dictionary(fc.constantFrom(...knownKeys), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 })
)

const commandArb = fc.record(
  {
    execute: fc.oneof(fc.constantFrom(...commandNames), fc.string({ maxLength: 12 })),
    arguments: argumentsArb,
    id: fc.jsonValue({ maxDepth: 2 })
  },
  { requiredKeys: ["execute"] }
)

/** Runs a fast-check property whose body is an Effect, in the test's context (TestClock included). */
const check = <A>(arb: fc.Arbitrary<A>, numRuns: number, body: (a: A) => Effect.Effect<void, unknown, never>) =>
  Effect.promise(() => fc.assert(fc.asyncProperty(arb, (a) => Effect.runPromise(body(a))), params(numRuns)))

const rawSocket = (h: Harness, useTcp: boolean) =>
  Effect.callback<Net.Socket, Error>((resume) => {
    const s = Net.connect("path" in h.unix && !useTcp ? { path: h.unix.path } : { host: (h.tcp as { host: string }).host, port: (h.tcp as { port: number }).port })
    s.on("error", () => undefined)
    s.once("connect", () => resume(Effect.succeed(s)))
  })

describe("QMP fuzzing", () => {
  it.effect("random input never takes the server down or touches a running job", () =>
    Effect.gen(function*() {
      const h = yield* startServer()
      const c = yield* h.client()
      const tcp = yield* h.client("tcp")
      yield* c.execute("backup", { "job-id": background, source: "s", target: "t" })
      const context = yield* Effect.context<never>()
      const inContext = <A, E>(effect: Effect.Effect<A, E, never>) => Effect.provideContext(effect, context)

      // Random bytes: an error, or nothing for a blank line.
      yield* check(fc.uint8Array({ maxLength: 300 }).map((b) => b.filter((x) => x !== 0x0a)), 1000, (bytes) =>
        inContext(Effect.gen(function*() {
          const replies = yield* sendLine(c, bytes)
          assert.isAtMost(replies.length, 1)
          for (const r of replies) assertError(r)
          if (replies.length === 0) assert.match(new TextDecoder().decode(bytes), /^[ \t\r]*$/)
        })))

      // Random JSON: one error each; an object's id is echoed.
      yield* check(fc.jsonValue({ maxDepth: 4 }), 1000, (value) =>
        inContext(Effect.gen(function*() {
          const text = JSON.stringify(value)
          const replies = yield* sendLine(tcp, encoder.encode(text))
          assert.lengthOf(replies, 1)
          assertError(replies[0]!)
          const parsed = JSON.parse(text) as unknown
          if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) && "id" in parsed) {
            assert.strictEqual(JSON.stringify(replies[0]!.id), JSON.stringify(parsed.id))
          } else {
            assert.notProperty(replies[0], "id")
          }
        })))

      // Random commands, random arguments: a reply each, with a QMP error class when it fails.
      yield* check(commandArb, 2000, (command) =>
        inContext(Effect.gen(function*() {
          const replies = yield* sendLine(c, encoder.encode(JSON.stringify(command)))
          assert.lengthOf(replies, 1)
          const reply = replies[0]!
          if (!("return" in reply)) assertError(reply)
          if (!Qmp.commandNames.includes(command.execute)) {
            assert.deepStrictEqual(reply.error, {
              class: "CommandNotFound",
              desc: `The command ${command.execute} has not been found`
            })
          }
        })))

      // Over-long lines: an error, then the connection closes.
      yield* check(fc.record({ extra: fc.integer({ min: 1, max: 200_000 }), tcp: fc.boolean() }), 10, ({ extra, tcp: useTcp }) =>
        inContext(Effect.scoped(Effect.gen(function*() {
          const victim = yield* h.client(useTcp ? "tcp" : "unix")
          yield* victim.raw(`${"x".repeat(Qmp.maxLineBytes + extra)}\n`)
          const reply = yield* victim.nextReply
          assert.strictEqual((reply.error as { desc: string }).desc, `QMP input exceeds the maximum message size of ${Qmp.maxLineBytes} bytes`)
          yield* victim.closed
        }))))

      // Abrupt disconnects, at any point of a message, before or after the greeting.
      // (A message complete but for its newline still runs when the client closes: keep it harmless.)
      const valid = JSON.stringify({ execute: "query-block-jobs", arguments: {}, id: { background } })
      yield* check(
        fc.record({ cut: fc.integer({ min: 0, max: valid.length }), tcp: fc.boolean(), waitGreeting: fc.boolean(), negotiate: fc.boolean() }),
        100,
        ({ cut, tcp: useTcp, waitGreeting, negotiate }) =>
          inContext(Effect.gen(function*() {
            const socket = yield* rawSocket(h, useTcp)
            if (waitGreeting) yield* Effect.callback<void>((resume) => void socket.once("data", () => resume(Effect.void)))
            socket.write(`${negotiate ? '{"execute": "qmp_capabilities"}\n' : ""}${valid.slice(0, cut)}`)
            socket.destroy()
            // The server still answers.
            assert.deepStrictEqual((yield* sendLine(c, new Uint8Array())).length, 0)
          }))
      )

      // The job started before all this: untouched.
      const rows = (yield* c.execute("query-jobs")) as Array<{ id: string; status: string; "current-progress": number }>
      const bg = rows.find((r) => r.id === background)
      assert.deepStrictEqual([bg?.status, bg?.["current-progress"]], ["running", 0])
      yield* TestClock.adjust(StandIn.chunks * StandIn.chunkMillis)
      const done = yield* c.awaitEvent((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data?.device === background)
      assert.notProperty(done.data, "error")
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(tcp.execute("query-version"))))
    }).pipe(Effect.scoped, Effect.provide(layer), Effect.provide(TestClock.layer({ warningDelay: "1 hour" }))), 20_000)
})
