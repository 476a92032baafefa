/**
 * The package as a user gets it — SLOW (about 20 s: a build, `npm pack`,
 * `npm install`), and needs `npm` and the npm registry (or the npm cache that
 * `npm ci` filled: installs prefer it).
 *
 * The package is built and packed from a copy of the sources in a temporary
 * directory (the checkout's own dist/ is left alone), then installed into a
 * scratch project next to `effect` and `@effect/platform-node` at the versions
 * this project uses. Checked: a valid tree (`npm ls`) with one copy of each —
 * effect-jobs uses the program's `effect` (a peer dependency), not one of its
 * own; a program that imports `effect-jobs` and `effect-jobs/testing` runs a
 * job; the `effect-jobs` bin runs; the licence is in the package.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { node } from "../cli/harness.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs a command to its end. npm's own variables of an enclosing `npm test` are not passed on. */
const exec = (command: string, args: ReadonlyArray<string>, cwd: string): Effect.Effect<Ran> =>
  Effect.callback<Ran>((resume) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith("npm_")))
    const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    child.on("error", (error) => resume(Effect.succeed({ code: -1, stdout, stderr: `${stderr}${error.message}` })))
    child.on("close", (code) => resume(Effect.succeed({ code, stdout, stderr })))
    return Effect.sync(() => void child.kill("SIGKILL"))
  })

const ok = (ran: Ran, what: string) => assert.strictEqual(ran.code, 0, `${what}\nstdout: ${ran.stdout}\nstderr: ${ran.stderr}`)

const versionOf = (name: string): string =>
  (JSON.parse(fs.readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string }).version

const temporary = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(os.tmpdir(), "ej-package-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** What the scratch project runs: a job of the test kit's, through the package's two entry points. */
const program = `
import { Effect } from "effect"
import { Jobs } from "effect-jobs"
import * as Testing from "effect-jobs/testing"

const outcome = await Effect.runPromise(
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    const job = yield* jobs.run({ type: "test", id: "t1", params: { iterations: 3, sleepMillis: 1 } })
    const outcome = yield* jobs.awaitOutcome(job)
    return { outcome: outcome._tag, progress: job.progress }
  }).pipe(Effect.provide(Testing.layer))
)
console.log(JSON.stringify(outcome))
`

describe("the packed package", () => {
  it.live("installs beside the program's effect and @effect/platform-node, shares them, and runs (slow)", () =>
    Effect.gen(function*() {
      const dir = yield* temporary
      const stage = join(dir, "stage")
      const scratch = join(dir, "scratch")
      fs.mkdirSync(stage)
      fs.mkdirSync(scratch)

      // Build and pack a copy of the checkout.
      for (const file of ["package.json", "README.md", "LICENSE"]) fs.copyFileSync(join(root, file), join(stage, file))
      fs.cpSync(join(root, "src"), join(stage, "src"), { recursive: true })
      ok(yield* exec(join(root, "node_modules", ".bin", "tsc"), ["-p", join(root, "tsconfig.build.json"), "--outDir", join(stage, "dist")], root), "build")
      const packed = yield* exec("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], stage)
      ok(packed, "npm pack")
      const [tarball] = JSON.parse(packed.stdout) as ReadonlyArray<{ readonly filename: string; readonly files: ReadonlyArray<{ readonly path: string }> }>
      const files = tarball!.files.map((file) => file.path)
      assert.includeMembers(files, ["LICENSE", "README.md", "package.json", "dist/index.js", "dist/testing.js", "dist/cli/main.js"])
      assert.isEmpty(files.filter((file) => !/^(dist|src)\//.test(file) && !["LICENSE", "README.md", "package.json"].includes(file)))

      // @effect/platform-node accepts any @effect/platform-node-shared ^4.1, whose newest release wants the newest
      // effect: pinned to this project's, as its lockfile does (and as a program's lockfile would).
      const shared = "@effect/platform-node-shared"
      fs.writeFileSync(
        join(scratch, "package.json"),
        JSON.stringify({
          name: "scratch",
          version: "1.0.0",
          private: true,
          type: "module",
          dependencies: {
            "effect-jobs": `file:${join(dir, tarball!.filename)}`,
            effect: versionOf("effect"),
            "@effect/platform-node": versionOf("@effect/platform-node")
          },
          overrides: { [shared]: versionOf(shared) }
        })
      )
      ok(yield* exec("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], scratch), "npm install")

      const tree = yield* exec("npm", ["ls", "--all"], scratch)
      ok(tree, "npm ls: a valid tree")
      assert.notMatch(tree.stdout, /invalid|UNMET DEPENDENCY|extraneous/)
      // One copy of effect and of the platform: the program's.
      for (const name of ["effect", "@effect/platform-node"]) {
        const copies = yield* exec("npm", ["ls", name, "--all", "--parseable"], scratch)
        ok(copies, `npm ls ${name}`)
        assert.deepStrictEqual([...new Set(copies.stdout.trim().split("\n"))], [join(scratch, "node_modules", name)])
      }
      const manifest = JSON.parse(fs.readFileSync(join(scratch, "node_modules", "effect-jobs", "package.json"), "utf8")) as {
        readonly dependencies?: Record<string, string>
        readonly peerDependencies?: Record<string, string>
        readonly peerDependenciesMeta?: Record<string, { readonly optional?: boolean }>
      }
      assert.deepStrictEqual(Object.keys(manifest.peerDependencies ?? {}).sort(), ["@effect/platform-node", "@effect/sql-pg", "effect"])
      // The Postgres driver only for those who use a Postgres store: optional, so not installed here.
      assert.deepStrictEqual(manifest.peerDependenciesMeta, { "@effect/sql-pg": { optional: true } })
      assert.isFalse(fs.existsSync(join(scratch, "node_modules", "@effect", "sql-pg")))
      assert.deepStrictEqual(manifest.dependencies ?? {}, {})
      assert.isTrue(fs.existsSync(join(scratch, "node_modules", "effect-jobs", "LICENSE")))

      fs.writeFileSync(join(scratch, "main.js"), program)
      const ran = yield* exec(node, ["main.js"], scratch)
      ok(ran, "the program")
      assert.deepStrictEqual(JSON.parse(ran.stdout), { outcome: "Succeeded", progress: { current: 3, total: 3 } })

      const bin = yield* exec(node, [join(scratch, "node_modules", ".bin", "effect-jobs"), "--version"], scratch)
      ok(bin, "the bin")
      const { version } = JSON.parse(fs.readFileSync(join(root, "package.json"), "utf8")) as { version: string }
      assert.strictEqual(bin.stdout.trim(), `effect-jobs v${version}`)

      // A Postgres store without its driver: exit 1, saying what to install.
      const noDriver = yield* exec(
        node,
        [join(scratch, "node_modules", ".bin", "effect-jobs"), "serve", "--socket", join(scratch, "s.sock"), "--store", "postgres://jobs@127.0.0.1:1/jobs"],
        scratch
      )
      assert.strictEqual(noDriver.code, 1, noDriver.stderr)
      assert.include(noDriver.stderr, "npm install @effect/sql-pg")
    }).pipe(Effect.scoped), { timeout: 120_000 })
})
