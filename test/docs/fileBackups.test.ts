/**
 * The README's file-jobs demo is examples/fileBackups.ts, shown verbatim (up
 * to the import path); this runs it on real files: all targets or none.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import { join } from "node:path"
import { backupAll, FileJobsLive } from "../../examples/fileBackups.ts"
import { asPublished, readRepoFile, shownBlock } from "../helpers/docBlock.ts"
import { bytes, entries, hashBytes, hashOf, tempDir, writeFile } from "../drivers/helpers.ts"


describe("README: a transaction of backups", () => {
  it("README shows examples/fileBackups.ts as it is", () => {
    const shown = shownBlock(readRepoFile("README.md"), "examples/fileBackups.ts")
    assert.strictEqual(shown, asPublished(readRepoFile("examples/fileBackups.ts")))
  })

  it.effect("three files: all three targets appear, identical to their sources", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const data = [1, 2, 3].map((i) => bytes(1000 * i, i))
      data.forEach((d, i) => writeFile(join(dir, `src${i}`), d))
      const pairs = [0, 1, 2].map((i) => [join(dir, `src${i}`), join(dir, `dst${i}`)] as const)
      assert.deepStrictEqual(yield* backupAll(pairs), { _tag: "Committed" })
      data.forEach((d, i) => assert.strictEqual(hashOf(join(dir, `dst${i}`)), hashBytes(d)))
    }).pipe(Effect.scoped, Effect.provide(FileJobsLive)))

  it.effect("one source missing: nothing starts and no target appears", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      writeFile(join(dir, "src0"), bytes(1000))
      writeFile(join(dir, "src1"), bytes(1000))
      const pairs = [0, 1, 2].map((i) => [join(dir, `src${i}`), join(dir, `dst${i}`)] as const)
      const error = yield* Effect.flip(backupAll(pairs))
      assert.strictEqual(error.message, `Source file '${join(dir, "src2")}' does not exist`)
      assert.deepStrictEqual(entries(dir), ["src0", "src1"])
      assert.isFalse(fs.existsSync(join(dir, "dst0")))
    }).pipe(Effect.scoped, Effect.provide(FileJobsLive)))
})
