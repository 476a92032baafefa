/**
 * Framing on its own.
 *
 * The message scanner: a message ends where its object closes, whatever
 * separates it from the next (a newline, other whitespace, nothing) and
 * however the bytes are cut into chunks; bad input is refused once per line
 * and the next line is read afresh; the size cap and the nesting limit hold
 * without keeping more than one capped message; the `id` of an over-long
 * message is found in the part that was read.
 *
 * The line splitter (the client's reader of what the server writes): lines
 * come out whole whatever the chunking; a line over the cap is reported once.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Frame, LineSplitter, type MessageFrame, MessageScanner } from "../../src/qmp/framing.ts"
import { headId, parseMessage } from "../../src/qmp/request.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const bytes = (s: string) => encoder.encode(s)

const show = (frames: ReadonlyArray<MessageFrame>) =>
  frames.map((f) => (f._tag === "Message" ? decoder.decode(f.bytes) : f._tag === "TooDeep" ? "<too deep>" : "<too long>"))

/** Everything that comes out of `input` pushed in `chunks`, then the end of input. */
const scan = (chunks: ReadonlyArray<string | Uint8Array>, scanner = new MessageScanner(1 << 20)) => [
  ...chunks.flatMap((chunk) => show(scanner.push(typeof chunk === "string" ? bytes(chunk) : chunk))),
  ...show(scanner.end())
]

/** The chunks of `all` cut at each of `cuts` (sorted, within bounds). */
const cutAt = (all: Uint8Array, cuts: ReadonlyArray<number>) => {
  const points = [0, ...cuts, all.length]
  return points.slice(1).map((end, k) => all.subarray(points[k]!, end))
}

/** A stream as QEMU's Python client writes it: compact JSON, no newlines. */
const qemuQmpStream = [
  '{"execute":"qmp_capabilities","arguments":{}}',
  '{"execute":"query-jobs","id":"__qmp#00001"}',
  '{"execute":"job-pause","arguments":{"id":"a}\\"{[b"},"id":"__qmp#00002"}',
  '{"execute":"transaction","arguments":{"actions":[{"type":"backup","data":{"job-id":"é\\u00e9","source":"s","target":"t"}}]},"id":{"k":[1,[2,{}]]}}'
]

