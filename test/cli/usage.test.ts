/**
 * The CLI's usage: `--help` on every command (exit 0), `--version`, and bad
 * arguments — each told on stderr, with where to find the usage, and exit
 * code 2.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { run } from "./harness.ts"

const version = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version

describe("effect-jobs usage", () => {
  it.live("--help on every command: its usage on stdout, exit code 0; --version", () =>
    Effect.gen(function*() {
      const commands = [[], ["serve"], ["backup"], ["mirror"], ["qmp"], ["watch"]]
      const [versionResult, ...results] = yield* Effect.forEach(
        [["--version"], ...commands.map((command) => [...command, "--help"])],
        (args) => run(args),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(versionResult!.code, 0)
      assert.include(versionResult!.stdout, version)
      for (const [i, result] of results.entries()) {
        const name = ["effect-jobs", ...commands[i]!].join(" ")
        assert.strictEqual(result.code, 0, `${name} --help: ${result.stderr}`)
        assert.include(result.stdout, "USAGE")
        assert.include(result.stdout, name)
        assert.strictEqual(result.stderr, "")
      }
      const [root, serve, backup, , qmp, watch] = results.map((r) => r.stdout)
      for (const sub of ["serve", "backup", "mirror", "qmp", "watch"]) assert.include(root, sub)
      for (const flag of ["--socket", "--tcp", "--journal-dir", "--allow-remote"]) assert.include(serve, flag)
      for (const word of ["SRC", "DST", "--speed", "--overwrite"]) assert.include(backup, word)
      for (const word of ["COMMAND", "JSON-ARGS", "--socket", "--tcp"]) assert.include(qmp, word)
      for (const word of ["--socket", "--tcp"]) assert.include(watch, word)
    }))

  it.live("bad arguments: a clear message on stderr and exit code 2", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string, string]> = [
        [["backup", "only-one"], "Missing required argument: DST", "effect-jobs backup --help"],
        [["backup", "--speed", "fast", "a", "b"], `Invalid value for flag --speed: "fast"`, "effect-jobs backup --help"],
        [["backup", "--speed", "-5", "a", "b"], "a number of bytes per second, 0 or more", "effect-jobs backup --help"],
        [["mirror", "--colour", "a", "b"], "Unrecognized flag: --colour", "effect-jobs mirror --help"],
        [["frobnicate"], `Unknown subcommand "frobnicate"`, "effect-jobs --help"],
        [["serve", "--tcp", "localhost:http"], "HOST:PORT with a port number, not 'http'", "effect-jobs serve --help"],
        [["qmp", "--socket", "a.sock", "--tcp", "127.0.0.1:1", "query-jobs"], "--socket and --tcp cannot be used together", "effect-jobs qmp --help"],
        [["qmp", "job-pause", "[1]"], "a JSON object", "effect-jobs qmp --help"],
        [["qmp", "job-pause", "{id:"], "not valid JSON", "effect-jobs qmp --help"],
        [["watch", "--tcp", "127.0.0.1:99999"], "a port from 0 to 65535, not 99999", "effect-jobs watch --help"]
      ]
      const results = yield* Effect.forEach(cases, ([args]) => run(args), { concurrency: "unbounded" })
      for (const [i, result] of results.entries()) {
        const [args, message, help] = cases[i]!
        const what = `effect-jobs ${args.join(" ")}`
        assert.strictEqual(result.code, 2, `${what}: exit code ${result.code}, stderr ${result.stderr}`)
        assert.include(result.stderr, message, what)
        assert.include(result.stderr, `Run 'npx ${help}' for usage.`, what)
        assert.strictEqual(result.stdout, "", what)
      }
    }))

  it("the README runs the bin as `npx effect-jobs`: a bare `effect-jobs` is no command in a checkout", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8")
    const commands = readme.split("\n").filter((line) => /^\$ .*effect-jobs /.test(line))
    assert.isAbove(commands.length, 10)
    assert.deepStrictEqual(commands.filter((line) => !line.startsWith("$ npx effect-jobs ")), [])
  })
})
