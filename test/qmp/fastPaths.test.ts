/**
 * The server's fast paths give exactly what the general paths give.
 *
 * - `parseCommonRequest` (the common request read with `JSON.parse`) agrees
 *   with `parseMessage` on every message it takes, and leaves every other one
 *   — malformed, refused, or holding numbers — to it; it does take the common
 *   requests.
 * - A command without arguments sent `{}` skips Schema: the same value, and
 *   the same errors for anything else.
 * - `JobInfoText` writes `query-jobs`' rows as `JSON.stringify` would, over
 *   any sequence of listings (rows added, removed, moved, changed in place),
 *   and reuses its text while nothing changed; `returnLine` puts that text
 *   where `JSON.stringify` would put the value, with any `id`.
 * - The outbox writes what one tick queued in one write, at the end of the
 *   tick, while its writer waits; otherwise the writer takes the lines, as
 *   before.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result, Schema } from "effect"
import * as fc from "fast-check"
import type { JobInfo } from "../../src/Job.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import { decoder, NoArguments } from "../../src/qmp/args.ts"
import { jobInfo, JobInfoText } from "../../src/qmp/jobInfoText.ts"
import { Outbox } from "../../src/qmp/outbox.ts"
import { parseCommonRequest, parseLine, parseMessage, type RequestId } from "../../src/qmp/request.ts"
import { JsonText, returnLine } from "../../src/qmp/wire.ts"

const encoder = new TextEncoder()
const bytes = (text: string) => encoder.encode(text)

// ---- JSON text, written as a client might write it (numbers in every spelling)

const numberText = fc.oneof(
  fc.constantFrom(
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "1e3",
    "1E2",
    "0.5",
    "-2.5e-3",
    "9007199254740991",
    "-9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "123456789012345678901234567890",
    "1e400"
  ),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n))
)

const keyText = fc.oneof(
  fc.constantFrom('"id"', '"execute"', '"arguments"', '"exec-oob"', '"__proto__"', '"constructor"', '"a"', '"1"', '"\\u0069d"'),
  fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s))
)

const { json: jsonText } = fc.letrec<{ json: string }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc.constantFrom("true", "false", "null", '"é\\n\\u00e9"'),
    numberText,
    fc.array(tie("json"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
    fc.array(fc.tuple(keyText, tie("json")), { maxLength: 3 }).map((members) =>
      `{${members.map(([k, v]) => `${k}:${v}`).join(",")}}`
    )
  )
}))

/** JSON without numbers (what the common requests' arguments hold). */
const { json: numberlessText } = fc.letrec<{ json: string }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.string({ maxLength: 8 }).map((s) => JSON.stringify(s)),
    fc.constantFrom("true", "false", "null"),
    fc.array(tie("json"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
    fc.array(fc.tuple(keyText, tie("json")), { maxLength: 3 }).map((members) =>
      `{${members.map(([k, v]) => `${k}:${v}`).join(",")}}`
    )
  )
}))

const space = fc.constantFrom("", " ", "\t", "\r\n ")

/** Any envelope-shaped object: the envelope's members (and others) with any values, in any order. */
const envelopeText = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('"execute"', '"exec-oob"', '"arguments"', '"id"', '"\\u0065xecute"'),
        keyText
      ),
      fc.oneof(fc.constantFrom('"query-jobs"', '"job-pause"', '"qmp_capabilities"', "{}"), jsonText),
      space
    ),
    { maxLength: 5 }
  )
  .map((members) => `{${members.map(([k, v, s]) => `${s}${k}${s}:${s}${v}`).join(",")}}`)

/** The requests clients send all the time: a command, maybe arguments without numbers, maybe an id. */
const commonRequestText = fc
  .record(
    {
      execute: fc.constantFrom("query-jobs", "job-pause", "query-version", "no-such-command"),
      oob: fc.boolean(),
      args: fc.array(fc.tuple(keyText, numberlessText), { maxLength: 3 }),
      id: fc.oneof(numberlessText, fc.integer().map(String), fc.constantFrom("9007199254740991", "-9007199254740991"))
    },
    { requiredKeys: ["execute", "oob"] }
  )
  .map(({ args, execute, id, oob }) => {
    const members = [`"${oob ? "exec-oob" : "execute"}":"${execute}"`]
    if (args !== undefined) members.push(`"arguments":{${args.map(([k, v]) => `${k}:${v}`).join(",")}}`)
    if (id !== undefined) members.push(`"id":${id}`)
    return `{${members.join(",")}}`
  })

/** The fast path takes `message` and agrees with the general path, or leaves it; which of the two. */
const agrees = (message: Uint8Array): "taken" | "left" => {
  const fast = parseCommonRequest(message)
  const general = parseMessage(message)
  assert.deepStrictEqual(parseLine(message), general)
  if (fast === undefined) return "left"
  assert.deepStrictEqual(fast, general)
  return "taken"
}

