/**
 * Who owns the files the file drivers leave beside their targets, and how to
 * tell a stale one from a live one.
 *
 * - A temporary copy is named `.<target name>.effect-jobs-<pid>-<token>.tmp`
 *   and lives in the target's directory (so the final rename never crosses file
 *   systems).
 * - A commit journal is named `.effect-jobs-<pid>-<token>.commit-journal` and
 *   has a file in every directory that holds a target of its transaction
 *   (see `journalFormat.ts`).
 *
 * Both carry the id of the process that wrote them. A file is *live* while its
 * process runs and — for this process — while a job or a commit of this process
 * still uses it (kept in the registries below, process-wide like the file
 * system itself); anything else is stale: left behind by a process that was
 * killed, or by a commit that failed. Limits: a process id reused by an
 * unrelated process keeps a stale file alive until that process ends, and a
 * process on another machine sharing the directory is not recognised.
 *
 * A name is only a claim: anyone who may write in a directory can create a
 * file with such a name. Before acting on a stale file, recovery checks that
 * it is really one of this server's (`notOurs`).
 * @internal
 */
import { type FileSystem, Option } from "effect"

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

const tokenPattern = /^[0-9a-z]+$/

/** Whether `name` is the name a process `pid` gives a temporary copy of `targetName` (any token). */
export const isTempNameOf = (name: string, targetName: string, pid: number): boolean => {
  const prefix = `.${targetName}.effect-jobs-${pid}-`
  if (!name.startsWith(prefix) || !name.endsWith(".tmp")) return false
  return tokenPattern.test(name.slice(prefix.length, -".tmp".length))
}

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
  // A resumed backup's copy bears its dead writer's pid, and is live all the same.
  !liveTemps.has(path) && (pid === process.pid || !processAlive(pid))

/** A commit journal nobody is carrying out any more. */
export const staleJournal = (pid: number, token: string): boolean =>
  pid === process.pid ? !liveJournals.has(token) : !processAlive(pid)

/** The user this process runs as (`undefined` where there are no user ids). */
export const ownUid = (): number | undefined => process.getuid?.()

/**
 * Why a file found by `lstat` is not one this server may act on as its own
 * commit journal, or `undefined` if it may: it must be a regular file (not a
 * symbolic link), owned by this process's user, writable by nobody else, with
 * no other name (a hard link would let another directory's journal appear
 * here).
 */
export const notOurs = (info: FileSystem.File.Info): string | undefined => {
  const owner = notOwned(info)
  if (owner !== undefined) return owner
  if ((info.mode & 0o022) !== 0) return `is writable by group or others (mode ${(info.mode & 0o777).toString(8)})`
  if (Option.getOrElse(info.nlink, () => 1n) !== 1n) return "has more than one name (hard links)"
  return undefined
}

/**
 * The weaker test for a temporary copy (whose permission bits are the
 * source's, and which has two names between the link and the unlink of a
 * no-replace commit): a regular file owned by this process's user.
 */
export const notOwned = (info: FileSystem.File.Info): string | undefined => {
  if (info.type === "SymbolicLink") return "is a symbolic link"
  if (info.type !== "File") return "is not a regular file"
  const uid = ownUid()
  if (uid === undefined) return undefined
  const owner = Option.getOrUndefined(info.uid)
  if (owner !== uid) return `is owned by uid ${owner ?? "unknown"}, not by this process's (${uid})`
  return undefined
}