describe("MessageScanner", () => {
  it("a message ends where its object closes: a newline, other whitespace or nothing between messages", () => {
    assert.deepStrictEqual(scan([qemuQmpStream.join("")]), qemuQmpStream)
    assert.deepStrictEqual(scan([qemuQmpStream.join(" \t\r\n ")]), qemuQmpStream)
    assert.deepStrictEqual(scan(['\n\n  \r\n{"a":1}\r\n\n{"b":2}\n\n']), ['{"a":1}', '{"b":2}'])
  })

  it("braces, brackets and quotes inside strings do not count; escapes are followed", () => {
    assert.deepStrictEqual(scan(['{"a":"}"}{"b":"\\"}"}{"c":"\\\\"}{"d":"[{"}']), ['{"a":"}"}', '{"b":"\\"}"}', '{"c":"\\\\"}', '{"d":"[{"}'])
    // QEMU's single-quoted strings are strings too.
    assert.deepStrictEqual(scan(["{'a':'}'}{\"b\":\"'\"}"]), ["{'a':'}'}", '{"b":"\'"}'])
  })

  it("one message cut in two at every byte boundary comes out whole, once", () => {
    for (const message of qemuQmpStream) {
      const all = bytes(`${message}${message}`)
      for (let cut = 0; cut <= all.length; cut++) {
        assert.deepStrictEqual(scan(cutAt(all, [cut])), [message, message], `cut at ${cut}`)
      }
    }
  })

  it("a stream pushed one byte at a time gives the same messages", () => {
    const all = bytes(qemuQmpStream.join(""))
    assert.deepStrictEqual(scan(Array.from(all, (b) => new Uint8Array([b]))), qemuQmpStream)
  })

  it("any chunking, any separators: the same messages (property)", () => {
    const separator = fc.constantFrom("", " ", "\n", "\r\n", "\t \n ")
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }), separator), {
          maxLength: 8
        }),
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 12 }),
        (messages, cuts) => {
          const texts = messages.map(([value]) => JSON.stringify(value))
          const all = bytes(messages.map(([value, sep], k) => `${k === 0 ? sep : ""}${JSON.stringify(value)}${sep}`).join(""))
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b)
          assert.deepStrictEqual(scan(cutAt(all, points)), texts)
        }
      ),
      { numRuns: 300 }
    )
  })

  it("a newline ends an object still open, even inside a string; the next line is read afresh", () => {
    assert.deepStrictEqual(scan(['{"execute": "query-jobs"\n{"execute":"x"}']), ['{"execute": "query-jobs"', '{"execute":"x"}'])
    assert.deepStrictEqual(scan(['{"id": "abc\\\n{"b":1}']), ['{"id": "abc\\', '{"b":1}'])
    assert.deepStrictEqual(scan(['{"id": "abc\r\n{"b":1}']), ['{"id": "abc\r', '{"b":1}'])
  })

  it("anything else that begins a line is one bad message, to the end of the line", () => {
    assert.deepStrictEqual(scan(['42 "x" {"a":1}\n}\n  [1,{"a":2}]\r\n"s"\ntrue']), ['42 "x" {"a":1}', "}", '[1,{"a":2}]\r', '"s"', "true"])
  })

  it("after a message, garbage on the same line is skipped up to the newline", () => {
    assert.deepStrictEqual(scan(['{"a":1}} x {"b":2}\n{"c":3}']), ['{"a":1}', '{"c":3}'])
    assert.deepStrictEqual(scan(['{"a":1}   {"b":2}\t\t{"c":3}  \n']), ['{"a":1}', '{"b":2}', '{"c":3}'])
  })

  it("a bracket that closes nothing: the object runs to the end of its line", () => {
    assert.deepStrictEqual(scan(['{]{"a":1}\n{"b":2}']), ['{]{"a":1}', '{"b":2}'])
    assert.deepStrictEqual(scan(['{"a":[1}]}\n']), ['{"a":[1}]'])
  })

  it("the end of input hands over a message still open, and nothing for whitespace", () => {
    assert.deepStrictEqual(scan(['{"a":1}{"b":']), ['{"a":1}', '{"b":'])
    assert.deepStrictEqual(scan(["42"]), ["42"])
    assert.deepStrictEqual(scan(['{"a":1}  \n  ']), ['{"a":1}'])
  })

  describe("the size cap", () => {
    const sized = (n: number) => `{"s":"${"x".repeat(n - 8)}"}`

    it("counts each message: messages of exactly the cap pass, back to back, whatever the chunking", () => {
      const message = sized(64)
      assert.strictEqual(message.length, 64)
      assert.deepStrictEqual(scan([message + message + "\n" + message], new MessageScanner(64)), [message, message, message])
      assert.deepStrictEqual(scan(cutAt(bytes(message + message), [10, 70, 100]), new MessageScanner(64)), [message, message])
    })

    it("one byte over: reported once with the first cap bytes, and nothing after it", () => {
      const scanner = new MessageScanner(64)
      const frames = [...scanner.push(bytes(sized(64))), ...scanner.push(bytes(sized(65) + '{"a":1}\n'))]
      assert.deepStrictEqual(show(frames), [sized(64), "<too long>"])
      const tooLong = frames[1]!
      assert.strictEqual(tooLong._tag === "TooLong" && decoder.decode(tooLong.head), sized(65).slice(0, 64))
      assert.isTrue(scanner.failed)
      assert.deepStrictEqual(show(scanner.push(bytes('{"b":2}\n'))), [])
      assert.deepStrictEqual(show(scanner.end()), [])
    })

    it("is passed before the message ends: nothing is kept beyond the cap", () => {
      const scanner = new MessageScanner(1024)
      assert.deepStrictEqual(show(scanner.push(bytes('{"s":"'))), [])
      assert.deepStrictEqual(show(scanner.push(new Uint8Array(1020).fill(0x78))), ["<too long>"])
      // A bad line, too, and one that is only whitespace after its start.
      assert.deepStrictEqual(show(new MessageScanner(1024).push(bytes(`x${" ".repeat(1024)}`))), ["<too long>"])
    })

    it("whitespace between messages does not count", () => {
      const message = sized(64)
      assert.deepStrictEqual(scan([`${" \n".repeat(100)}${message}${" ".repeat(100)}${message}`], new MessageScanner(64)), [message, message])
    })
  })

  describe("the nesting limit", () => {
    const nested = (depth: number) => `{"a":${"[".repeat(depth - 1)}${"]".repeat(depth - 1)}}`

    it("1024 levels pass; 1025 are refused at once, the rest of that message dropped, the next one read", () => {
      assert.deepStrictEqual(scan([nested(1024)]), [nested(1024)])
      const scanner = new MessageScanner()
      const deep = nested(1025)
      // Reported as the 1025th bracket arrives, before the message ends.
      assert.deepStrictEqual(show(scanner.push(bytes(deep.slice(0, 5 + 1024)))), ["<too deep>"])
      assert.deepStrictEqual(scan([deep.slice(5 + 1024), '{"b":2}'], scanner), ['{"b":2}'])
    })

    it("counts braces and brackets together, outside strings only", () => {
      const mixed = `${"{\"k\":[".repeat(512)}${"]}".repeat(512)}`
      assert.deepStrictEqual(scan([mixed]), [mixed])
      assert.deepStrictEqual(scan([`${"{\"k\":[".repeat(513)}${"]}".repeat(513)}`]), ["<too deep>"])
      const inStrings = `{"a":"${"[".repeat(2000)}","b":'${"{".repeat(2000)}'}`
      assert.deepStrictEqual(scan([inStrings]), [inStrings])
    })

    it("a bad line too deep is refused once, and the next line is read", () => {
      assert.deepStrictEqual(scan([`${"[".repeat(2000)}${"]".repeat(2000)}\n{"b":2}`]), ["<too deep>", '{"b":2}'])
    })
  })
})

