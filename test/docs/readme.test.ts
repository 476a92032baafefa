/**
 * The README's example is examples/readme.ts, shown verbatim (up to the import
 * path); this runs it, so the README's code is code that works.
 */
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { main } from "../../examples/readme.ts"

const read = (path: string) => readFileSync(new URL(path, import.meta.url), "utf8")

it("README shows examples/readme.ts as it is", () => {
  const readme = read("../../README.md")
  const marker = readme.indexOf("<!-- source: examples/readme.ts -->")
  assert.isAtLeast(marker, 0)
  const open = readme.indexOf("```ts\n", marker) + 6
  const shown = readme.slice(open, readme.indexOf("\n```", open) + 1)
  assert.strictEqual(shown, read("../../examples/readme.ts").replaceAll("\"../src/index.ts\"", "\"effect-jobs\""))
})

it.live("the README's example runs: cancelled job, committed transaction", () =>
  Effect.gen(function*() {
    const [cancelled, txn] = yield* main
    assert.deepStrictEqual(cancelled, { _tag: "Cancelled" })
    assert.deepStrictEqual(txn, { _tag: "Committed" })
  }))