describe("parseCommonRequest", () => {
  it("takes the common requests, each exactly as parseMessage reads it", () => {
    fc.assert(
      fc.property(commonRequestText, (text) => {
        assert.strictEqual(agrees(bytes(text)), "taken", text)
      }),
      { numRuns: 1000 }
    )
  })

  it("agrees with parseMessage on any envelope-shaped object, or leaves it (property)", () => {
    let taken = 0
    fc.assert(
      fc.property(envelopeText, (text) => {
        if (agrees(bytes(text)) === "taken") taken++
      }),
      { numRuns: 3000 }
    )
    // Most of these are refused or hold numbers; the rest must still be taken.
    assert.isAbove(taken, 30)
  })

  it("leaves any JSON, any bytes, any cut-off message to parseMessage unless it reads the same (property)", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          jsonText.map(bytes),
          fc.uint8Array({ maxLength: 40 }),
          fc.tuple(commonRequestText, fc.nat()).map(([text, cut]) => bytes(text).subarray(0, cut % (text.length + 1)))
        ),
        (message) => {
          agrees(message)
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("leaves what only parseMessage reads right: numbers in arguments, ids it reads differently, errors", () => {
    const left = [
      '{"execute":"block-job-set-speed","arguments":{"device":"b0","speed":1}}',
      '{"execute":"x","arguments":{"a":[true,{"b":1.5}]}}',
      '{"execute":"query-jobs","id":-0}',
      '{"execute":"query-jobs","id":9007199254740993}',
      '{"execute":"query-jobs","id":1.5}',
      '{"execute":"query-jobs","id":[1]}',
      '{"execute":"query-jobs","exec-oob":"query-jobs"}',
      '{"execute":1}',
      '{"arguments":{}}',
      '{"execute":"x","arguments":[]}',
      '{"execute":"x","arguments":null}',
      '{"execute":"x","other":1}',
      '{"__proto__":{},"execute":"x"}',
      '{"execute":"x"',
      ' {"execute":"x"}',
      "[]",
      ""
    ]
    for (const text of left) assert.isUndefined(parseCommonRequest(bytes(text)), text)
    // Not UTF-8.
    assert.isUndefined(parseCommonRequest(new Uint8Array([...bytes('{"execute":"'), 0xff, ...bytes('"}')])))
    // What it takes, including members JSON.parse keeps as own members.
    const taken = [
      '{"execute":"query-jobs"}',
      '{"exec-oob":"qmp_capabilities","id":"a"}',
      '{"id":{"k":[null,true]},"arguments":{"id":"j0"},"execute":"job-pause"}',
      '{"execute":"x","arguments":{"__proto__":{"a":"b"},"constructor":"c"}}',
      '{"execute":"x","id":9007199254740991}',
      '{"execute":"x","arguments":{"b":"1","b":"2"}}'
    ]
    for (const text of taken) assert.strictEqual(agrees(bytes(text)), "taken", text)
  })
})

describe("arguments of a command that takes none", () => {
  // The same schema as NoArguments, but not it: decoded by Schema every time.
  const general = decoder(Schema.Record(Schema.String, Schema.Never))
  const fast = decoder(NoArguments)
  const show = (result: Result.Result<unknown, { readonly desc: string }>) =>
    Result.isSuccess(result) ? { success: result.success } : { failure: result.failure.desc }

  it("decode as Schema decodes them: {} to {}, anything else to the same error", () => {
    const inputs: Array<unknown> = [
      {},
      JSON.parse("{}"),
      { a: "1" },
      JSON.parse('{"__proto__":{}}'),
      Object.create(null),
      [],
      null,
      "x",
      1n
    ]
    for (const input of inputs) assert.deepStrictEqual(show(fast(input)), show(general(input)))
    assert.deepStrictEqual(show(fast({})), { success: {} })
    assert.deepStrictEqual(show(fast({ a: "1" })), { failure: "Parameter 'a' is unexpected" })
  })
})

// ---- query-jobs' text

const rowArb: fc.Arbitrary<JobInfo> = fc.record(
  {
    id: fc.constantFrom("a", "b", "c", "d", "e"),
    type: fc.constantFrom("idle", "backup"),
    status: fc.constantFrom(...JobStatus.all),
    currentProgress: fc.oneof(fc.constantFrom(0, -0, 1, 0.5, 1e21, Number.NaN, Number.POSITIVE_INFINITY), fc.nat()),
    totalProgress: fc.oneof(fc.constantFrom(0, 100), fc.nat()),
    error: fc.constantFrom("failed", 'quote " and \\ and é', "")
  },
  { requiredKeys: ["id", "type", "status", "currentProgress", "totalProgress"] }
)

const expectedText = (rows: ReadonlyArray<JobInfo>) => JSON.stringify(rows.map(jobInfo))

describe("JobInfoText", () => {
  it("writes QEMU's JobInfo", () => {
    const text = new JobInfoText()
    assert.strictEqual(
      text.of([
        { id: "j0", type: "backup", status: "running", currentProgress: 1, totalProgress: 4 },
        { id: "j1", type: "idle", status: "concluded", currentProgress: 0, totalProgress: 0, error: "no space" }
      ]).text,
      '[{"id":"j0","type":"backup","status":"running","current-progress":1,"total-progress":4},' +
        '{"id":"j1","type":"idle","status":"concluded","current-progress":0,"total-progress":0,"error":"no space"}]'
    )
    assert.strictEqual(text.of([]).text, "[]")
  })

  it("over any sequence of listings, the text is JSON.stringify's (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.array(rowArb, { maxLength: 6 }), { minLength: 1, maxLength: 8 }), (listings) => {
        const text = new JobInfoText()
        for (const rows of listings) assert.strictEqual(text.of(rows).text, expectedText(rows))
      }),
      { numRuns: 500 }
    )
  })

  it("is reused while nothing changed, and written anew when a row changes, even in place", () => {
    const text = new JobInfoText()
    const row = { id: "a", type: "idle", status: "running", currentProgress: 0, totalProgress: 0 } as {
      -readonly [K in keyof JobInfo]: JobInfo[K]
    }
    const first = text.of([row])
    assert.strictEqual(text.of([{ ...row }]), first)
    row.currentProgress = 5
    const second = text.of([row])
    assert.notStrictEqual(second, first)
    assert.strictEqual(second.text, expectedText([row]))
    row.error = "failed"
    assert.strictEqual(text.of([row]).text, expectedText([row]))
  })
})

