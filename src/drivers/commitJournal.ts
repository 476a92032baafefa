/**
 * The commit of file jobs: atomic renames of complete, fsynced temporary
 * copies onto their targets, and the journal that makes the renames of one
 * transaction all-or-nothing even when the process dies between two of them.
 *
 * How one transaction commits (every member's `prepare` has already fsynced
 * its temporary copy and its directory, and registered its rename here):
 *
 * 1. With two renames or more, the first `commit` writes the journal: one copy
 *    in every directory that holds a target, each written under a `.tmp` name,
 *    fsynced and renamed into place; then those directories are fsynced. A
 *    lone rename needs no journal: a rename is atomic by itself.
 * 2. Each member's `commit` renames its temporary copy onto its target and
 *    fsyncs the target's directory.
 * 3. The last `commit` removes every copy of the journal.
 *
 * Recovery (`recoverJournals`, run by every new file job for its target's
 * directory, and by a server at start for the directories it serves) finds
 * journals whose writer is gone and decides by one rule: if **every** copy the
 * journal lists exists, the commit was under way — finish it (rename every
 * temporary copy that is still there); otherwise the journal was still being
 * written (nothing was renamed yet) or already being removed (everything was
 * renamed) — just remove the copies. In both cases the targets end all-new or
 * all-old, never mixed.
 * @internal
 */
import { Effect, FileSystem, Path, Schema } from "effect"
import type { JobTxn } from "../JobTxn.ts"
import { CommitJournalError, type FileIoError } from "./errors.ts"
import { exists, type Files, io, isNotFound, removeIfPresent, syncDirectory, syncDirectoryIfPresent } from "./fileOps.ts"
import {
  freshToken,
  journalName,
  liveJournals,
  liveTemps,
  parseJournalName,
  parseTempName,
  staleJournal,
  staleTemp
} from "./ownership.ts"

/** One rename of a commit: a temporary copy onto its target (absolute paths, same directory). */
export interface Rename {
  readonly temp: string
  readonly target: string
}

const JournalRename = Schema.Struct({ temp: Schema.String, target: Schema.String })

/** The journal's content (JSON). */
export const Journal = Schema.Struct({
  format: Schema.Literal("effect-jobs commit journal"),
  version: Schema.Literal(1),
  /** The process that wrote it. */
  pid: Schema.Number,
  token: Schema.String,
  /** Every rename of the transaction. */
  renames: Schema.Array(JournalRename),
  /** Every copy of this journal (one per directory holding a target). */
  copies: Schema.Array(Schema.String)
})
export type Journal = typeof Journal.Type

const JournalJson = Schema.fromJsonString(Journal)
const encodeJournal = Schema.encodeSync(JournalJson)
const decodeJournal = Schema.decodeUnknownEffect(JournalJson)

/** What one transaction's file jobs have prepared, and how far their commit got. */
interface TxnCommit {
  readonly renames: Array<Rename>
  /** Commits finished (successfully or not). */
  finished: number
  /** The journal, once written. */
  journal: Journal | undefined
  /** Writing the journal failed: nothing is renamed, every member's commit fails with this. */
  journalFailure: CommitJournalError | FileIoError | undefined
  /** A rename failed: the journal is kept for recovery to retry. */
  renameFailed: boolean
}

const commits = new WeakMap<JobTxn, TxnCommit>()

/** `prepare`: the temporary copy (and its directory entry) is durable; its rename joins the transaction's commit. */
export const prepared = (txn: JobTxn, rename: Rename): Effect.Effect<void> =>
  Effect.sync(() => {
    let commit = commits.get(txn)
    if (commit === undefined) {
      commit = { renames: [], finished: 0, journal: undefined, journalFailure: undefined, renameFailed: false }
      commits.set(txn, commit)
    }
    if (!commit.renames.includes(rename)) commit.renames.push(rename)
  })

/** `abort` after `prepare` (a later member's `prepare` failed): the rename leaves the commit. */
export const withdraw = (txn: JobTxn, rename: Rename): Effect.Effect<void> =>
  Effect.sync(() => {
    const commit = commits.get(txn)
    if (commit === undefined) return
    const index = commit.renames.indexOf(rename)
    if (index >= 0) commit.renames.splice(index, 1)
    if (commit.renames.length === 0) commits.delete(txn)
  })

const distinctDirectories = (files: Files, paths: ReadonlyArray<string>): Array<string> =>
  Array.from(new Set(paths.map((p) => files.path.dirname(p))))

