/**
 * The README's example is examples/readme.ts, shown verbatim (up to the import
 * path); this runs it, so the README's code is code that works.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestConsole } from "effect/testing"
import { main } from "../../examples/readme.ts"
import { asPublished, readRepoFile, shownBlock } from "../helpers/docBlock.ts"

it("README shows examples/readme.ts as it is", () => {
  const shown = shownBlock(readRepoFile("README.md"), "examples/readme.ts")
  assert.strictEqual(shown, asPublished(readRepoFile("examples/readme.ts")))
})

it.live("the README's example runs: cancelled job, committed transaction", () =>
  Effect.gen(function*() {
    const [cancelled, txn] = yield* main
    assert.deepStrictEqual(cancelled, { _tag: "Cancelled" })
    assert.deepStrictEqual(txn, { _tag: "Committed" })
  }).pipe(Effect.provide(TestConsole.layer))) // what it prints is kept, not shown in the test output

it.live("the README's example prints every event of count-1 before it goes on", () =>
  Effect.gen(function*() {
    yield* main
    const lines = yield* TestConsole.logLines
    const events = lines.flatMap((line) =>
      typeof line === "object" && line !== null && "_tag" in line && "id" in line && line.id === "count-1"
        ? [line._tag === "StatusChange" && "status" in line ? line.status : line._tag]
        : []
    )
    assert.deepStrictEqual(events, [
      "created",
      "running",
      "paused",
      "running",
      "aborting",
      "Cancelled",
      "concluded",
      "null"
    ])
    // The reader is done with count-1 before the transaction's members start.
    const last = lines.findLastIndex((line) => typeof line === "object" && line !== null && "status" in line)
    assert.isTrue(last < lines.indexOf("b: done, make the result visible"))
  }).pipe(Effect.provide(TestConsole.layer)))
