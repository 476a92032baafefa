/**
 * Recovery of commits a dead process left half done, and removal of its
 * temporary copies: what every new file job does for its target's directory,
 * and a server at start for the directories it serves.
 *
 * A journal names files to rename and remove, and anyone who may write in a
 * target's directory can put a file there under a journal's name. So recovery
 * acts on a journal only if
 *
 * 1. the file is this server's own (`notOurs`): a regular file, not a symbolic
 *    link, owned by this process's user, writable by nobody else, with one name;
 * 2. the file it reads is the one it inspected: opened without following a
 *    symbolic link, then compared by device and inode;
 * 3. its content decodes and passes `checkJournal` (names, pids, tokens);
 * 4. every directory its renames are in is its own directory.
 *
 * It then acts only on entries of that directory — names joined to the
 * directory it listed, never the paths as written — and on temporary copies
 * owned by this process's user. A journal that fails is reported once per
 * path and process (a warning) and never blocks anything:
 *
 * - failing 1 or 2, it is left untouched: it may be someone else's file, and
 *   making this server touch it is what a planted file is for;
 * - failing 3 or 4, or when its renames cannot all be finished (a target that
 *   became a directory, an I/O error), it is set aside as `<name>.rejected`.
 *
 * Which renames to finish: a record (see `journalFormat.ts`) means the
 * transaction committed — every copy still there goes into place. An intent
 * follows its record: if the record exists (or was set aside) the same; if
 * not, the writer died before committing (nothing was renamed) or after
 * everything was done (the record goes last), and the intent is just removed.
 * The record itself is removed only once no intent is left, so that an intent
 * recovered later still finds it.
 * @internal
 */
import { Effect, type FileSystem, Option } from "effect"
import { CommitJournalError, type FileIoError } from "./errors.ts"
import {
  type Files,
  io,
  isNotFound,
  lstatIfPresent,
  readAt,
  removeIfPresent,
  sameFile,
  syncDirectory
} from "./fileOps.ts"
import { checkJournal, decodeJournal, type JournalPlace, type LocalRename } from "./journalFormat.ts"
import { notOurs, notOwned, parseJournalName, parseTempName, staleJournal, staleTemp } from "./ownership.ts"

/**
 * What a recovery did: journals handled, targets put in place by finishing a
 * commit, and stale temporary copies removed.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecoveryReport {
  /** Journals of dead writers whose commit was finished or dropped. */
  readonly journals: ReadonlyArray<string>
  /** Targets put in place by finishing an interrupted commit. */
  readonly renamed: ReadonlyArray<string>
  /** Stale temporary copies removed. */
  readonly removedTemps: ReadonlyArray<string>
}

/** A journal's content is never this large: a bigger file is not read. */
const maxJournalBytes = 1024 * 1024

/** Journals already reported by this process (one warning per path). */
const reported = new Set<string>()

/** Journals a recovery of this process is working on (two jobs may start in one directory at once). */
const inProgress = new Set<string>()

const reportOnce = (path: string, detail: string, action: string): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (reported.has(path)) return Effect.void
    reported.add(path)
    return Effect.logWarning(`effect-jobs: ${new CommitJournalError({ path, detail }).message}; ${action}`)
  })

const leaveUntouched = (path: string, detail: string) => reportOnce(path, detail, "left untouched")

const setAside = (files: Files, path: string, detail: string): Effect.Effect<void> => {
  const rejected = `${path}.rejected`
  return Effect.matchEffect(io("rename", path, files.fs.rename(path, rejected)), {
    onSuccess: () => reportOnce(path, detail, `set aside as '${rejected}'`),
    onFailure: (error) => reportOnce(path, `${detail}; and it cannot be set aside: ${error.message}`, "left in place")
  })
}

/** The journal's text, if the file opened is still the one `seen` describes. */
const readSame = (
  files: Files,
  path: string,
  seen: FileSystem.File.Info
): Effect.Effect<
  { readonly text: string } | { readonly untouched: string } | { readonly rejected: string } | { readonly gone: true }
> =>
  Effect.scoped(Effect.gen(function*() {
    const opened = yield* Effect.result(files.fs.open(path, { flag: "r", noFollow: true }))
    if (opened._tag === "Failure") {
      // Removed meanwhile (another recovery finished it), or not openable as a plain file.
      if (isNotFound(opened.failure)) return { gone: true } as const
      return { untouched: `it cannot be opened: ${opened.failure.message}` }
    }
    const file = opened.success
    const info = yield* Effect.result(file.stat)
    if (info._tag === "Failure" || !sameFile(info.success, seen) || notOurs(info.success) !== undefined) {
      return { untouched: "it was replaced while being read" }
    }
    const size = Number(info.success.size)
    if (size > maxJournalBytes) return { rejected: `it is larger than ${maxJournalBytes} bytes` }
    const buffer = new Uint8Array(size)
    const got = yield* Effect.result(readAt(file, buffer, 0, size))
    if (got._tag === "Failure") return { rejected: `it cannot be read: ${got.failure.message}` }
    return { text: new TextDecoder().decode(buffer.subarray(0, got.success)) }
  }))