describe("returnLine with JSON text", () => {
  /** Ids as the parser hands them over (big integers as raw JSON, for one). */
  const idArb: fc.Arbitrary<RequestId> = fc.oneof(
    fc.constant(undefined),
    jsonText.map((text): RequestId => {
      const incoming = parseMessage(bytes(`{"execute":"x","id":${text}}`))
      return incoming._tag === "Command" ? incoming.id : undefined
    })
  )

  it("is the line JSON.stringify writes for the value (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue(), idArb, (value, id) => {
        assert.strictEqual(returnLine(new JsonText(JSON.stringify(value)), id), returnLine(value, id))
      }),
      { numRuns: 1000 }
    )
  })
})

// ---- the outbox

/** An outbox whose direct writes are recorded (refused while `refuse` is set), and its writer's takes. */
const recordingOutbox = () => {
  const direct: Array<string> = []
  const control = { refuse: false }
  const outbox = new Outbox(16, 1 << 20, (text) => {
    if (control.refuse) return false
    direct.push(text)
    return true
  })
  const taken: Array<ReadonlyArray<string>> = []
  const writer = Effect.gen(function*() {
    while (true) {
      const lines = yield* outbox.take
      if (lines === undefined) return
      taken.push(lines)
    }
  })
  return { outbox, direct, taken, control, writer }
}

const endOfTick = Effect.promise(() => new Promise<void>((resolve) => queueMicrotask(resolve)))

describe("Outbox", () => {
  it.effect("what one tick queues while the writer waits goes out in one direct write, at the end of the tick", () =>
    Effect.gen(function*() {
      const { direct, outbox, taken, writer } = recordingOutbox()
      const fiber = yield* Effect.forkChild(writer, { startImmediately: true })
      outbox.offer("event")
      outbox.offer("reply")
      assert.deepStrictEqual(direct, [])
      yield* endOfTick
      assert.deepStrictEqual(direct, ["event\nreply\n"])
      outbox.offer("next")
      yield* endOfTick
      assert.deepStrictEqual(direct, ["event\nreply\n", "next\n"])
      outbox.end()
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(taken, [])
    }))

  it.effect("lines the socket will not take now go to the writer, which writes them as before", () =>
    Effect.gen(function*() {
      const { control, direct, outbox, taken, writer } = recordingOutbox()
      const fiber = yield* Effect.forkChild(writer, { startImmediately: true })
      control.refuse = true
      outbox.offer("a")
      outbox.offer("b")
      yield* endOfTick
      yield* Effect.yieldNow
      assert.deepStrictEqual(taken, [["a", "b"]])
      assert.deepStrictEqual(direct, [])
      outbox.end()
      yield* Fiber.join(fiber)
    }))

  it.effect("while the writer is busy, lines wait for it; lines queued as the outbox ends are the writer's", () =>
    Effect.gen(function*() {
      const { direct, outbox, taken, writer } = recordingOutbox()
      // Queued before the writer waits (as the greeting is): the writer takes it.
      outbox.offer("greeting")
      const fiber = yield* Effect.forkChild(writer, { startImmediately: true })
      assert.deepStrictEqual(taken, [["greeting"]])
      outbox.offer("last")
      outbox.end()
      yield* Fiber.join(fiber)
      yield* endOfTick
      assert.deepStrictEqual(taken, [["greeting"], ["last"]])
      assert.deepStrictEqual(direct, [])
    }))

  it.effect("closed: nothing more is written", () =>
    Effect.gen(function*() {
      const { direct, outbox, taken, writer } = recordingOutbox()
      const fiber = yield* Effect.forkChild(writer, { startImmediately: true })
      outbox.offer("dropped")
      outbox.close()
      yield* endOfTick
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(direct, [])
      assert.deepStrictEqual(taken, [])
      assert.strictEqual(outbox.offer("late"), "closed")
    }))
})