describe("the id of an over-long message", () => {
  const id = (head: string) => headId(bytes(head))

  it("is the value of a top-level id member read whole before the cut", () => {
    assert.deepStrictEqual(id('{"execute":"query-jobs","id":"route-me","arguments":{"x":"yyyy'), { value: "route-me" })
    assert.deepStrictEqual(id('{ "id" : {"a":["}",{"b":null}]} , "x": "y'), { value: { a: ["}", { b: null }] } })
    assert.deepStrictEqual(id('{"id":null,"x'), { value: null })
    assert.deepStrictEqual(id('{"id":-1.5e3 ,"x'), { value: -1500 })
    assert.deepStrictEqual(id('{"\\u0069d":"escaped key","x'), { value: "escaped key" })
    assert.deepStrictEqual(id('{"id":1,"x":{"id":2},"id":3,"y":"'), { value: 3 })
  })

  it("is read as it would be from the whole message (numbers included)", () => {
    for (const value of ["123456789012345678901", "1.0", "-0", '"\\u00e9\\n"', '[1e400, {"a": 2}]']) {
      const whole = parseMessage(bytes(`{"execute":"query-jobs","id":${value}}`))
      assert.strictEqual(whole._tag, "Command")
      assert.deepStrictEqual(id(`{"execute":"query-jobs","id":${value},"x":"`), whole._tag === "Command" ? whole.id : undefined, value)
    }
  })

  it("is none when the member is not read whole, comes after the cut, or the message is no object", () => {
    assert.isUndefined(id('{"execute":"query-jobs","arguments":{"x":"yyyy'))
    assert.isUndefined(id('{"execute":"query-jobs","id":"route'))
    assert.isUndefined(id('{"execute":"query-jobs","id":12'))
    assert.isUndefined(id('{"execute":"query-jobs","id":{"a":1'))
    assert.isUndefined(id('{"x":{"id":1},"y":"'))
    assert.isUndefined(id('[{"id":1},"'))
    assert.isUndefined(id('xx {"id":1}'))
  })

  it("stops at the first thing out of place", () => {
    assert.deepStrictEqual(id('{"id":1,"x" 2,"id":3,"y":"'), { value: 1 })
    assert.isUndefined(id('{"x":tru e,"id":3,"y":"'))
    assert.isUndefined(headId(new Uint8Array([...bytes('{"id":"'), 0xff, 0x22, 0x2c, 0x22])))
  })
})

const lines = (frames: ReadonlyArray<Frame>) =>
  frames.map((f) => (f._tag === "Line" ? decoder.decode(f.bytes) : "<too long>"))

describe("LineSplitter", () => {
  it("splits lines, joins pieces across chunks, keeps empty lines", () => {
    const s = new LineSplitter(100)
    assert.deepStrictEqual(lines(s.push(bytes("ab"))), [])
    assert.deepStrictEqual(lines(s.push(bytes("c\nd\n\ne"))), ["abc", "d", ""])
    assert.deepStrictEqual(lines(s.push(bytes("f\n"))), ["ef"])
    assert.deepStrictEqual(lines(s.end()), [])
  })

  it("an unterminated last line comes out at the end", () => {
    const s = new LineSplitter(100)
    s.push(bytes("a\nlast"))
    assert.deepStrictEqual(lines(s.end()), ["last"])
  })

  it("the cap: a line of exactly the cap passes; one byte more is reported once, and nothing after it", () => {
    const s = new LineSplitter(4)
    assert.deepStrictEqual(lines(s.push(bytes("abcd\nab"))), ["abcd"])
    assert.deepStrictEqual(lines(s.push(bytes("cd"))), [])
    assert.deepStrictEqual(lines(s.push(bytes("e"))), ["<too long>"])
    assert.isTrue(s.failed)
    assert.deepStrictEqual(lines(s.push(bytes("\nok\n"))), [])
    assert.deepStrictEqual(lines(s.end()), [])
  })

  it("any chunking gives the same lines (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 20 }).map((l) => l.replaceAll("\n", "")), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }),
        (input, cuts) => {
          const all = bytes(input.map((l) => `${l}\n`).join(""))
          const s = new LineSplitter(1 << 20)
          const out: Array<Frame> = []
          let at = 0
          for (let i = 0; at < all.length; i++) {
            const size = cuts[i % cuts.length]!
            out.push(...s.push(all.subarray(at, at + size)))
            at += size
          }
          out.push(...s.end())
          assert.deepStrictEqual(lines(out), input)
        }
      ),
      { numRuns: 300 }
    )
  })
})
