/**
 * One timer for every connection's negotiation: deadlines fire in order, at
 * their time on the Effect clock, and a cancelled one never fires.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import * as Deadlines from "../../src/qmp/deadlines.ts"

describe("Deadlines", () => {
  it.effect("each fires once its length has passed since it was added, in order", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make("10 seconds")
      const fired: Array<string> = []
      deadlines.add(() => fired.push("a"))
      yield* TestClock.adjust("4 seconds")
      deadlines.add(() => fired.push("b"))
      yield* TestClock.adjust("5999 millis")
      assert.deepStrictEqual(fired, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(fired, ["a"])
      yield* TestClock.adjust("3999 millis")
      assert.deepStrictEqual(fired, ["a"])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(fired, ["a", "b"])
    }).pipe(Effect.scoped))

  it.effect("a cancelled deadline never fires; the others still do", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make("1 second")
      const fired: Array<number> = []
      const added = Array.from({ length: 5 }, (_, i) => deadlines.add(() => fired.push(i)))
      added[0]!.cancel()
      added[3]!.cancel()
      yield* TestClock.adjust("1 second")
      assert.deepStrictEqual(fired, [1, 2, 4])
      added[1]!.cancel() // after it fired: nothing happens
      yield* TestClock.adjust("10 seconds")
      assert.deepStrictEqual(fired, [1, 2, 4])
    }).pipe(Effect.scoped))

  it.effect("a deadline added after the queue ran empty wakes the timer", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make("2 seconds")
      const fired: Array<string> = []
      deadlines.add(() => fired.push("first"))
      yield* TestClock.adjust("2 seconds")
      yield* TestClock.adjust("1 hour") // idle, nothing queued
      deadlines.add(() => fired.push("second"))
      yield* TestClock.adjust("1999 millis")
      assert.deepStrictEqual(fired, ["first"])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(fired, ["first", "second"])
    }).pipe(Effect.scoped))

  it.effect("many deadlines: each fires exactly once", () =>
    Effect.gen(function*() {
      const deadlines = yield* Deadlines.make("1 second")
      const counts = new Array<number>(5000).fill(0)
      for (let i = 0; i < counts.length; i++) {
        deadlines.add(() => counts[i]!++)
        if (i % 1000 === 999) yield* TestClock.adjust("100 millis")
      }
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(counts.every((n) => n === 1))
    }).pipe(Effect.scoped))
})
