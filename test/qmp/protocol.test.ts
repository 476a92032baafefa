/**
 * The QMP protocol end to end, over a real Unix socket and a real TCP socket:
 * greeting, capabilities negotiation, `id` echo, framing (a stream of JSON
 * objects, with or without newlines, in any pieces; one reply per line of bad
 * input; the size cap and the nesting limit), framing errors, `exec-oob`,
 * argument errors (QEMU's texts, nested paths), unknown commands — and the
 * connection staying usable after every error.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { readFileSync } from "node:fs"
import type { Jobs } from "../../src/Jobs.ts"
import type { QmpClient, Reply } from "../../src/Qmp.ts"
import * as Qmp from "../../src/Qmp.ts"
import { layer, startServer, type Transport } from "./harness.ts"

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }

const error = (cls: string, desc: string, id?: { value: unknown }): Reply =>
  id === undefined ? { error: { class: cls, desc } } : { error: { class: cls, desc }, id: id.value }

const generic = (desc: string, id?: { value: unknown }) => error("GenericError", desc, id)

/** The connection still answers. */
const stillUsable = (client: QmpClient) =>
  Effect.gen(function*() {
    const reply = yield* client.request({ execute: "query-version", id: "ping" })
    assert.deepStrictEqual(reply, { return: Qmp.version, id: "ping" })
  })

const argumentErrors: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
  ["job-pause", {}, "Parameter 'id' is missing"],
  ["job-pause", { id: 1 }, "Invalid parameter type for 'id', expected: string"],
  ["job-pause", { id: null }, "Invalid parameter type for 'id', expected: string"],
  ["job-pause", { id: "x", foo: 1 }, "Parameter 'foo' is unexpected"],
  ["job-pause", { foo: 1 }, "Parameter 'id' is missing"],
  ["job-dismiss", { id: ["x"] }, "Invalid parameter type for 'id', expected: string"],
  ["query-jobs", { x: 1 }, "Parameter 'x' is unexpected"],
  ["query-block-jobs", { all: true }, "Parameter 'all' is unexpected"],
  ["block-job-set-speed", { device: "x", speed: 1.5 }, "Invalid parameter type for 'speed', expected: integer"],
  ["block-job-set-speed", { device: "x", speed: "1" }, "Invalid parameter type for 'speed', expected: integer"],
  ["block-job-set-speed", { device: "x", speed: true }, "Invalid parameter type for 'speed', expected: integer"],
  ["block-job-set-speed", { device: "x" }, "Parameter 'speed' is missing"],
  ["block-job-set-speed", { speed: 1 }, "Parameter 'device' is missing"],
  ["block-job-set-speed", { speed: 1.5 }, "Parameter 'device' is missing"],
  ["block-job-cancel", { device: "x", force: "yes" }, "Invalid parameter type for 'force', expected: boolean"],
  ["block-job-finalize", { device: "x" }, "Parameter 'id' is missing"],
  ["block-job-dismiss", { id: "x", device: "x" }, "Parameter 'device' is unexpected"],
  ["backup", {}, "Parameter 'job-id' is missing"],
  ["backup", { "job-id": "a" }, "Parameter 'source' is missing"],
  ["backup", { "job-id": "a", source: "s" }, "Parameter 'target' is missing"],
  ["backup", { "job-id": "a", source: "s", target: "t", speed: -1.5 }, "Invalid parameter type for 'speed', expected: integer"],
  ["backup", { "job-id": "a", source: "s", target: "t", "auto-finalize": 1 }, "Invalid parameter type for 'auto-finalize', expected: boolean"],
  ["mirror", { "job-id": "a", source: "s", target: "t", "auto-dismiss": "no" }, "Invalid parameter type for 'auto-dismiss', expected: boolean"],
  ["mirror", { "job-id": "a", source: "s", target: "t", overwrite: 0 }, "Invalid parameter type for 'overwrite', expected: boolean"],
  ["mirror", { "job-id": "a", source: "s", target: "t", sync: "full" }, "Parameter 'sync' is unexpected"],
  ["transaction", {}, "Parameter 'actions' is missing"],
  ["transaction", { actions: {} }, "Invalid parameter type for 'actions', expected: array"],
  ["transaction", { actions: [1] }, "Invalid parameter type for 'actions[0]', expected: object"],
  ["transaction", { actions: [{}] }, "Parameter 'actions[0].type' is missing"],
  ["transaction", { actions: [{ type: 5 }] }, "Invalid parameter type for 'actions[0].type', expected: string"],
  ["transaction", { actions: [{ type: "drive-backup", data: {} }] }, "Parameter 'type' does not accept value 'drive-backup'"],
  ["transaction", { actions: [{ type: "backup" }] }, "Parameter 'actions[0].data' is missing"],
  ["transaction", { actions: [{ type: "backup", data: [] }] }, "Invalid parameter type for 'actions[0].data', expected: object"],
  [
    "transaction",
    { actions: [{ type: "backup", data: { "job-id": "a", source: "s" } }] },
    "Parameter 'actions[0].data.target' is missing"
  ],
  [
    "transaction",
    { actions: [{ type: "backup", data: { "job-id": "a", source: "s", target: 7 } }] },
    "Invalid parameter type for 'actions[0].data.target', expected: string"
  ],
  [
    "transaction",
    { actions: [{ type: "mirror", data: { "job-id": "a", source: "s", target: "t", x: 1 } }] },
    "Parameter 'actions[0].data.x' is unexpected"
  ],
  [
    "transaction",
    { actions: [{ type: "mirror", x: 1, data: { "job-id": "a", source: "s", target: "t" } }] },
    "Parameter 'actions[0].x' is unexpected"
  ],
  [
    "transaction",
    {
      actions: [
        { type: "backup", data: { "job-id": "a", source: "s", target: "t" } },
        { type: "backup", data: { "job-id": "b", source: "s", target: "t", speed: "fast" } }
      ]
    },
    "Invalid parameter type for 'actions[1].data.speed', expected: integer"
  ],
  [
    "transaction",
    { actions: [], properties: { "completion-mode": "all" } },
    "Parameter 'completion-mode' does not accept value 'all'"
  ],
  [
    "transaction",
    { actions: [], properties: { "completion-mode": 1 } },
    "Invalid parameter type for 'properties.completion-mode', expected: string"
  ],
  ["transaction", { actions: [], properties: 1 }, "Invalid parameter type for 'properties', expected: object"],
  ["transaction", { actions: [], properties: { x: 1 } }, "Parameter 'properties.x' is unexpected"],
  // Members are checked in declaration order; unknown members only after all of them.
  ["transaction", { zzz: 1, actions: [{ type: "backup" }] }, "Parameter 'actions[0].data' is missing"],
  ["qmp_capabilities", { enable: "oob" }, "Invalid parameter type for 'enable', expected: array"],
  ["qmp_capabilities", { enable: [1] }, "Invalid parameter type for 'enable[0]', expected: string"],
  ["qmp_capabilities", { enable: ["fast"] }, "Parameter 'null' does not accept value 'fast'"]
]