/** Whether `directory` (as a journal spells it) is the directory `own`: the same path, or the same directory. */
const isOwnDirectory = (files: Files, directory: string, own: string): Effect.Effect<boolean> =>
  directory === own
    ? Effect.succeed(true)
    : Effect.map(
      Effect.result(Effect.all([files.fs.stat(directory), files.fs.stat(own)])),
      (stats) => stats._tag === "Success" && stats.success[0].type === "Directory" && sameFile(stats.success[0], stats.success[1])
    )

/** Whether a file of this process's user stands at `path` (the other journal files of a transaction). */
const ownFileAt = (files: Files, path: string): Effect.Effect<boolean, FileIoError> =>
  Effect.map(lstatIfPresent(files, path), (info) => Option.isSome(info) && notOwned(info.value) === undefined)

/**
 * Puts one temporary copy of a committed transaction in place, as its commit
 * would have: a rename, or (no replace) a link and the removal of the copy's
 * name. Returns whether it did anything; fails with why it cannot.
 */
const finishRename = (
  files: Files,
  directory: string,
  rename: LocalRename
): Effect.Effect<boolean, string> =>
  Effect.gen(function*() {
    const temp = files.path.join(directory, rename.tempName)
    const target = files.path.join(directory, rename.targetName)
    const tempInfo = yield* lstatIfPresent(files, temp)
    // Already renamed (or, after a link, already unlinked).
    if (Option.isNone(tempInfo)) return false
    const notMine = notOwned(tempInfo.value)
    if (notMine !== undefined) return yield* Effect.fail(`its temporary copy '${temp}' ${notMine}`)
    const targetInfo = yield* lstatIfPresent(files, target)
    const found = Option.getOrUndefined(targetInfo)
    if (found !== undefined && found.type !== "File" && found.type !== "SymbolicLink") {
      return yield* Effect.fail(`its target '${target}' exists and is not a regular file`)
    }
    if (rename.replace) {
      yield* io("rename", temp, files.fs.rename(temp, target))
      return true
    }
    if (found === undefined) {
      yield* io("link", temp, files.fs.link(temp, target))
    } else if (!sameFile(found, tempInfo.value)) {
      // Created by someone else after the commit's checks: never replaced.
      return yield* Effect.fail(`its target '${target}' already exists and may not be replaced`)
    }
    // Linked (now or before the crash): the copy's own name goes.
    yield* io("remove", temp, files.fs.remove(temp))
    return true
  }).pipe(Effect.mapError((error) => (typeof error === "string" ? error : error.message)))

interface Recovered {
  readonly handled: boolean
  readonly renamed: ReadonlyArray<string>
}

const nothing: Recovered = { handled: false, renamed: [] }

