/**
 * The commit of file jobs: complete, fsynced temporary copies put in place
 * onto their targets, and the journal that makes the renames of one
 * transaction all-or-nothing even when the process dies between two of them.
 *
 * How one transaction commits (every member's `prepare` has already fsynced
 * its temporary copy and its directory, checked that its commit can succeed,
 * and registered its rename here):
 *
 * 1. The first `commit` checks every rename of the transaction again (the
 *    target is not a directory, is absent unless it may be replaced, and its
 *    directory is writable): if one fails, nothing moves and every member's
 *    commit fails with that error.
 * 2. With two renames or more, it then writes the journal (see
 *    `journalFormat.ts`): an intent in every directory but one, then the
 *    record in that one; each file under a `.tmp` name, fsynced, renamed into
 *    place, its directory fsynced. The record is the commit point. A lone
 *    rename needs no journal: it is atomic by itself.
 * 3. Each member's `commit` puts its copy in place — a rename with
 *    `overwrite`, otherwise a link (which never replaces anything) and the
 *    removal of the copy's name — and fsyncs the directory.
 * 4. The last `commit` removes the intents, then the record.
 *
 * Recovery is in `journalRecovery.ts`.
 * @internal
 */
import { Effect, FileSystem, Option, Path } from "effect"
import type { JobTxn } from "../JobTxn.ts"
import { type CommitJournalError, FileIoError, TargetExists, TargetNotAFile } from "./errors.ts"
import { describe, type Files, io, lstatIfPresent, removeIfPresent, syncDirectory, syncDirectoryIfPresent } from "./fileOps.ts"
import { encodeJournal, type Journal, type Rename } from "./journalFormat.ts"
import { recoverJournalsWith, type RecoveryReport, removeStaleTempsWith } from "./journalRecovery.ts"
import { freshToken, journalName, liveJournals, liveTemps } from "./ownership.ts"

export type { Rename } from "./journalFormat.ts"
export { recoverJournalsWith, type RecoveryReport, removeStaleTempsWith } from "./journalRecovery.ts"

/** How a commit fails: a target that may not be replaced, a journal that cannot be written, an I/O error. */
export type CommitError = FileIoError | CommitJournalError | TargetExists | TargetNotAFile

/** The journal files of one transaction, once written. */
interface WrittenJournal {
  readonly token: string
  readonly record: string
  readonly intents: ReadonlyArray<string>
}

/** What one transaction's file jobs have prepared, and how far their commit got. */
interface TxnCommit {
  readonly renames: Array<Rename>
  /** Commits finished (successfully or not). */
  finished: number
  /**
   * Decided by the first commit: go ahead (with the journal, if there is one),
   * or refuse — a check or the journal failed, nothing is renamed, and every
   * member's commit fails with this error.
   */
  decision:
    | { readonly _tag: "Go"; readonly journal: WrittenJournal | undefined }
    | { readonly _tag: "Refused"; readonly error: CommitError }
    | undefined
  /** A rename failed after the commit point: the journal is kept for recovery to retry. */
  renameFailed: boolean
}

const commits = new WeakMap<JobTxn, TxnCommit>()

const newCommit = (renames: Array<Rename>): TxnCommit => ({ renames, finished: 0, decision: undefined, renameFailed: false })

/**
 * Whether putting `rename` in place can succeed, as far as can be known
 * beforehand: the copy is there; the target is absent, or a regular file or a
 * symbolic link that may be replaced; its directory is writable. What can
 * still fail after this is a change made in between (caught by the link for
 * a target that appears) or an I/O error.
 */
export const checkRename = (files: Files, rename: Rename): Effect.Effect<void, FileIoError | TargetExists | TargetNotAFile> =>
  Effect.gen(function*() {
    const temp = yield* lstatIfPresent(files, rename.temp)
    if (Option.isNone(temp) || temp.value.type !== "File") {
      return yield* new FileIoError({ operation: "commit", path: rename.temp, detail: "the temporary copy is gone" })
    }
    const target = yield* lstatIfPresent(files, rename.target)
    if (Option.isSome(target)) {
      if (target.value.type !== "File" && target.value.type !== "SymbolicLink") {
        return yield* new TargetNotAFile({ path: rename.target })
      }
      if (!rename.replace) return yield* new TargetExists({ path: rename.target })
    }
    const directory = files.path.dirname(rename.target)
    yield* Effect.mapError(
      files.fs.access(directory, { writable: true }),
      (error) => new FileIoError({ operation: "write in", path: directory, detail: describe(error) })
    )
  })

/**
 * `prepare`: the temporary copy (and its directory entry) is durable; once its
 * commit is checked to be possible, its rename joins the transaction's commit.
 * A failure here aborts the whole transaction before anything is renamed.
 */