/** Writes `text` under `path + ".tmp"`, fsyncs it and renames it to `path`. */
const writeDurably = (files: Files, path: string, text: string): Effect.Effect<void, FileIoError> => {
  const partial = `${path}.tmp`
  return Effect.andThen(
    io(
      "write",
      partial,
      Effect.scoped(Effect.gen(function*() {
        const file = yield* files.fs.open(partial, { flag: "wx" })
        yield* file.writeAll(new TextEncoder().encode(text))
        yield* file.sync
      }))
    ),
    io("rename", partial, files.fs.rename(partial, path))
  )
}

const writeJournal = (files: Files, renames: ReadonlyArray<Rename>): Effect.Effect<Journal, FileIoError> =>
  Effect.suspend(() => {
    const token = freshToken()
    const directories = distinctDirectories(files, renames.map((r) => r.target))
    const journal: Journal = {
      format: "effect-jobs commit journal",
      version: 1,
      pid: process.pid,
      token,
      renames: renames.map((r) => ({ temp: r.temp, target: r.target })),
      copies: directories.map((d) => files.path.join(d, journalName(token)))
    }
    liveJournals.add(token)
    const text = encodeJournal(journal)
    const write = Effect.gen(function*() {
      for (const copy of journal.copies) yield* writeDurably(files, copy, text)
      for (const directory of directories) yield* syncDirectory(files, directory)
      return journal
    })
    // A journal that could not be written completely is removed: recovery would roll it back anyway.
    return Effect.tapError(write, () =>
      Effect.andThen(
        Effect.forEach(journal.copies, (copy) =>
          Effect.ignore(Effect.andThen(removeIfPresent(files, copy), removeIfPresent(files, `${copy}.tmp`)))),
        Effect.sync(() => liveJournals.delete(token))
      ))
  })

const removeJournal = (files: Files, journal: Journal): Effect.Effect<void, FileIoError> =>
  Effect.gen(function*() {
    for (const copy of journal.copies) yield* removeIfPresent(files, copy)
    for (const directory of distinctDirectories(files, journal.copies)) yield* syncDirectoryIfPresent(files, directory)
  })

/**
 * `commit`: renames one prepared temporary copy onto its target, inside the
 * transaction's journal when it has several. Fails (leaving the target as it
 * was) if the journal cannot be written; then every other member's commit
 * fails the same way, so no target of the transaction changes.
 */
export const commitRename = (
  files: Files,
  txn: JobTxn,
  rename: Rename
): Effect.Effect<void, FileIoError | CommitJournalError> =>
  Effect.gen(function*() {
    const registered = commits.get(txn)
    const commit: TxnCommit = registered !== undefined && registered.renames.includes(rename)
      ? registered
      : { renames: [rename], finished: 0, journal: undefined, journalFailure: undefined, renameFailed: false }
    if (commit.renames.length > 1 && commit.journal === undefined && commit.journalFailure === undefined) {
      const written = yield* Effect.result(writeJournal(files, commit.renames))
      if (written._tag === "Success") commit.journal = written.success
      else commit.journalFailure = written.failure
    }
    const renameNow = Effect.gen(function*() {
      if (commit.journalFailure !== undefined) {
        yield* Effect.ignore(removeIfPresent(files, rename.temp))
        return yield* Effect.fail(commit.journalFailure)
      }
      yield* io("rename", rename.temp, files.fs.rename(rename.temp, rename.target)).pipe(
        Effect.tapError(() =>
          Effect.suspend(() => {
            commit.renameFailed = true
            // Without a journal nobody will finish this rename: the temporary copy goes.
            return commit.journal === undefined ? Effect.ignore(removeIfPresent(files, rename.temp)) : Effect.void
          })
        )
      )
      liveTemps.delete(rename.temp)
      yield* syncDirectory(files, files.path.dirname(rename.target))
    })
    const finish = Effect.suspend(() => {
      commit.finished++
      if (commit.finished < commit.renames.length) return Effect.void
      if (commits.get(txn) === commit) commits.delete(txn)
      const journal = commit.journal
      if (journal === undefined) return Effect.void
      liveJournals.delete(journal.token)
      // After a failed rename the journal stays: recovery finishes the commit later. A journal
      // that cannot be removed is harmless (recovery finds its renames done and removes it).
      return commit.renameFailed ? Effect.void : Effect.catch(removeJournal(files, journal), (error) =>
        Effect.logWarning(`effect-jobs: cannot remove commit journal: ${error.message}`))
    })
    const exit = yield* Effect.exit(renameNow)
    yield* finish
    return yield* exit
  })