/** Finishes or drops one journal of a dead writer, if it passes every check (see the module's comment). */
const recoverJournal = (files: Files, place: JournalPlace, path: string): Effect.Effect<Recovered, FileIoError> =>
  Effect.gen(function*() {
    const seen = yield* Effect.result(lstatIfPresent(files, path))
    if (seen._tag === "Failure") {
      yield* leaveUntouched(path, seen.failure.message)
      return nothing
    }
    // Gone: another recovery finished it.
    if (Option.isNone(seen.success)) return nothing
    const foreign = notOurs(seen.success.value)
    if (foreign !== undefined) {
      yield* leaveUntouched(path, `it ${foreign}`)
      return nothing
    }
    const read = yield* readSame(files, path, seen.success.value)
    if ("gone" in read) return nothing
    if ("untouched" in read) {
      yield* leaveUntouched(path, read.untouched)
      return nothing
    }
    if ("rejected" in read) {
      yield* setAside(files, path, read.rejected)
      return nothing
    }
    const decoded = yield* Effect.result(decodeJournal(read.text))
    if (decoded._tag === "Failure") {
      yield* setAside(files, path, `it is not a valid commit journal: ${decoded.failure.message}`)
      return nothing
    }
    const journal = checkJournal(files.path, place, decoded.success)
    if ("reason" in journal) {
      yield* setAside(files, path, journal.reason)
      return nothing
    }
    for (const spelled of journal.spelledDirectories) {
      if (!(yield* isOwnDirectory(files, spelled, place.directory))) {
        yield* setAside(files, path, `it names a path in another directory ('${spelled}')`)
        return nothing
      }
    }

    let committed = true
    if (journal.role === "intent") {
      const record = journal.others[0]!
      const status = yield* Effect.result(
        Effect.map(Effect.all([ownFileAt(files, record), ownFileAt(files, `${record}.rejected`)]), ([a, b]) => a || b)
      )
      if (status._tag === "Failure") {
        yield* leaveUntouched(path, `cannot tell whether its transaction committed: ${status.failure.message}`)
        return nothing
      }
      committed = status.success
    }

    const renamed: Array<string> = []
    const failures: Array<string> = []
    if (committed) {
      for (const rename of journal.renames) {
        const done = yield* Effect.result(finishRename(files, place.directory, rename))
        if (done._tag === "Failure") failures.push(done.failure)
        else if (done.success) renamed.push(files.path.join(place.directory, rename.targetName))
      }
      if (renamed.length > 0) {
        const synced = yield* Effect.result(syncDirectory(files, place.directory))
        if (synced._tag === "Failure") failures.push(synced.failure.message)
      }
    }
    if (failures.length > 0) {
      yield* setAside(files, path, `its commit cannot be finished: ${failures.join("; ")}`)
      return { handled: true, renamed }
    }
    if (journal.role === "record") {
      // Intents not yet recovered still need the record to find their transaction committed.
      for (const intent of journal.others) {
        const present = yield* Effect.result(lstatIfPresent(files, intent))
        if (present._tag === "Failure" || Option.isSome(present.success)) return { handled: renamed.length > 0, renamed }
      }
    }
    yield* removeJournalFile(files, path)
    return { handled: true, renamed }
  })

/** Removes a journal file recovery is done with; one that cannot be removed is reported, not fatal. */
const removeJournalFile = (files: Files, path: string): Effect.Effect<void> =>
  Effect.catch(
    Effect.andThen(removeIfPresent(files, path), syncDirectory(files, files.path.dirname(path))),
    (error) => reportOnce(path, `it cannot be removed: ${error.message}`, "left in place")
  )

const listDirectory = (files: Files, directory: string) =>
  io("list directory", directory, files.fs.readDirectory(directory))

/** @internal Recovers the journals of dead writers in `directory`; fails only if it cannot be listed. */
export const recoverJournalsWith = (
  files: Files,
  directory: string
): Effect.Effect<{ readonly journals: Array<string>; readonly renamed: Array<string> }, FileIoError> =>
  Effect.gen(function*() {
    const own = files.path.resolve(directory)
    const journals: Array<string> = []
    const renamed: Array<string> = []
    for (const name of yield* listDirectory(files, own)) {
      const parsed = parseJournalName(name)
      if (parsed === undefined || !staleJournal(parsed.pid, parsed.token)) continue
      const path = files.path.join(own, name)
      if (inProgress.has(path)) continue
      inProgress.add(path)
      const recovered = yield* Effect.ensuring(
        Effect.gen(function*() {
          if (!parsed.partial) return yield* recoverJournal(files, { directory: own, name, ...parsed }, path)
          // Half-written: its writer never got as far as any rename.
          const info = yield* lstatIfPresent(files, path)
          if (Option.isNone(info)) return nothing
          const foreign = notOurs(info.value)
          if (foreign !== undefined) {
            yield* leaveUntouched(path, `it ${foreign}`)
            return nothing
          }
          yield* removeJournalFile(files, path)
          return nothing
        }),
        Effect.sync(() => inProgress.delete(path))
      )
      if (recovered.handled) journals.push(path)
      renamed.push(...recovered.renamed)
    }
    return { journals, renamed }
  })

/**
 * @internal Removes the stale temporary copies in `directory` (of one target's
 * name, or of any) — only files of this process's user: a file of someone else
 * under such a name is not this server's to remove.
 */
export const removeStaleTempsWith = (
  files: Files,
  directory: string,
  targetName?: string
): Effect.Effect<Array<string>, FileIoError> =>
  Effect.gen(function*() {
    const removed: Array<string> = []
    for (const name of yield* listDirectory(files, directory)) {
      const parsed = parseTempName(name)
      if (parsed === undefined || (targetName !== undefined && parsed.targetName !== targetName)) continue
      const path = files.path.join(directory, name)
      if (!staleTemp(parsed.pid, path)) continue
      const info = yield* lstatIfPresent(files, path)
      if (Option.isNone(info) || notOwned(info.value) !== undefined) continue
      yield* removeIfPresent(files, path)
      removed.push(path)
    }
    return removed
  })
