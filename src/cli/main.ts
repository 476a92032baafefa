#!/usr/bin/env -S node --max-semi-space-size=16
/**
 * `effect-jobs`, the package's command line:
 *
 * - `serve`  — the QMP server with the backup and mirror job types;
 * - `backup`, `mirror` — one file job in this process, with a progress bar;
 * - `qmp`    — one QMP command to a server, its reply as JSON;
 * - `watch`  — a server's jobs, live.
 *
 * `--help` on every command; `--version`. Bad arguments print what is wrong
 * (and where to find the usage) on stderr and exit with code 2; see exit.ts
 * for the other codes.
 *
 * SIGINT, SIGTERM and SIGHUP (the terminal went away) all stop a command the
 * same way: its fiber is interrupted, so a server cancels its jobs and removes
 * its socket, and a file job leaves its target as it was.
 */
import { NodeServices } from "@effect/platform-node"
import { Effect, Layer, Runtime } from "effect"
import { Argument, CliConfig, CliOutput, Command, Flag, GlobalFlag } from "effect/cli"
import { createRequire } from "node:module"
import { report, teardown } from "./exit.ts"
import { qmpCommand } from "./qmpCommand.ts"
import { runJob } from "./runJob.ts"
import { serveCommand } from "./serve.ts"
import { watchCommand } from "./watch.ts"

const packageVersion = (): string => {
  // src/cli/ and dist/cli/ are both two levels below the package root.
  const pkg = createRequire(import.meta.url)("../../package.json") as { readonly version?: unknown }
  return typeof pkg.version === "string" ? pkg.version : "0.0.0"
}

const fileArguments = {
  source: Argument.String("SRC").pipe(Argument.withDescription("The file to copy")),
  target: Argument.String("DST").pipe(Argument.withDescription("Where the copy goes (its directory must exist)"))
}

const speedFlag = Flag.Int("speed").pipe(
  Flag.withMetavar("BYTES"),
  Flag.withDescription("Rate limit in bytes per second (0: unlimited)"),
  Flag.filter((speed) => speed >= 0, () => "a number of bytes per second, 0 or more"),
  Flag.optional
)

const overwriteFlag = Flag.Boolean("overwrite").pipe(
  Flag.withDescription("Replace DST if it exists"),
  Flag.withDefault(false)
)

const backupCommand = Command.make("backup", {
  ...fileArguments,
  speed: speedFlag,
  overwrite: overwriteFlag
}, (options) => runJob({ type: "backup", ...options })).pipe(
  Command.withDescription(
    "Copy SRC to DST with a progress bar. DST appears complete or not at all; Ctrl-C cancels and leaves it as it was."
  ),
  Command.withExamples([
    { command: "effect-jobs backup disk.img disk.bak", description: "Copy at full speed" },
    { command: "effect-jobs backup --speed 10485760 --overwrite disk.img disk.bak", description: "At 10 MiB/s, replacing disk.bak" }
  ])
)

const mirrorCommand = Command.make("mirror", {
  ...fileArguments,
  speed: speedFlag,
  overwrite: overwriteFlag
}, (options) => runJob({ type: "mirror", ...options })).pipe(
  Command.withDescription(
    "Copy SRC to DST and keep the copy in sync with SRC. Once READY, Enter (a line on stdin), or the end of stdin, " +
      "completes it: DST then equals SRC. Ctrl-C cancels and leaves DST as it was."
  ),
  Command.withExamples([
    { command: "effect-jobs mirror live.db live.db.copy", description: "Mirror, then press Enter to switch the copy in" },
    { command: "echo | effect-jobs mirror live.db live.db.copy", description: "Complete as soon as READY" }
  ])
)

const root = Command.make("effect-jobs").pipe(
  Command.withDescription(
    "Long-running file jobs with QEMU's job semantics: a QMP server, one-off jobs with a progress bar, a QMP client and a live view."
  ),
  Command.withSubcommands([serveCommand, backupCommand, mirrorCommand, qmpCommand, watchCommand])
)

/** Usage errors: what is wrong and where the help is, on stderr (effect/cli would print the whole help to stdout). */
const presenter: CliOutput.Presenter = {
  present: (event) => {
    if (event._tag !== "InvalidInvocation") return CliOutput.defaultPresenter.present(event)
    return Effect.sync(() => {
      const messages = event.errors.map((error) => `effect-jobs: ${error.message}`).join("\n")
      // As the banner and the README: `npx` finds the bin in a checkout too, where a bare name is not on the PATH.
      process.stderr.write(`${messages}\nRun 'npx ${event.commandPath.join(" ")} --help' for usage.\n`)
    })
  }
}

const cliLayer = Layer.mergeAll(
  NodeServices.layer,
  CliConfig.layer({ builtIns: [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.LogLevel] }),
  CliOutput.layerPresenter(presenter)
)

const program = Command.run(root, { version: packageVersion() }).pipe(
  Effect.tapCause(report),
  Effect.provide(cliLayer)
)

const stopSignals = ["SIGINT", "SIGTERM", "SIGHUP"] as const

/** `NodeRuntime.runMain`, stopped by SIGHUP too (Node's default for it would end the process on the spot). */
const runMain = Runtime.makeRunMain(({ fiber, teardown }) => {
  let signalled = false
  const stop = () => {
    signalled = true
    fiber.interruptUnsafe(fiber.id)
  }
  for (const signal of stopSignals) process.on(signal, stop)
  fiber.addObserver((exit) => {
    for (const signal of stopSignals) process.off(signal, stop)
    // After a signal, or with a failure, exit now; after a plain success, when nothing is left to run.
    teardown(exit, (code) => {
      if (signalled || code !== 0) process.exit(code)
    })
  })
})

runMain(program, { disableErrorReporting: true, teardown })
