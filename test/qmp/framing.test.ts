/**
 * The line framer on its own: lines come out whole whatever the chunking; a
 * line over the cap is reported once, without being buffered whole, and
 * nothing after it comes out; an unterminated last line counts at the end.
 */
import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import { type Frame, LineSplitter } from "../../src/qmp/framing.ts"
import { nestsDeeperThan } from "../../src/qmp/request.ts"

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (frames: ReadonlyArray<Frame>) =>
  frames.map((f) => (f._tag === "Line" ? new TextDecoder().decode(f.bytes) : "<too long>"))

describe("LineSplitter", () => {
  it("splits lines, joins pieces across chunks, keeps empty lines", () => {
    const s = new LineSplitter(100)
    assert.deepStrictEqual(text(s.push(bytes("ab"))), [])
    assert.deepStrictEqual(text(s.push(bytes("c\nd\n\ne"))), ["abc", "d", ""])
    assert.deepStrictEqual(text(s.push(bytes("f\n"))), ["ef"])
    assert.deepStrictEqual(text(s.end()), [])
  })

  it("an unterminated last line comes out at the end", () => {
    const s = new LineSplitter(100)
    s.push(bytes("a\nlast"))
    assert.deepStrictEqual(text(s.end()), ["last"])
  })

  it("the cap: a line of exactly the cap passes; one byte more is reported once, and nothing after it", () => {
    const s = new LineSplitter(4)
    assert.deepStrictEqual(text(s.push(bytes("abcd\nab"))), ["abcd"])
    assert.deepStrictEqual(text(s.push(bytes("cd"))), [])
    assert.deepStrictEqual(text(s.push(bytes("e"))), ["<too long>"])
    assert.isTrue(s.failed)
    assert.deepStrictEqual(text(s.push(bytes("\nok\n"))), [])
    assert.deepStrictEqual(text(s.end()), [])
  })

  it("a long line is refused before its newline arrives (nothing is buffered past the cap)", () => {
    const s = new LineSplitter(1024)
    assert.deepStrictEqual(text(s.push(new Uint8Array(1025).fill(0x20))), ["<too long>"])
  })

  it("any chunking gives the same lines (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 20 }).map((l) => l.replaceAll("\n", "")), { maxLength: 10 }),
        fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 20 }),
        (lines, cuts) => {
          const all = bytes(lines.map((l) => `${l}\n`).join(""))
          const s = new LineSplitter(1 << 20)
          const out: Array<Frame> = []
          let at = 0
          for (let i = 0; at < all.length; i++) {
            const size = cuts[i % cuts.length]!
            out.push(...s.push(all.subarray(at, at + size)))
            at += size
          }
          out.push(...s.end())
          assert.deepStrictEqual(text(out), lines)
        }
      ),
      { numRuns: 300 }
    )
  })
})

describe("nesting depth", () => {
  it("counts brackets outside strings only", () => {
    assert.isFalse(nestsDeeperThan("[[[]]]", 3))
    assert.isTrue(nestsDeeperThan("[[[[]]]]", 3))
    assert.isTrue(nestsDeeperThan('{"a":{"b":[{}]}}', 3))
    assert.isFalse(nestsDeeperThan('["[[[[[[", "\\"[[[[["]', 1))
  })
})
