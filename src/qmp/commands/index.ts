/**
 * Every QMP command of effect-jobs, by name.
 */
import type { Command } from "../command.ts"
import { blockJobCommands } from "./blockJob.ts"
import { createCommands } from "./create.ts"
import { jobCommands } from "./job.ts"
import { queryCommands } from "./query.ts"
import { sessionCommands } from "./session.ts"

export const allCommands: ReadonlyArray<Command> = [
  ...sessionCommands,
  ...queryCommands,
  ...jobCommands,
  ...blockJobCommands,
  ...createCommands
]

export const commandTable: ReadonlyMap<string, Command> = new Map(allCommands.map((c) => [c.name, c]))

export const commandNames: ReadonlyArray<string> = allCommands.map((c) => c.name)
