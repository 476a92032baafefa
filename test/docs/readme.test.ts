/**
 * The README's example is examples/readme.ts, shown verbatim (up to the import
 * path); this runs it, so the README's code is code that works.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
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
  }))
