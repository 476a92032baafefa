/**
 * `npm test` starts by checking that `node` is Node 24 or later: the Node 24 of
 * the dev dependencies comes from an install script (the `node` package's
 * preinstall), and an npm that blocks install scripts would leave the
 * machine's own, older node in its place. The check is run as `npm test` runs
 * it (`sh -c`), once with this node and once with a node that says it is 20.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { node } from "../cli/harness.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** The test script's first step: everything before the type check. */
const guard = (): string => {
  const { scripts } = JSON.parse(fs.readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }
  const test = scripts.test!
  const rest = test.indexOf(" && npm run typecheck")
  assert.isAbove(rest, 0, test)
  return test.slice(0, rest)
}

const sh = (script: string, env: Record<string, string>) =>
  Effect.callback<{ readonly code: number | null; readonly stderr: string }>((resume) => {
    // `node` is this project's Node 24, first on the PATH, as under npm.
    const child = spawn("sh", ["-c", script], {
      env: { ...process.env, PATH: `${dirname(node)}:${process.env.PATH ?? ""}`, ...env },
      stdio: ["ignore", "ignore", "pipe"]
    })
    let stderr = ""
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("close", (code) => resume(Effect.succeed({ code, stderr })))
  })

/** Node, told to report another version (as an older node on the PATH would). */
const pretendVersion = (version: string) => {
  const code = `Object.defineProperty(process, "versions", { value: { ...process.versions, node: "${version}" } })`
  return { NODE_OPTIONS: `--import=data:text/javascript;base64,${Buffer.from(code).toString("base64")}` }
}

describe("npm test's Node check", () => {
  it.live("passes on Node 24; on an older node it fails and says what to run", () =>
    Effect.gen(function*() {
      const script = guard()
      const current = yield* sh(script, {})
      assert.deepStrictEqual(current, { code: 0, stderr: "" })
      const old = yield* sh(script, pretendVersion("20.20.2"))
      assert.strictEqual(old.code, 1)
      assert.match(old.stderr, /^npm test needs Node 24 or later, and node is 20\.20\.2 \(/)
      assert.include(old.stderr, "Run: npm install-scripts approve node && npm rebuild node")
    }))
})