export const prepared = (
  files: Files,
  txn: JobTxn,
  rename: Rename
): Effect.Effect<void, FileIoError | TargetExists | TargetNotAFile> =>
  Effect.andThen(
    checkRename(files, rename),
    Effect.sync(() => {
      let commit = commits.get(txn)
      if (commit === undefined) {
        commit = newCommit([])
        commits.set(txn, commit)
      }
      if (!commit.renames.includes(rename)) commit.renames.push(rename)
    })
  )

/** `abort` after `prepare` (a later member's `prepare` failed): the rename leaves the commit. */
export const withdraw = (txn: JobTxn, rename: Rename): Effect.Effect<void> =>
  Effect.sync(() => {
    const commit = commits.get(txn)
    if (commit === undefined) return
    const index = commit.renames.indexOf(rename)
    if (index >= 0) commit.renames.splice(index, 1)
    if (commit.renames.length === 0) commits.delete(txn)
  })

/** Writes `text` under `path + ".tmp"`, fsyncs it and renames it to `path`. */
const writeDurably = (files: Files, path: string, text: string): Effect.Effect<void, FileIoError> => {
  const partial = `${path}.tmp`
  return Effect.andThen(
    io(
      "write",
      partial,
      Effect.scoped(Effect.gen(function*() {
        const file = yield* files.fs.open(partial, { flag: "wx", mode: 0o600 })
        yield* file.writeAll(new TextEncoder().encode(text))
        yield* file.sync
      }))
    ),
    io("rename", partial, files.fs.rename(partial, path))
  )
}

/**
 * Writes the journal of `renames`: the intents (one per directory but the
 * first), then the record in the first directory — the directory of the
 * member that commits first.
 */
const writeJournal = (files: Files, renames: ReadonlyArray<Rename>): Effect.Effect<WrittenJournal, FileIoError> =>
  Effect.suspend(() => {
    const token = freshToken()
    const name = journalName(token)
    const byDirectory = new Map<string, Array<Rename>>()
    for (const rename of renames) {
      const directory = files.path.dirname(rename.target)
      byDirectory.set(directory, [...(byDirectory.get(directory) ?? []), rename])
    }
    const [recordDirectory, ...intentDirectories] = Array.from(byDirectory.keys())
    const record = files.path.join(recordDirectory!, name)
    const intents = intentDirectories.map((directory) => files.path.join(directory, name))
    const contentOf = (directory: string, role: Journal["role"]): string => {
      const own = byDirectory.get(directory)!.map((r) => ({ temp: r.temp, target: r.target, replace: r.replace }))
      const common = { format: "effect-jobs commit journal", version: 2, pid: process.pid, token, renames: own } as const
      return encodeJournal(role === "record" ? { ...common, role, intents } : { ...common, role, record })
    }
    const written: WrittenJournal = { token, record, intents }
    liveJournals.add(token)
    const write = Effect.gen(function*() {
      for (const directory of intentDirectories) {
        yield* writeDurably(files, files.path.join(directory, name), contentOf(directory, "intent"))
        yield* syncDirectory(files, directory)
      }
      yield* writeDurably(files, record, contentOf(recordDirectory!, "record"))
      yield* syncDirectory(files, recordDirectory!)
      return written
    })
    // A journal that could not be written completely is removed, record first: without it,
    // recovery drops the intents anyway.
    return Effect.tapError(write, () =>
      Effect.andThen(
        Effect.forEach([record, ...intents], (file) =>
          Effect.ignore(Effect.andThen(removeIfPresent(files, file), removeIfPresent(files, `${file}.tmp`)))),
        Effect.sync(() => liveJournals.delete(token))
      ))
  })

/** Removes the intents, then the record (which an intent recovered later would need). */
const removeJournal = (files: Files, journal: WrittenJournal): Effect.Effect<void, FileIoError> =>
  Effect.gen(function*() {
    for (const intent of journal.intents) {
      yield* removeIfPresent(files, intent)
      yield* syncDirectoryIfPresent(files, files.path.dirname(intent))
    }
    yield* removeIfPresent(files, journal.record)
    yield* syncDirectoryIfPresent(files, files.path.dirname(journal.record))
  })

/**
 * Puts one copy in place: an atomic rename when the target may be replaced;
 * otherwise a link to the target's name, which fails if anything stands there
 * (`TargetExists`), then the removal of the copy's own name.
 */
const putInPlace = (files: Files, rename: Rename): Effect.Effect<void, FileIoError | TargetExists> => {
  if (rename.replace) return io("rename", rename.temp, files.fs.rename(rename.temp, rename.target))
  const link: Effect.Effect<void, FileIoError | TargetExists> = Effect.catch(
    files.fs.link(rename.temp, rename.target),
    (error) =>
      Effect.fail(
        error.reason._tag === "AlreadyExists"
          ? new TargetExists({ path: rename.target })
          : new FileIoError({ operation: "link", path: rename.temp, detail: describe(error) })
      )
  )
  // Both steps or neither: between them the copy has two names.
  return Effect.uninterruptible(Effect.andThen(link, io("remove", rename.temp, files.fs.remove(rename.temp))))
}