/**
 * What a recovery did: journals handled, targets put in place by finishing a
 * commit, and stale temporary copies removed.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecoveryReport {
  /** Journals of dead writers found and removed (after finishing or dropping their commit). */
  readonly journals: ReadonlyArray<string>
  /** Targets renamed into place by finishing an interrupted commit. */
  readonly renamed: ReadonlyArray<string>
  /** Stale temporary copies removed. */
  readonly removedTemps: ReadonlyArray<string>
}

const journalError = (path: string, detail: string) => new CommitJournalError({ path, detail })

/** Finishes or drops one journal of a dead writer. Returns the targets it renamed. */
const recoverJournal = (
  files: Files,
  path: string
): Effect.Effect<ReadonlyArray<string> | undefined, CommitJournalError | FileIoError> =>
  Effect.gen(function*() {
    const text = yield* Effect.catch(
      Effect.map(files.fs.readFileString(path), (t): string | undefined => t),
      (error) => isNotFound(error) ? Effect.succeed(undefined) : Effect.fail(journalError(path, error.message))
    )
    // Another recovery got there first.
    if (text === undefined) return undefined
    const journal = yield* Effect.mapError(
      decodeJournal(text),
      (error) => journalError(path, `not a valid commit journal: ${error.message}`)
    )
    let complete = true
    for (const copy of journal.copies) {
      if (!(yield* exists(files, copy))) complete = false
    }
    const renamed: Array<string> = []
    if (complete) {
      for (const rename of journal.renames) {
        if (yield* exists(files, rename.temp)) {
          yield* io("rename", rename.temp, files.fs.rename(rename.temp, rename.target))
          renamed.push(rename.target)
        }
      }
      for (const directory of distinctDirectories(files, journal.renames.map((r) => r.target))) {
        yield* syncDirectory(files, directory)
      }
    }
    yield* removeJournal(files, journal)
    return renamed
  })

const listDirectory = (files: Files, directory: string) =>
  io("list directory", directory, files.fs.readDirectory(directory))

/** @internal */
export const recoverJournalsWith = (
  files: Files,
  directory: string
): Effect.Effect<{ readonly journals: Array<string>; readonly renamed: Array<string> }, CommitJournalError | FileIoError> =>
  Effect.gen(function*() {
    const journals: Array<string> = []
    const renamed: Array<string> = []
    for (const name of yield* listDirectory(files, directory)) {
      const parsed = parseJournalName(name)
      if (parsed === undefined || !staleJournal(parsed.pid, parsed.token)) continue
      const path = files.path.join(directory, name)
      if (parsed.partial) {
        // Half-written: its writer never got as far as any rename.
        yield* removeIfPresent(files, path)
        continue
      }
      const done = yield* recoverJournal(files, path)
      if (done === undefined) continue
      journals.push(path)
      renamed.push(...done)
    }
    return { journals, renamed }
  })

/** @internal Removes the stale temporary copies in `directory` (of one target's name, or of any). */
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
      yield* removeIfPresent(files, path)
      removed.push(path)
    }
    return removed
  })

const withFiles = <A, E>(
  f: (files: Files) => Effect.Effect<A, E>
): Effect.Effect<A, E, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* f({ fs, path: yield* Path.Path })
  })

/**
 * Finishes (or drops) the commit journals in `directory` whose writer is gone:
 * the renames of an interrupted commit are completed when every copy of its
 * journal exists, and every copy is then removed. Journals of commits still
 * under way (in this process or another running one) are left alone.
 *
 * @since 0.1.0
 * @category recovery
 */
export const recoverJournals = (
  directory: string
): Effect.Effect<RecoveryReport, CommitJournalError | FileIoError, FileSystem.FileSystem | Path.Path> =>
  withFiles((files) =>
    Effect.map(recoverJournalsWith(files, directory), (done) => ({ ...done, removedTemps: [] }))
  )

/**
 * What a server runs at start for each directory it writes files in:
 * `recoverJournals`, then removes the stale temporary copies (of dead
 * processes, or of no live job of this one).
 *
 * @since 0.1.0
 * @category recovery
 */
export const recoverDirectory = (
  directory: string
): Effect.Effect<RecoveryReport, CommitJournalError | FileIoError, FileSystem.FileSystem | Path.Path> =>
  withFiles((files) =>
    Effect.gen(function*() {
      const done = yield* recoverJournalsWith(files, directory)
      const removedTemps = yield* removeStaleTempsWith(files, directory)
      return { ...done, removedTemps }
    })
  )
