/**
 * The page cannot import the server's modules (it is served on its own, with
 * no dependencies), so it keeps its own copies of two texts the server also
 * writes: the engine's refusal of a verb, and sizes in binary units as the
 * CLI prints them. These checks keep each copy equal to its original.
 */
import { describe, expect, it } from "vitest"
import { formatBytes } from "../../src/cli/progressBar.ts"
import { bytes } from "../../src/dashboard/format.ts"
import { verbNotAllowed } from "../../src/dashboard/verbs.ts"
import { VerbNotAllowed } from "../../src/JobError.ts"
import * as JobStatus from "../../src/JobStatus.ts"
import * as JobVerb from "../../src/JobVerb.ts"

describe("the dashboard's copies of server texts", () => {
  it("a refused verb reads as the engine's VerbNotAllowed, for every status and verb", () => {
    for (const status of JobStatus.all) {
      for (const verb of JobVerb.all) {
        expect(verbNotAllowed("j-1", status, verb)).toBe(new VerbNotAllowed({ id: "j-1", status, verb }).message)
      }
    }
  })

  it("sizes read as the CLI's progress bar writes them", () => {
    const sizes = [0, 1, 512, 1023, 1024, 1536, 10 * 1024, 99.9 * 1024, 100 * 1024, 1023 * 1024, 4 * 1024 ** 2, 1.5 * 1024 ** 3, 3 * 1024 ** 4]
    for (const size of sizes) expect(bytes(size)).toBe(formatBytes(size))
  })
})