/**
 * `commit`: puts one prepared temporary copy in place, inside the
 * transaction's journal when it has several. Fails, leaving the target as it
 * was, if the checks refuse or the journal cannot be written — then every
 * other member's commit fails the same way, so no target of the transaction
 * changes — or if a target that may not be replaced appeared since.
 */
export const commitRename = (files: Files, txn: JobTxn, rename: Rename): Effect.Effect<void, CommitError> =>
  Effect.gen(function*() {
    const registered = commits.get(txn)
    const commit = registered !== undefined && registered.renames.includes(rename) ? registered : newCommit([rename])
    if (commit.decision === undefined) {
      const checked = yield* Effect.result(Effect.forEach(commit.renames, (r) => checkRename(files, r), { discard: true }))
      if (checked._tag === "Failure") {
        commit.decision = { _tag: "Refused", error: checked.failure }
      } else if (commit.renames.length > 1) {
        const written = yield* Effect.result(writeJournal(files, commit.renames))
        commit.decision = written._tag === "Success"
          ? { _tag: "Go", journal: written.success }
          : { _tag: "Refused", error: written.failure }
      } else {
        commit.decision = { _tag: "Go", journal: undefined }
      }
    }
    const decision = commit.decision
    const putNow = Effect.gen(function*() {
      if (decision._tag === "Refused") {
        yield* Effect.ignore(removeIfPresent(files, rename.temp))
        return yield* Effect.fail(decision.error)
      }
      yield* putInPlace(files, rename).pipe(
        Effect.tapError((error) =>
          Effect.suspend(() => {
            // A target that appeared is someone else's file, and stays: this copy will never go
            // in place, so it goes. After any other failure a journal's recovery retries.
            if (error._tag === "TargetExists" || decision.journal === undefined) {
              return Effect.ignore(removeIfPresent(files, rename.temp))
            }
            commit.renameFailed = true
            return Effect.void
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
      const journal = decision._tag === "Go" ? decision.journal : undefined
      if (journal === undefined) return Effect.void
      liveJournals.delete(journal.token)
      // After a failed rename the journal stays: recovery finishes the commit later. A journal
      // that cannot be removed is harmless (recovery finds its renames done and removes it).
      return commit.renameFailed ? Effect.void : Effect.catch(removeJournal(files, journal), (error) =>
        Effect.logWarning(`effect-jobs: cannot remove commit journal: ${error.message}`))
    })
    const exit = yield* Effect.exit(putNow)
    yield* finish
    return yield* exit
  })

const withFiles = <A, E>(
  f: (files: Files) => Effect.Effect<A, E>
): Effect.Effect<A, E, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* f({ fs, path: yield* Path.Path })
  })

/**
 * Finishes (or drops) the commit journals in `directory` whose writer is gone,
 * acting only on journals that are this server's own files and only on
 * entries of `directory` (see docs/drivers.md, "Security model"). A journal
 * that fails the checks, or whose commit cannot be finished, is reported (a
 * warning) and set aside, or left untouched when it is not this server's file;
 * it never makes the recovery fail. Journals of commits still under way (in
 * this process or another running one) are left alone.
 *
 * @since 0.1.0
 * @category recovery
 */
export const recoverJournals = (
  directory: string
): Effect.Effect<RecoveryReport, FileIoError, FileSystem.FileSystem | Path.Path> =>
  withFiles((files) =>
    Effect.map(recoverJournalsWith(files, directory), (done) => ({ ...done, removedTemps: [] }))
  )

/**
 * Removes the stale temporary copies in `directory` (of dead processes, or of
 * no live job of this one) that belong to this process's user. A server runs
 * it after it has recovered its jobs, whose resumed backups keep theirs.
 *
 * @since 0.1.0
 * @category recovery
 */
export const removeStaleTemps = (
  directory: string
): Effect.Effect<ReadonlyArray<string>, FileIoError, FileSystem.FileSystem | Path.Path> =>
  withFiles((files) => removeStaleTempsWith(files, directory))

/**
 * What a server runs at start for each directory it writes files in:
 * `recoverJournals`, then removes the stale temporary copies (of dead
 * processes, or of no live job of this one) that belong to this process's
 * user.
 *
 * @since 0.1.0
 * @category recovery
 */
export const recoverDirectory = (
  directory: string
): Effect.Effect<RecoveryReport, FileIoError, FileSystem.FileSystem | Path.Path> =>
  withFiles((files) =>
    Effect.gen(function*() {
      const done = yield* recoverJournalsWith(files, directory)
      const removedTemps = yield* removeStaleTempsWith(files, directory)
      return { ...done, removedTemps }
    })
  )