const transports: ReadonlyArray<Transport> = ["unix", "tcp"]

type Connect = Effect.Effect<QmpClient, Qmp.QmpClientError, Scope.Scope>

for (const transport of transports) {
  describe(`QMP protocol over ${transport}`, () => {
    const run = <A, E>(name: string, body: (client: () => Connect, fresh: () => Connect) => Effect.Effect<A, E, Scope.Scope | Jobs>) =>
      it.effect(name, () =>
        Effect.gen(function*() {
          const h = yield* startServer()
          return yield* body(() => h.client(transport), () => h.fresh(transport))
        }).pipe(Effect.scoped, Effect.provide(layer)))

    run("greets with effect-jobs's version and no capabilities", (_client, fresh) =>
      Effect.gen(function*() {
        const c = yield* fresh()
        const [major, minor, micro] = pkg.version.split(".").map(Number)
        assert.deepStrictEqual(c.greeting, {
          QMP: { version: { qemu: { micro, minor, major }, package: "effect-jobs" }, capabilities: [] }
        })
        assert.deepStrictEqual(yield* c.execute("qmp_capabilities"), {})
        assert.deepStrictEqual(yield* c.execute("query-version"), { qemu: { micro, minor, major }, package: "effect-jobs" })
      }))

    run("accepts only qmp_capabilities before negotiation, and it only once", (_client, fresh) =>
      Effect.gen(function*() {
        const c = yield* fresh()
        const expecting = error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'")
        assert.deepStrictEqual(yield* c.request({ execute: "query-jobs" }), expecting)
        assert.deepStrictEqual(yield* c.request({ execute: "quit" }), expecting)
        assert.deepStrictEqual(yield* c.request({ execute: "no-such-command" }), expecting)
        // Framing and argument errors are reported as such before negotiation too.
        assert.deepStrictEqual(yield* c.request({ execute: 3 }), generic("QMP input member 'execute' must be a string"))
        assert.deepStrictEqual(
          yield* c.request({ execute: "qmp_capabilities", arguments: { x: 1 } }),
          generic("Parameter 'x' is unexpected")
        )
        assert.deepStrictEqual(
          yield* c.request({ execute: "qmp_capabilities", arguments: { enable: ["oob"] } }),
          generic("Capability 'oob' not available")
        )
        assert.deepStrictEqual(yield* c.request({ execute: "qmp_capabilities", arguments: { enable: [] } }), { return: {} })
        assert.deepStrictEqual(
          yield* c.request({ execute: "qmp_capabilities", id: 7 }),
          error("CommandNotFound", "Capabilities negotiation is already complete, command ignored", { value: 7 })
        )
        yield* stillUsable(c)
      }))

    run("echoes any id, on success and on every kind of error", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        const ids: ReadonlyArray<unknown> = [0, -3, 1.5, "abc", "", null, true, [], [1, "x", null], { a: { b: [1, 2] } }]
        for (const id of ids) {
          assert.deepStrictEqual(yield* c.request({ execute: "query-jobs", id }), { return: [], id })
          assert.deepStrictEqual(yield* c.request({ id, execute: "job-pause", arguments: { id: "nope" } }), generic("Job not found", { value: id }))
          assert.deepStrictEqual(yield* c.request({ execute: "frobnicate", id }), error("CommandNotFound", "The command frobnicate has not been found", { value: id }))
          assert.deepStrictEqual(yield* c.request({ execute: "job-pause", id, arguments: {} }), generic("Parameter 'id' is missing", { value: id }))
          assert.deepStrictEqual(yield* c.request({ id, oops: 1 }), generic("QMP input member 'oops' is unexpected", { value: id }))
          assert.deepStrictEqual(yield* c.request({ id }), generic("QMP input lacks member 'execute'", { value: id }))
        }
        // No id, no id member.
        assert.deepStrictEqual(yield* c.request({ execute: "query-jobs" }), { return: [] })
      }))

    run("framing errors: QEMU's texts, and the connection stays usable", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        const cases: ReadonlyArray<readonly [string, Reply]> = [
          ["[1,2]", generic("QMP input must be a JSON object")],
          ['"execute"', generic("QMP input must be a JSON object")],
          ["42", generic("QMP input must be a JSON object")],
          ["null", generic("QMP input must be a JSON object")],
          ["{}", generic("QMP input lacks member 'execute'")],
          ['{"execute": 1}', generic("QMP input member 'execute' must be a string")],
          ['{"execute": null, "id": 2}', generic("QMP input member 'execute' must be a string", { value: 2 })],
          ['{"execute": "query-jobs", "arguments": []}', generic("QMP input member 'arguments' must be an object")],
          ['{"execute": "query-jobs", "arguments": null}', generic("QMP input member 'arguments' must be an object")],
          ['{"execute": "query-jobs", "arguments": "x"}', generic("QMP input member 'arguments' must be an object")],
          ['{"execute": "query-jobs", "control": {}}', generic("QMP input member 'control' is unexpected")],
          ['{"exec-oob": "query-jobs"}', generic("The command query-jobs does not support OOB")],
          ['{"exec-oob": 1}', generic("QMP input member 'exec-oob' must be a string")],
          ['{"execute": "query-jobs", "exec-oob": "query-jobs"}', generic("QMP input member 'exec-oob' is unexpected")],
          // The first problem in member order.
          ['{"foo": 1, "execute": 2}', generic("QMP input member 'foo' is unexpected")],
          ['{"arguments": 1, "execute": "query-jobs"}', generic("QMP input member 'arguments' must be an object")],
          ['{"__proto__": 1, "execute": "query-jobs"}', generic("QMP input member '__proto__' is unexpected")],
          [`${"[".repeat(2000)}${"]".repeat(2000)}`, generic("JSON nesting depth limit exceeded")]
        ]
        for (const [line, expected] of cases) {
          assert.deepStrictEqual(yield* c.request(line), expected, line.slice(0, 60))
          yield* stillUsable(c)
        }
        for (const line of ["{bad", '{"execute": "query-jobs"', "tru", '{"execute": "a\\x"}', "}"]) {
          const reply = yield* c.request(line)
          const err = reply.error as { class: string; desc: string }
          assert.strictEqual(err.class, "GenericError")
          assert.match(err.desc, /^JSON parse error, .+/)
          yield* stillUsable(c)
        }
        yield* c.raw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d, 0x0a]))
        assert.deepStrictEqual(yield* c.nextReply, generic("JSON parse error, invalid UTF-8 sequence"))
        yield* stillUsable(c)
      }))

    run("blank lines are ignored, CRLF is accepted, split writes are joined", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        yield* c.raw('\n\n   \n\t\r\n{"execute": "query-jobs", "id": 1}\r\n')
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 1 })
        for (const part of ['{"exec', 'ute": "query-', 'jobs", "id"', ": 2}\n"]) yield* c.raw(part)
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 2 })
        yield* c.raw('{"execute": "query-jobs", "id": 3}\n{"execute": "query-jobs", "id": 4}\n')
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 3 })
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 4 })
      }))

    run("a client that writes no newline at all, as QEMU's Python client does (qemu.qmp)", (_client, fresh) =>
      Effect.gen(function*() {
        const c = yield* fresh()
        // Compact JSON, each message written on its own once the previous reply is in.
        yield* c.raw('{"execute":"qmp_capabilities","arguments":{}}')
        assert.deepStrictEqual(yield* c.nextReply, { return: {} })
        yield* c.raw('{"execute":"query-jobs","id":"__qmp#00001"}')
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: "__qmp#00001" })
        yield* c.raw('{"execute":"job-pause","arguments":{"id":"j}\\"{"},"id":"__qmp#00002"}')
        assert.deepStrictEqual(yield* c.nextReply, generic("Job not found", { value: "__qmp#00002" }))
        yield* c.raw('{"execute":"query-version","id":"__qmp#00003"}')
        assert.deepStrictEqual(yield* c.nextReply, { return: Qmp.version, id: "__qmp#00003" })
      }))

    run("several messages in one write, with or without whitespace between them: each is answered, in order", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        yield* c.raw(
          '{"execute":"query-jobs","id":1}{"execute":"query-jobs","id":2} \t {"execute":"frobnicate","id":3}\r\n' +
            '{"execute":"job-pause","arguments":{"id":"nope"},"id":4}{"id":5,"execute":"query-version"}'
        )
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 1 })
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 2 })
        assert.deepStrictEqual(yield* c.nextReply, error("CommandNotFound", "The command frobnicate has not been found", { value: 3 }))
        assert.deepStrictEqual(yield* c.nextReply, generic("Job not found", { value: 4 }))
        assert.deepStrictEqual(yield* c.nextReply, { return: Qmp.version, id: 5 })
      }))

    run("one message in several writes, cut anywhere, with no newline after it", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        const message = '{"execute": "job-pause", "arguments": {"id": "a\\"}{["}, "id": "split"}'
        const expected = generic("Job not found", { value: "split" })
        const escape = message.indexOf("\\")
        // Cut inside a key, right at and right after an escape, between the braces in a string, before the last byte.
        for (const cut of [1, 5, escape, escape + 1, message.indexOf("}{") + 1, message.length - 1]) {
          yield* c.raw(message.slice(0, cut))
          yield* c.raw(message.slice(cut))
          assert.deepStrictEqual(yield* c.nextReply, expected, `cut at ${cut}`)
        }
        for (const byte of new TextEncoder().encode(message)) yield* c.raw(new Uint8Array([byte]))
        assert.deepStrictEqual(yield* c.nextReply, expected)
        yield* stillUsable(c)
      }))

    run("bad input costs one reply per line, and the next line is read afresh", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        yield* c.raw(
          '} ] {"execute":"query-jobs","id":0}\n' + // a stray bracket begins the line: all of it is one bad message
            '{"execute":"query-jobs","id":1}} trailing garbage\n' + // after a message: skipped
            '{"execute": "query-jobs", "id": 2\n' + // still open at the newline: incomplete
            '42 {"execute":"query-jobs","id":3}\n' +
            '{"execute":"query-jobs","id":4}\n'
        )
        const parseError = (reply: Reply) => {
          assert.notProperty(reply, "id")
          assert.strictEqual((reply.error as { class: string }).class, "GenericError")
          assert.match((reply.error as { desc: string }).desc, /^JSON parse error, .+/)
        }
        parseError(yield* c.nextReply)
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 1 })
        parseError(yield* c.nextReply)
        parseError(yield* c.nextReply)
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: 4 })
      }))

    run("nesting: 1024 levels pass; deeper is refused at once and the next message on the line is answered", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        const id = JSON.parse(`${"[".repeat(1023)}${"]".repeat(1023)}`) as unknown
        assert.deepStrictEqual(yield* c.request({ execute: "query-jobs", id }), { return: [], id })
        yield* c.raw(`{"execute":"query-jobs","arguments":{"a":${"[".repeat(1100)}${"]".repeat(1100)}}}{"execute":"query-jobs","id":"after"}`)
        assert.deepStrictEqual(yield* c.nextReply, generic("JSON nesting depth limit exceeded"))
        assert.deepStrictEqual(yield* c.nextReply, { return: [], id: "after" })
      }))

    run("a message over the cap: the error keeps an id read whole before the cap; then the connection closes", (client) =>
      Effect.gen(function*() {
        const tooLong = `QMP input exceeds the maximum message size of ${Qmp.maxLineBytes} bytes`
        const filler = "y".repeat(Qmp.maxLineBytes)
        const cases: ReadonlyArray<readonly [string, { value: unknown } | undefined]> = [
          [`{"execute":"query-jobs","id":{"route":[1,"}"]},"arguments":{"x":"${filler}"}}`, { value: { route: [1, "}"] } }],
          [`{"execute":"query-jobs","arguments":{"x":"${filler}"},"id":7}`, undefined],
          [`{"execute":"query-jobs","id":"${filler}"}`, undefined]
        ]
        for (const [message, id] of cases) {
          const c = yield* client()
          yield* c.raw(message)
          assert.deepStrictEqual(yield* c.nextReply, generic(tooLong, id))
          yield* c.closed
        }
      }))

    run("exec-oob gets QEMU's answers: the negotiation rule, CommandNotFound, then 'does not support OOB'", (_client, fresh) =>
      Effect.gen(function*() {
        const c = yield* fresh()
        const expecting = (id: number) =>
          error("CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'", { value: id })
        assert.deepStrictEqual(yield* c.request({ "exec-oob": "query-jobs", id: 1 }), expecting(1))
        assert.deepStrictEqual(yield* c.request({ "exec-oob": "frobnicate", id: 2 }), expecting(2))
        assert.deepStrictEqual(
          yield* c.request({ execute: "query-jobs", "exec-oob": "query-jobs", id: 3 }),
          generic("QMP input member 'exec-oob' is unexpected", { value: 3 })
        )
        // qmp_capabilities may run out of band in QEMU too.
        assert.deepStrictEqual(yield* c.request({ "exec-oob": "qmp_capabilities", id: 4 }), { return: {}, id: 4 })
        assert.deepStrictEqual(
          yield* c.request({ "exec-oob": "query-jobs", id: 5 }),
          generic("The command query-jobs does not support OOB", { value: 5 })
        )
        assert.deepStrictEqual(
          yield* c.request({ "exec-oob": "frobnicate", id: 6 }),
          error("CommandNotFound", "The command frobnicate has not been found", { value: 6 })
        )
        yield* stillUsable(c)
      }))

    run("unknown commands: CommandNotFound", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        for (const name of ["frobnicate", "blockdev-backup", "job-change", "", "QUERY-JOBS"]) {
          assert.deepStrictEqual(yield* c.request({ execute: name }), error("CommandNotFound", `The command ${name} has not been found`))
        }
        yield* stillUsable(c)
      }))

    run("argument errors: QEMU's texts, first problem in QEMU's order, nested paths", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        for (const [execute, args, desc] of argumentErrors) {
          assert.deepStrictEqual(yield* c.request({ execute, arguments: args, id: execute }), generic(desc, { value: execute }), `${execute} ${JSON.stringify(args)}`)
        }
        // Nothing was created along the way.
        assert.deepStrictEqual(yield* c.execute("query-jobs"), [])
        yield* stillUsable(c)
      }))

    run("query-commands lists every command", (client) =>
      Effect.gen(function*() {
        const c = yield* client()
        const names = ((yield* c.execute("query-commands")) as Array<{ name: string }>).map((x) => x.name).sort()
        assert.deepStrictEqual(names, [
          "backup",
          "block-job-cancel",
          "block-job-complete",
          "block-job-dismiss",
          "block-job-finalize",
          "block-job-pause",
          "block-job-resume",
          "block-job-set-speed",
          "job-cancel",
          "job-complete",
          "job-dismiss",
          "job-finalize",
          "job-pause",
          "job-resume",
          "mirror",
          "qmp_capabilities",
          "query-block-jobs",
          "query-commands",
          "query-jobs",
          "query-version",
          "quit",
          "transaction"
        ])
      }))
  })
}
