/**
 * What an action is in QMP: the command a QMP client sends, and the
 * `npx effect-jobs qmp …` line that sends it, with the flags that reach this
 * server's QMP server (from `GET /api/server`).
 */

export interface QmpCommand {
  readonly execute: string
  readonly arguments: Readonly<Record<string, unknown>>
}

/** The command as a QMP client sends it. */
export const qmpText = (command: QmpCommand): string => JSON.stringify(command)

/** A word for a POSIX shell: as it is when it is safe, else in single quotes. */
export const shellWord = (word: string): string =>
  /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`

/** `npx effect-jobs qmp [FLAGS] COMMAND 'JSON-ARGS'`. */
export const cliLine = (command: QmpCommand, flags: ReadonlyArray<string> | null): string =>
  ["npx", "effect-jobs", "qmp", ...(flags ?? []), command.execute, JSON.stringify(command.arguments)]
    .map(shellWord)
    .join(" ")
