/**
 * A `<!-- source: … -->` label tells a reader which file of the repository a
 * code block is; these keep every label in README.md and docs/*.md pointing at
 * a file that exists, and its block showing that file (or region) as it is.
 */
import { describe, expect, it } from "vitest"
import { docs, labelledSource, repoFileExists, shownBlock, sourceLabels } from "../helpers/docBlock.ts"

const labelled = docs().flatMap((doc) => sourceLabels(doc.text).map((label) => ({ doc, label })))

describe("source labels of the docs", () => {
  it("are there to check", () => {
    const labels = labelled.map(({ label }) => label)
    expect(labels).toContain("examples/readme.ts")
    expect(labels).toContain("test/docs/writingADriver.test.ts#doc")
  })

  it("name files that exist", () => {
    const missing = labelled.filter(({ label }) => !repoFileExists(label.split("#")[0]!))
    expect(missing.map(({ doc, label }) => `${doc.path}: ${label}`)).toEqual([])
  })

  it.each(labelled.map(({ doc, label }) => [doc.path, label, doc.text] as const))(
    "%s shows %s as it is",
    (_path, label, text) => {
      expect(shownBlock(text, label)).toBe(labelledSource(label))
    }
  )
})
