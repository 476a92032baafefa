/**
 * Who owns the files the file drivers leave beside their targets, and how to
 * tell a stale one from a live one.
 *
 * - A temporary copy is named `.<target name>.effect-jobs-<pid>-<token>.tmp`
 *   and lives in the target's directory (so the final rename never crosses file
 *   systems).
 * - A commit journal is named `.effect-jobs-<pid>-<token>.commit-journal` and
 *   has a copy in every directory that holds a target of its transaction.
 *
 * Both carry the id of the process that wrote them. A file is *live* while its
 * process runs and — for this process — while a job or a commit of this process
 * still uses it (kept in the registries below, process-wide like the file
 * system itself); anything else is stale: left behind by a process that was
 * killed, or by a commit that failed. Limits: a process id reused by an
 * unrelated process keeps a stale file alive until that process ends, and a
 * process on another machine sharing the directory is not recognised.
 * @internal
 */

/** Temporary copies in use by jobs of this process (absolute paths). */
export const liveTemps = new Set<string>()

/** Commit journals of this process whose transaction is still committing (tokens). */
export const liveJournals = new Set<string>()

/** Targets being written by jobs of this process: absolute path → job label. */
export const liveTargets = new Map<string, string>()

let counter = 0

/** A token unique within this process, and unlikely to repeat across processes. */
export const freshToken = (): string => {
  counter = (counter + 1) % 1_679_616
  return `${counter.toString(36)}${Math.floor(Math.random() * 2_176_782_336).toString(36)}`
}

const tempPattern = /^\.(.+)\.effect-jobs-(\d+)-([0-9a-z]+)\.tmp$/
const journalPattern = /^\.effect-jobs-(\d+)-([0-9a-z]+)\.commit-journal(\.tmp)?$/

export const tempName = (targetName: string, token: string): string =>
  `.${targetName}.effect-jobs-${process.pid}-${token}.tmp`

export const journalName = (token: string): string => `.effect-jobs-${process.pid}-${token}.commit-journal`

/** The target name and owner of a temporary copy's file name, if it is one. */
export const parseTempName = (name: string): { readonly targetName: string; readonly pid: number } | undefined => {
  const match = tempPattern.exec(name)
  return match === null ? undefined : { targetName: match[1]!, pid: Number(match[2]) }
}

/** The owner and token of a commit journal's file name (or of its half-written `.tmp`), if it is one. */
export const parseJournalName = (
  name: string
): { readonly pid: number; readonly token: string; readonly partial: boolean } | undefined => {
  const match = journalPattern.exec(name)
  return match === null ? undefined : { pid: Number(match[1]), token: match[2]!, partial: match[3] !== undefined }
}

/** Whether a process with this id runs (one we may not signal counts as running). */
export const processAlive = (pid: number): boolean => {
  if (pid === process.pid) return true
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: unknown }).code === "EPERM"
  }
}

/** A temporary copy nobody uses any more. */
export const staleTemp = (pid: number, path: string): boolean =>
  pid === process.pid ? !liveTemps.has(path) : !processAlive(pid)

/** A commit journal nobody is carrying out any more. */
export const staleJournal = (pid: number, token: string): boolean =>
  pid === process.pid ? !liveJournals.has(token) : !processAlive(pid)
