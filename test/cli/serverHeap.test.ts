/**
 * The server's V8 options are written out where its processes start: the
 * shebang of the command line, and `npm start`. They must be the options
 * `serverHeap.ts` names (`start.test.ts` checks the running server's own
 * command line).
 */
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import { serverNodeOptions } from "../../src/cli/serverHeap.ts"

const read = (path: string) => fs.readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

describe("the server's V8 options", () => {
  it("are in the command line's shebang", () => {
    const shebang = read("src/cli/main.ts").split("\n")[0]
    assert.strictEqual(shebang, `#!/usr/bin/env -S node ${serverNodeOptions.join(" ")}`)
  })

  it("are in npm start", () => {
    const start = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.start!
    assert.include(start, `exec node ${serverNodeOptions.join(" ")} src/cli/start.ts serve`)
  })

  it("bound the young generation", () => {
    assert.isNotEmpty(serverNodeOptions)
    assert.isTrue(serverNodeOptions.some((o) => /^--max-semi-space-size=\d+$/.test(o)))
  })
})
