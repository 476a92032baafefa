/**
 * The machinery the `backup` and `mirror` drivers share: their parameters,
 * the checks made before a job exists (`check`) and again by `make` (which
 * also opens the source), the temporary copy beside the target, the chunked
 * copy loop (progress, pause points, rate limit), the compare-and-fix round of
 * a mirror, and the durable hand-over to the commit.
 * @internal
 */
import { Clock, Duration, Effect, Exit, Fiber, FileSystem, Option, Path, type PlatformError, Schema, Scope } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import * as RateLimit from "../RateLimit.ts"
import {
  type CommitError,
  commitRename,
  prepared,
  recoverJournalsWith,
  removeStaleTempsWith,
  type Rename,
  withdraw
} from "./commitJournal.ts"
import {
  type CommitJournalError,
  FileIoError,
  type FileJobError,
  SameFile,
  SourceNotAFile,
  SourceNotFound,
  SourceReplaced,
  SourceSizeUnknown,
  SourceTruncated,
  SourceUnreadable,
  TargetDirectoryNotFound,
  TargetExists,
  TargetInUse,
  TargetNotAFile
} from "./errors.ts"
import { describe, type Files, io, isNotFound, readAt, removeIfPresent, syncDirectory, writeAt } from "./fileOps.ts"
import { checkpointOf, type CopyCheckpoint, isCopyInPlace, resumedCheckpoint } from "./copyCheckpoint.ts"
import { freshToken, liveTargets, liveTemps, notOwned, parseTempName, tempName } from "./ownership.ts"

/**
 * The parameters of a `backup` or `mirror` job.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FileJobParams = Schema.Struct({
  /** The file to copy. */
  source: Schema.NonEmptyString,
  /** Where the copy goes; its directory must exist. */
  target: Schema.NonEmptyString,
  /**
   * Not a parameter: the initial rate limit is `Jobs.create`'s `speed`, the
   * job's own. Refused rather than ignored, so that a limit given here is not
   * lost without a word.
   */
  speed: Schema.optionalKey(
    Schema.Never.annotate({ message: "the initial speed is not a parameter: give it to Jobs.create as its speed" })
  ),
  /** Replace an existing target (default: refuse). */
  overwrite: Schema.optionalKey(Schema.Boolean)
})

/**
 * @since 0.1.0
 * @category models
 */
export type FileJobParams = typeof FileJobParams.Type

/**
 * Tuning of the file drivers.
 *
 * @since 0.1.0
 * @category models
 */
export interface FileDriverOptions {
  /** With a durable store: bytes copied between two checkpoints of a backup (default 64 MiB). */
  readonly checkpointInterval?: number | undefined
  /** Bytes per read and write (default `defaultChunkSize`). */
  readonly chunkSize?: number | undefined
  /** How often a READY mirror looks for changes in its source (default 1 second). */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * 4 MiB. Measured with bench/fileDrivers.ts (backup of 1 GiB, page-cached
 * source, ext4, 2 cores, each chunk written in `writePiece` pieces): 1 MiB
 * chunks did about as well as 4 MiB ones, 256 KiB ones 10–30 % worse, 8 MiB
 * ones no better. Of the chunk sizes that keep up, 4 MiB has the least work per
 * byte around the copy (progress, rate limit, pause point, source check), and
 * pause and cancel still wait for one chunk at most. (A rate-limited copy uses
 * smaller chunks anyway: at most one slice's quota.)
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultChunkSize = 4 * 1024 * 1024

export const defaultPollInterval: Duration.Input = "1 second"

/** The smallest chunk of a rate-limited copy (QEMU's default cluster size). */
export const minimumChunk = 64 * 1024

/**
 * Buffers of a copy: the next chunk is read into one while the other is
 * written (see `copyAll`). Reading two chunks ahead (three buffers) was slower
 * in bench/fileDrivers.ts on two cores: the reads only compete with the write.
 */
export const copyBuffers = 2

/**
 * Bytes per write system call of a copy: a chunk is written in pieces of this
 * size, spread over `writeHandles` handles. A large write has the kernel take
 * large page-cache folios at once; on the virtual machine the figures come
 * from (ext4, free memory handed back to the host), 1 GiB written as 4 MiB
 * writes took 1.7–3.9 s, as 64 KiB pieces 0.3–0.5 s, and in the rounds of
 * bench/fileDrivers.ts a backup in 4 MiB writes reached 0.4–0.8 × `cp` +
 * `sync`, in 128 KiB pieces 1.0–1.1 ×. (`cp` itself writes 64 KiB at a time.)
 * The price is a system call and a round trip through libuv's thread pool per
 * piece: where large folios are cheap — memory a previous copy has just freed —
 * whole-chunk writes were up to a quarter faster.
 */
export const writePiece = 128 * 1024

/**
 * Handles on the temporary copy that write a chunk's pieces, each one piece at
 * a time. The kernel writes into one file one write at a time: the other
 * handles keep the next pieces waiting at the file rather than behind a round
 * trip through libuv's thread pool. Three measured better than two or four.
 */
export const writeHandles = 3

/** Bytes copied between two write-behind fsyncs of a temporary copy (see `copyAll`). */
export const flushInterval = 128 * 1024 * 1024

/** One file job's files: checked at `make`, used by `run`, committed or removed at finalization. */
export interface FileJob {
  readonly files: Files
  readonly label: string
  /** Absolute paths. */
  readonly source: string
  readonly target: string
  readonly directory: string
  readonly targetName: string
  /** `overwrite`: the commit may replace what stands at the target (else it never does). */
  readonly overwrite: boolean
  /** Closed by `release`: every handle the job opened. */
  readonly scope: Scope.Closeable
  /**
   * The source as `make` opened it, for the job's whole life: every read goes
   * through this handle, never through the path again (see `sourcePathNow`).
   */
  readonly sourceFile: FileSystem.File
  readonly sourceInfo: FileSystem.File.Info
  /** What the source path itself named at `make` (`lstat`): the file, or the symbolic link it was named through. */
  readonly sourceEntry: FileSystem.File.Info
  /**
   * Brought back after a restart with a complete copy and no source (deleted
   * while the server was down): `sourceFile` is that copy, or the target it
   * was put in place onto, so the job can commit it; it can copy nothing.
   */
  readonly sourceGone: boolean
  /**
   * Brought back after a restart with its copy already put in place onto the
   * target (its commit had begun): nothing is left to commit.
   */
  readonly inPlace: boolean
  /** The temporary copy, once `run` created it. */
  rename: Rename | undefined
  tempFile: FileSystem.File | undefined
  /** Handles on the temporary copy that write a chunk's pieces (`tempFile` first; see `createTemp`). */
  tempWriters: ReadonlyArray<FileSystem.File>
  /** The copy's permission bits; only ever narrowed (see `narrowCopyMode`). */
  copyMode: number
  released: boolean
  /** The copy's buffers (`takeBuffers`), handed back at `release`. */
  buffers: ReadonlyArray<Uint8Array>
  /** While `copyAll` runs: its reads ahead (settled at `pause`, see `settleReadsAhead`). */
  readsAhead: ReadsAhead | undefined
}

/** A chunk's read, issued before the write that needs it. */
interface ReadAhead {
  readonly buffer: Uint8Array
  readonly offset: number
  readonly want: number
  readonly fiber: Fiber.Fiber<number, FileIoError>
}

/** A copy's reads: those issued and not yet written (in the order of their offsets), and the buffers free. */
interface ReadsAhead {
  readonly pending: Array<ReadAhead>
  readonly idle: Array<Uint8Array>
  /** Where the next read starts. */
  end: number
}

const sameFile = (a: FileSystem.File.Info, b: FileSystem.File.Info): boolean =>
  a.dev === b.dev && Option.isSome(a.ino) && Option.isSome(b.ino) && a.ino.value === b.ino.value

export const sizeOf = (info: FileSystem.File.Info): number => Number(info.size)

/** Whether the source path still leads to the file opened (see `sourcePathNow`). */
type SourcePathState = "same" | "replaced" | "missing"

const infoOrNone = (
  effect: Effect.Effect<FileSystem.File.Info, PlatformError.PlatformError>
): Effect.Effect<Option.Option<FileSystem.File.Info>, PlatformError.PlatformError> =>
  Effect.catch(Effect.map(effect, Option.some), (error) =>
    isNotFound(error) ? Effect.succeed(Option.none()) : Effect.fail(error))

/**
 * Where the source path leads now, against `entry` (what the path itself named
 * at `make`) and `opened` (the file `make` opened). The path is looked at with
 * `lstat`: a symbolic link put in place of the file is another entry, whatever
 * it points to. A source named through a symbolic link must still be that very
 * link (a link never changes in place: re-pointing one replaces it) and still
 * lead to the file opened (a link further along may have been replaced).
 * Nothing is ever opened or read through the path here.
 */
const sourcePathNow = (
  files: Files,
  path: string,
  entry: FileSystem.File.Info,
  opened: FileSystem.File.Info
): Effect.Effect<SourcePathState, PlatformError.PlatformError> =>
  Effect.gen(function*() {
    const now = yield* infoOrNone(files.fs.lstat(path))
    if (Option.isNone(now)) return "missing"
    if (!sameFile(now.value, entry)) return "replaced"
    if (now.value.type !== "SymbolicLink") return sameFile(now.value, opened) ? "same" : "replaced"
    const target = yield* infoOrNone(files.fs.stat(path))
    if (Option.isNone(target)) return "missing"
    return sameFile(target.value, opened) ? "same" : "replaced"
  })

/**
 * Opens the source for the job's whole life and records its identity: the file
 * opened (`fstat`) and what the path named (`lstat`), which must agree — the
 * path may have been swapped between the open and the look.
 */
const openSource = (files: Files, scope: Scope.Scope, source: string) =>
  Effect.gen(function*() {
    const unreadable = (error: PlatformError.PlatformError) =>
      isNotFound(error) ? new SourceNotFound({ path: source }) : new SourceUnreadable({ path: source, detail: describe(error) })
    const file = yield* Effect.mapError(Scope.provide(scope)(files.fs.open(source, { flag: "r" })), unreadable)
    // The identity of the file opened, not of whatever the path names a moment later.
    const info = yield* Effect.mapError(file.stat, unreadable)
    if (info.type !== "File") return yield* new SourceNotAFile({ path: source })
    const entry = yield* Effect.mapError(files.fs.lstat(source), unreadable)
    const state = yield* Effect.mapError(sourcePathNow(files, source, entry, info), unreadable)
    if (state !== "same") return yield* new SourceReplaced({ path: source })
    return { file, info, entry }
  })

/** Where a job's paths point, resolved against the working directory. */
interface Paths {
  readonly source: string
  readonly target: string
  readonly directory: string
  readonly targetName: string
}

const resolvePaths = (files: Files, params: FileJobParams): Paths => {
  const source = files.path.resolve(params.source)
  const target = files.path.resolve(params.target)
  return { source, target, directory: files.path.dirname(target), targetName: files.path.basename(target) }
}

/** The source path names a regular file: its information. */
const statSource = (
  files: Files,
  source: string
): Effect.Effect<FileSystem.File.Info, SourceNotFound | SourceUnreadable | SourceNotAFile> =>
  Effect.flatMap(
    Effect.mapError(files.fs.stat(source), (error) =>
      isNotFound(error) ? new SourceNotFound({ path: source }) : new SourceUnreadable({ path: source, detail: describe(error) })),
    (info) => (info.type === "File" ? Effect.succeed(info) : Effect.fail(new SourceNotAFile({ path: source })))
  )

const checkTargetDirectory = (files: Files, paths: Paths): Effect.Effect<void, TargetDirectoryNotFound> =>
  Effect.flatMap(Effect.option(files.fs.stat(paths.directory)), (info) =>
    Option.isSome(info) && info.value.type === "Directory"
      ? Effect.void
      : Effect.fail(new TargetDirectoryNotFound({ path: paths.directory, target: paths.target })))

const targetUser = (target: string): TargetInUse | undefined => {
  const user = liveTargets.get(target)
  return user === undefined ? undefined : new TargetInUse({ path: target, job: user })
}

/**
 * For a job brought back with a complete copy whose source is gone: the copy
 * (its temporary file, or the target it was put in place onto) opened in the
 * source's stead; `undefined` if neither is there.
 */
const openStandIn = (files: Files, scope: Scope.Scope, paths: Paths, resumed: CopyCheckpoint) =>
  Effect.gen(function*() {
    const candidates = isResumableTemp(files, paths, resumed.temp) ? [resumed.temp, paths.target] : [paths.target]
    for (const path of candidates) {
      const opened = yield* Effect.option(Scope.provide(scope)(files.fs.open(path, { flag: "r" })))
      if (Option.isNone(opened)) continue
      const info = yield* io("inspect", path, opened.value.stat)
      if (info.type !== "File" || (path === paths.target && !isCopyInPlace(resumed, info))) continue
      const entry = yield* io("inspect", path, files.fs.lstat(path))
      return { file: opened.value, info, entry }
    }
    return undefined
  })

/** A job brought back without its source can commit its copy, not make one: `run` fails. */
export const requireSource = (job: FileJob): Effect.Effect<void, SourceNotFound> =>
  job.sourceGone ? Effect.fail(new SourceNotFound({ path: job.source })) : Effect.void

/** Whether the target path names the complete copy `checkpoint` recorded (`isCopyInPlace`). */
const copyInPlace = (files: Files, paths: Paths, checkpoint: CopyCheckpoint): Effect.Effect<boolean, FileIoError> =>
  Effect.catch(
    Effect.map(files.fs.stat(paths.target), (info) => isCopyInPlace(checkpoint, info)),
    (error) => isNotFound(error) ? Effect.succeed(false) : io("inspect", paths.target, Effect.fail(error))
  )

/** What already stands at the target path must not be the source, must be a regular file, and may be replaced. */
const checkExistingTarget = (
  files: Files,
  paths: Paths,
  source: FileSystem.File.Info,
  overwrite: boolean | undefined
): Effect.Effect<void, SameFile | TargetNotAFile | TargetExists | FileIoError> =>
  Effect.gen(function*() {
    const existing = yield* Effect.catch(
      Effect.map(files.fs.stat(paths.target), Option.some),
      (error) =>
        isNotFound(error)
          ? Effect.succeed(Option.none<FileSystem.File.Info>())
          : io("inspect", paths.target, Effect.fail(error))
    )
    if (Option.isNone(existing)) return
    if (sameFile(existing.value, source)) return yield* new SameFile({ source: paths.source, target: paths.target })
    if (existing.value.type !== "File") return yield* new TargetNotAFile({ path: paths.target })
    if (overwrite !== true) return yield* new TargetExists({ path: paths.target })
  })

/**
 * The driver's `check`: every check of `setUp` that opens, creates and
 * changes nothing, with the same errors, in the same order — the source is a
 * regular file; the target's directory exists; no other job of this process
 * writes the target; the source may be read; an existing target is not the
 * source, is a regular file and `overwrite` is set. `setUp` makes them again:
 * the files may change in between, and finishing an interrupted commit in the
 * target's directory may put a target in place.
 */
export const checkParams = (params: FileJobParams): Effect.Effect<void, FileJobError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const files = { fs: yield* FileSystem.FileSystem, path: yield* Path.Path }
    const paths = resolvePaths(files, params)
    const source = yield* statSource(files, paths.source)
    yield* checkTargetDirectory(files, paths)
    const user = targetUser(paths.target)
    if (user !== undefined) return yield* user
    // Readable: asked where `make` opens it, without opening it.
    yield* Effect.mapError(
      files.fs.access(paths.source, { readable: true }),
      (error) => new SourceUnreadable({ path: paths.source, detail: describe(error) })
    )
    yield* checkExistingTarget(files, paths, source, params.overwrite)
  })

/**
 * `make`'s checks and set-up, in this order: the source exists, is a regular
 * file and opens for reading; the target's directory exists; no other job of
 * this process writes the target; interrupted commits in that directory are
 * finished and stale temporary copies of this target removed; the target is
 * not the source itself; an existing target is a regular file and `overwrite`
 * is set. The source stays open (pinned) until the job is released; a path
 * swapped while it was opened fails with `SourceReplaced`.
 */
export const setUp = (
  files: Files,
  params: FileJobParams,
  label: string,
  /** A resumed job's last checkpoint: its temporary copy is not stale, whoever's name it bears. */
  resumed?: CopyCheckpoint | undefined
): Effect.Effect<FileJob, SourceNotFound | SourceNotAFile | SourceUnreadable | SourceReplaced | TargetDirectoryNotFound | TargetInUse | TargetExists | TargetNotAFile | SameFile | FileIoError | CommitJournalError> =>
  Effect.gen(function*() {
    const paths = resolvePaths(files, params)
    const { source, target, directory, targetName } = paths

    // A complete copy is committed without its source: one deleted while the server was down is no reason to fail.
    const sourceGone = yield* statSource(files, source).pipe(
      Effect.as(false),
      Effect.catchTag("SourceNotFound", (notFound) => resumed?.complete === true ? Effect.succeed(true) : Effect.fail(notFound))
    )
    yield* checkTargetDirectory(files, paths)

    const user = targetUser(target)
    if (user !== undefined) return yield* user
    liveTargets.set(target, label)
    const scope = yield* Scope.make("sequential")
    const releaseEarly = Effect.andThen(
      Effect.sync(() => liveTargets.delete(target)),
      Scope.close(scope, Exit.void)
    )

    return yield* Effect.onError(
      Effect.gen(function*() {
        const opened = sourceGone
          ? (yield* openStandIn(files, scope, paths, resumed!)) ?? (yield* new SourceNotFound({ path: source }))
          : yield* openSource(files, scope, source)
        yield* recoverJournalsWith(files, directory)
        const keepTemp = resumed?.temp
        if (keepTemp !== undefined && isResumableTemp(files, paths, keepTemp)) liveTemps.add(keepTemp)
        yield* removeStaleTempsWith(files, directory, targetName)
        // The target may be the resumed job's own copy, put in place by a commit the server did not live to record.
        const inPlace = resumed !== undefined && (yield* copyInPlace(files, paths, resumed))
        if (!inPlace) yield* checkExistingTarget(files, paths, opened.info, params.overwrite)
        const job: FileJob = {
          files,
          label,
          source,
          target,
          directory,
          targetName,
          overwrite: params.overwrite === true,
          scope,
          sourceFile: opened.file,
          sourceInfo: opened.info,
          sourceEntry: opened.entry,
          sourceGone,
          inPlace,
          rename: undefined,
          tempFile: undefined,
          tempWriters: [],
          copyMode: 0,
          released: false,
          buffers: [],
          readsAhead: undefined
        }
        return job
      }),
      () => releaseEarly
    )
  })

/** Closes every handle and frees the target (and the temporary copy's name) for other jobs. Idempotent. */
export const release = (job: FileJob): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (job.released) return Effect.void
    job.released = true
    if (liveTargets.get(job.target) === job.label) liveTargets.delete(job.target)
    if (job.rename !== undefined) liveTemps.delete(job.rename.temp)
    giveBackBuffers(job.buffers)
    job.buffers = []
    return Scope.close(job.scope, Exit.void)
  })

/**
 * Buffers of released jobs, for the next copy with buffers of the same length:
 * memory used for the first time costs a page fault per page at its first use
 * (on a virtual machine, a dear one: tens of milliseconds for one copy's
 * buffers). At most one copy's buffers are kept.
 */
const spareBuffers: Array<Uint8Array> = []

/**
 * The job's copy buffers (`copyBuffers` of `length` bytes), spare ones first.
 * They are the job's until `release`. What they held before is never written
 * out: a copy writes only what it has just read into them.
 */
export const takeBuffers = (job: FileJob, length: number): ReadonlyArray<Uint8Array> => {
  const buffers = Array.from({ length: copyBuffers }, () => {
    const spare = spareBuffers.findIndex((buffer) => buffer.length === length)
    return spare === -1 ? new Uint8Array(length) : spareBuffers.splice(spare, 1)[0]!
  })
  job.buffers = [...job.buffers, ...buffers]
  return buffers
}

const giveBackBuffers = (buffers: ReadonlyArray<Uint8Array>): void => {
  for (const buffer of buffers) {
    if (spareBuffers.length === copyBuffers) spareBuffers.shift() // the oldest goes
    spareBuffers.push(buffer)
  }
}

/**
 * Creates the temporary copy beside the target (exclusively: a name is never
 * reused) with the source's permission bits as `source` (its `fstat` now)
 * gives them — less the umask — so that the copy never grants more than its
 * source, and an existing target's wider mode is not kept: the commit renames
 * this file, mode and all, onto it.
 *
 * Then opens it again for writing, up to `writeHandles` handles in all, each
 * checked to be the file created. A copy whose mode does not let this process
 * open it for writing again (a read-only source's, unless the process may
 * override permissions) is written through the one handle.
 */
export const createTemp = (job: FileJob, source: FileSystem.File.Info): Effect.Effect<FileSystem.File, FileIoError> =>
  Effect.gen(function*() {
    const temp = job.files.path.join(job.directory, tempName(job.targetName, freshToken()))
    liveTemps.add(temp)
    const rename: Rename = { temp, target: job.target, replace: job.overwrite }
    job.rename = rename
    const file = yield* io(
      "create",
      temp,
      Scope.provide(job.scope)(job.files.fs.open(temp, { flag: "wx+", mode: source.mode & 0o777 }))
    )
    return yield* openWriters(job, temp, file)
  })

/**
 * A resumed backup's temporary copy (`temp`, from its checkpoint), opened to
 * be written on from `offset`: a regular file of this user's, beside the
 * target, at least `offset` bytes long. `undefined` when it is not there any
 * more (or not one to trust): the copy starts again.
 */
export const reopenTemp = (
  job: FileJob,
  temp: string,
  offset: number
): Effect.Effect<FileSystem.File | undefined, FileIoError> =>
  Effect.gen(function*() {
    if (!liveTemps.has(temp)) return undefined
    // The job's from now on: its abort removes it, its release lets it go.
    job.rename = { temp, target: job.target, replace: job.overwrite }
    const opened = yield* Effect.option(Scope.provide(job.scope)(job.files.fs.open(temp, { flag: "r+" })))
    const info = Option.isNone(opened) ? undefined : yield* io("inspect", temp, opened.value.stat)
    if (Option.isNone(opened) || info === undefined || notOwned(info) !== undefined || sizeOf(info) < offset) {
      // Not one to go on with: it goes (if it is there and ours), and the copy starts again.
      if (info !== undefined && notOwned(info) === undefined) yield* Effect.ignore(job.files.fs.remove(temp))
      liveTemps.delete(temp)
      job.rename = undefined
      return undefined
    }
    return yield* openWriters(job, temp, opened.value)
  })

/** Whether `temp` may be a resumed copy of this job's target: a temporary copy's name, in its directory. */
const isResumableTemp = (files: Files, paths: Paths, temp: string): boolean =>
  files.path.dirname(temp) === paths.directory && parseTempName(files.path.basename(temp))?.targetName === paths.targetName

/** The copy's handles: `file` first, then more opened on the same file, up to `writeHandles`. */
const openWriters = (job: FileJob, temp: string, file: FileSystem.File): Effect.Effect<FileSystem.File, FileIoError> =>
  Effect.gen(function*() {
    job.tempFile = file
    const created = yield* io("inspect", temp, file.stat)
    job.copyMode = created.mode & 0o777
    const writers = [file]
    while (writers.length < writeHandles) {
      const again = yield* Effect.catch(
        Effect.map(Scope.provide(job.scope)(job.files.fs.open(temp, { flag: "r+" })), Option.some),
        (error) =>
          error.reason._tag === "PermissionDenied"
            ? Effect.succeed(Option.none<FileSystem.File>())
            : io("open", temp, Effect.fail(error))
      )
      if (Option.isNone(again)) break
      if (!sameFile(yield* io("inspect", temp, again.value.stat), created)) {
        return yield* new FileIoError({ operation: "open", path: temp, detail: "the temporary copy was replaced" })
      }
      writers.push(again.value)
    }
    job.tempWriters = writers
    return file
  })

/**
 * Takes away from the copy every permission bit its source no longer has (a
 * source made private while a mirror runs makes the copy private before more of
 * its bytes are copied). Bits are never added, so the umask applied at creation
 * stays applied. The file system offers no `fchmod`: the copy is changed by its
 * name, after checking that the name still leads to the copy.
 */
export const narrowCopyMode = (job: FileJob, source: FileSystem.File.Info): Effect.Effect<void, FileIoError> =>
  Effect.gen(function*() {
    const allowed = job.copyMode & source.mode & 0o777
    if (allowed === job.copyMode) return
    const temp = job.rename!.temp
    const [named, opened] = yield* io("inspect", temp, Effect.all([job.files.fs.lstat(temp), job.tempFile!.stat]))
    if (!sameFile(named, opened)) {
      return yield* new FileIoError({ operation: "chmod", path: temp, detail: "the temporary copy was replaced" })
    }
    yield* io("chmod", temp, job.files.fs.chmod(temp, allowed))
    job.copyMode = allowed
  })

/** `narrowCopyMode` against the source's permission bits now. */
export const narrowCopyToSource = (job: FileJob): Effect.Effect<void, FileIoError> =>
  Effect.flatMap(io("inspect", job.source, job.sourceFile.stat), (info) => narrowCopyMode(job, info))

/** Fails with `SourceReplaced` unless the source path still leads to the file the job opened (see `sourcePathNow`). */
export const checkSource = (job: FileJob): Effect.Effect<void, SourceReplaced | FileIoError> =>
  Effect.flatMap(
    io("inspect", job.source, sourcePathNow(job.files, job.source, job.sourceEntry, job.sourceInfo)),
    (state) => (state === "same" ? Effect.void : Effect.fail(new SourceReplaced({ path: job.source })))
  )

/**
 * Whether a file whose size is reported as 0 has content all the same (procfs
 * makes its files' content at each read): one byte is read to tell it from an
 * empty file.
 */
const hasUnreportedContent = (
  file: FileSystem.File,
  info: FileSystem.File.Info
): Effect.Effect<boolean, PlatformError.PlatformError> =>
  sizeOf(info) > 0 ? Effect.succeed(false) : Effect.map(readAt(file, new Uint8Array(1), 0, 1), (got) => got > 0)

/**
 * A mirror's extra check, before the job exists: a source whose size is
 * reported as 0 but that has content is refused (`SourceSizeUnknown`). The
 * source is opened (and one byte read) only when its size is 0.
 */
export const checkSizeReported = (
  params: FileJobParams
): Effect.Effect<void, SourceNotFound | SourceUnreadable | SourceSizeUnknown, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const files = { fs: yield* FileSystem.FileSystem, path: yield* Path.Path }
    const source = resolvePaths(files, params).source
    const unreadable = (error: PlatformError.PlatformError) =>
      isNotFound(error) ? new SourceNotFound({ path: source }) : new SourceUnreadable({ path: source, detail: describe(error) })
    const named = yield* Effect.mapError(files.fs.stat(source), unreadable)
    if (sizeOf(named) > 0) return
    const unreported = yield* Effect.mapError(
      Effect.scoped(Effect.flatMap(files.fs.open(source, { flag: "r" }), (file) =>
        Effect.flatMap(file.stat, (info) => hasUnreportedContent(file, info)))),
      unreadable
    )
    if (unreported) return yield* new SourceSizeUnknown({ path: source })
  })

/** `checkSizeReported` again at `make`, on the file opened (the path may name another file by then). */
export const refuseUnreportedSize = (job: FileJob): Effect.Effect<void, SourceSizeUnknown | FileIoError> =>
  Effect.flatMap(
    io("read", job.source, hasUnreportedContent(job.sourceFile, job.sourceInfo)),
    (unreported) => (unreported ? Effect.fail(new SourceSizeUnknown({ path: job.source })) : Effect.void)
  )

/**
 * Copies the first `size` bytes of the source into the temporary copy, chunk
 * by chunk: progress per chunk, the rate limit applied per chunk, and (through
 * the limiter's throttle) a pause point after every chunk.
 *
 * A chunk's write is started first, in pieces (`writePiece`, over the copy's
 * `writeHandles` handles), and is done before the chunk's progress update and
 * pause point; the check of the source path and the reads ahead start while it
 * is under way. The reads run `buffers.length - 1` chunks ahead of the write,
 * so that the next chunk is normally read by the time a write ends. A pause
 * settles them (`settleReadsAhead`): a paused job has no read or write under
 * way (a background fsync may be), and has read the next chunk, nothing
 * further.
 *
 * `strict` (backup): a read that ends before `size` fails with
 * `SourceTruncated`, and the source path must keep leading to the file opened.
 * Otherwise (mirror) the copy just stops at end-of-file. Returns the bytes copied.
 *
 * `size` undefined: the size is not known (procfs reports 0 for files that have
 * content), and the copy goes on until a read returns nothing; the reads then
 * go one chunk ahead only, each issued once the one before came back full. The
 * progress total grows with what was read — the chunk read ahead included —
 * and ends equal to the bytes copied.
 */
export const copyAll = (
  job: FileJob,
  handle: JobHandle,
  limiter: RateLimit.RateLimiter,
  buffers: ReadonlyArray<Uint8Array>,
  size: number | undefined,
  strict: boolean,
  /** Where the copy starts: a resumed backup's checkpoint offset (the bytes before it are in the copy). */
  from = 0,
  /** With a durable store: bytes between two checkpoints (see `copyCheckpoint.ts`). */
  checkpointEvery: number | undefined = undefined
): Effect.Effect<number, SourceTruncated | SourceReplaced | FileIoError> => {
  // Write-behind: an fsync of the copy every `flushInterval` bytes, in the background and one
  // at a time, so the disk writes overlap the copy and the fsync at `prepare` has little left.
  let flushing: Fiber.Fiber<void, FileIoError> | undefined
  let writing: Fiber.Fiber<void, FileIoError> | undefined
  const reads: ReadsAhead = { pending: [], idle: [...buffers], end: from }
  const copy = Effect.gen(function*() {
    job.readsAhead = reads
    const { idle, pending } = reads
    const temp = job.tempFile!
    const tempPath = job.rename!.temp
    const chunk = buffers[0]!.length
    const limit = size ?? Number.POSITIVE_INFINITY
    /** Of unknown size: the last read issued is not back yet, or came back short. */
    let endUnknown = false
    let offset = from
    let unflushed = 0
    /** Where the copy was when the fsync under way began: once it is done, a checkpoint there is safe. */
    let flushingAt = from
    /** The checkpoint of the last fsync is recorded (at most one per fsync). */
    let checkpointed = true
    // With checkpoints, the write-behind fsyncs come at their interval, and each one done makes the next checkpoint.
    const flushEvery = checkpointEvery ?? flushInterval

    const readChunk = (buffer: Uint8Array, at: number, want: number) =>
      io("read", job.source, readAt(job.sourceFile, buffer, at, want))
    const writers = job.tempWriters
    /** Writes `data` at `at` in pieces of `writePiece`, each handle writing every n-th piece in turn. */
    const writeChunk = (data: Uint8Array, at: number) => {
      const pieces = Math.ceil(data.length / writePiece)
      const lanes = Math.min(pieces, writers.length)
      const writeFrom = (writer: FileSystem.File, piece: number): Effect.Effect<void, PlatformError.PlatformError> => {
        if (piece >= pieces) return Effect.void
        const from = piece * writePiece
        return Effect.flatMap(
          writeAt(writer, data.subarray(from, from + writePiece), at + from),
          () => writeFrom(writer, piece + lanes)
        )
      }
      return io(
        "write",
        tempPath,
        lanes === 1
          ? writeFrom(temp, 0)
          : Effect.forEach(writers.slice(0, lanes), writeFrom, { concurrency: "unbounded", discard: true })
      )
    }
    // Rate-limited, a chunk is at most one slice's quota (but at least `minimumChunk`): the limit is
    // applied per chunk, so smaller chunks keep a slow copy smooth.
    const chunkAt = (speed: number) =>
      speed === 0 ? chunk : Math.min(chunk, Math.max(minimumChunk, RateLimit.quota(speed)))
    /** Starts reads into the idle buffers, up to `size`; of unknown size, one past the last full one. */
    const readAhead = Effect.gen(function*() {
      while (idle.length > 0 && reads.end < limit && !endUnknown) {
        const want = Math.min(chunkAt(yield* limiter.speed), limit - reads.end)
        const buffer = idle.pop()!
        const fiber = yield* Effect.forkChild(readChunk(buffer, reads.end, want), { startImmediately: true })
        pending.push({ buffer, offset: reads.end, want, fiber })
        reads.end += want
        if (size === undefined) endUnknown = true
      }
    })
    /** Of unknown size: the bytes a read got, announced in the progress total; a full read allows the next one. */
    const announce = (read: ReadAhead) =>
      Effect.flatMap(Fiber.join(read.fiber), (got) => {
        endUnknown = got < read.want
        return Effect.as(handle.increaseRemaining(got), got)
      })

    yield* readAhead
    let announced = size === undefined && pending.length > 0 ? yield* announce(pending[0]!) : undefined
    while (offset < limit) {
      const read = pending[0]!
      const got = announced ?? (yield* Fiber.join(read.fiber))
      if (got < read.want && strict && size !== undefined) {
        return yield* new SourceTruncated({ path: job.source, offset: offset + got, expected: size })
      }
      // The write is started first; the check and the reads ahead are started while it is under way.
      if (got > 0) {
        writing = yield* Effect.forkChild(writeChunk(read.buffer.subarray(0, got), offset), { startImmediately: true })
      }
      const check = strict ? yield* Effect.forkChild(checkSource(job), { startImmediately: true }) : undefined
      yield* readAhead
      if (writing !== undefined) yield* Fiber.join(writing)
      writing = undefined
      if (check !== undefined) yield* Fiber.join(check)
      pending.shift()
      idle.push(read.buffer)
      offset += got
      const last = got < read.want || offset >= limit
      // Of unknown size, the next chunk is announced before this one's progress: the total is one chunk ahead.
      if (size === undefined && !last) announced = yield* announce(pending[0]!)
      unflushed += got
      if (unflushed >= flushEvery && (flushing === undefined || flushing.pollUnsafe() !== undefined)) {
        if (flushing !== undefined) yield* Fiber.join(flushing)
        if (!checkpointed) yield* handle.checkpoint(checkpointOf(tempPath, flushingAt, job.sourceInfo))
        flushingAt = offset
        flushing = yield* Effect.forkChild(io("fsync", tempPath, temp.sync), { startImmediately: true })
        checkpointed = checkpointEvery === undefined
        unflushed = 0
      } else if (!checkpointed && flushing!.pollUnsafe() !== undefined) {
        // The fsync is done: what it covers is on disk, and the copy can go on from there after a crash.
        yield* Fiber.join(flushing!)
        checkpointed = true
        yield* handle.checkpoint(checkpointOf(tempPath, flushingAt, job.sourceInfo))
      }
      yield* handle.update(got)
      yield* limiter.processed(got)
      if (last) break
      yield* limiter.throttle
    }
    if (flushing !== undefined) yield* Fiber.join(flushing)
    return offset
  })
  // However the copy ends, the reads, the write and the fsync under way are waited for before the
  // handles can be closed.
  const underWay = (fiber: Fiber.Fiber<unknown, unknown> | undefined) =>
    fiber === undefined ? Effect.void : Fiber.await(fiber)
  return Effect.ensuring(
    copy,
    Effect.suspend(() => {
      job.readsAhead = undefined
      return Effect.andThen(
        Effect.forEach(reads.pending, (read) => underWay(read.fiber), { discard: true }),
        Effect.andThen(underWay(writing), underWay(flushing))
      )
    })
  )
}

/**
 * The drivers' `pause`, at a pause point of `copyAll`: waits for the reads
 * under way, then keeps the next chunk's and drops those beyond it (read
 * again after the resume). So a paused job has no read or write under way and
 * has read one chunk ahead of its progress, however far its reads ran.
 */
export const settleReadsAhead = (job: FileJob): Effect.Effect<void> =>
  Effect.suspend(() => {
    const reads = job.readsAhead
    if (reads === undefined) return Effect.void
    return Effect.andThen(
      Effect.forEach(reads.pending, (read) => Fiber.await(read.fiber), { discard: true }),
      Effect.sync(() => {
        for (const dropped of reads.pending.splice(1)) reads.idle.push(dropped.buffer)
        const next = reads.pending[0]
        if (next !== undefined) reads.end = next.offset + next.want
      })
    )
  })

const equalBytes = (a: Uint8Array, b: Uint8Array, length: number): boolean => {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The source now: its identity, size and modification time (for a mirror's change check). */
export interface SourceSnapshot {
  readonly info: FileSystem.File.Info
  readonly takenAt: number
}

/**
 * A mirror's look at its source before a round: the path must still lead to
 * the file opened at `make` (`SourceNotFound` when it names nothing,
 * `SourceReplaced` when it names anything else — a mirror never follows its
 * path to another file); then the open file's `fstat`.
 */
export const snapshotSource = (job: FileJob): Effect.Effect<SourceSnapshot, SourceNotFound | SourceReplaced | FileIoError> =>
  Effect.gen(function*() {
    const state = yield* io("inspect", job.source, sourcePathNow(job.files, job.source, job.sourceEntry, job.sourceInfo))
    if (state === "missing") return yield* new SourceNotFound({ path: job.source })
    if (state === "replaced") return yield* new SourceReplaced({ path: job.source })
    const info = yield* io("inspect", job.source, job.sourceFile.stat)
    return { info, takenAt: yield* Clock.currentTimeMillis }
  })

const mtimeOf = (info: FileSystem.File.Info): number => Option.match(info.mtime, { onNone: () => Number.NaN, onSome: (d) => d.getTime() })

/**
 * Whether the source may have changed since `before` (taken at the start of
 * the last round). A source modified less than a second before that snapshot
 * always counts as changed: a write landing in the same clock tick as the
 * snapshot leaves the modification time as it was.
 */
export const mayHaveChanged = (before: SourceSnapshot, now: SourceSnapshot): boolean => {
  const a = before.info
  const b = now.info
  if (!sameFile(a, b) || a.size !== b.size) return true
  const mtime = mtimeOf(a)
  if (Number.isNaN(mtime) || mtime !== mtimeOf(b)) return true
  return before.takenAt - mtime < 1000
}

/**
 * One round of a mirror, after `snapshotSource` found the path still leading
 * to the file opened: that file (read through the handle opened at `make`) is
 * compared with the copy chunk by chunk; chunks that differ (or are new) are
 * copied — each announced with `increaseRemaining` and counted with `update`,
 * rate-limited and followed by a pause point — and a copy longer than the
 * source is cut to its size. First the copy loses any permission bit the
 * source no longer has. Returns the bytes that differed.
 */
export const syncRound = (
  job: FileJob,
  handle: JobHandle,
  limiter: RateLimit.RateLimiter,
  sourceBuffer: Uint8Array,
  copyBuffer: Uint8Array
): Effect.Effect<number, FileIoError> =>
  Effect.gen(function*() {
    const temp = job.tempFile!
    const tempPath = job.rename!.temp
    const source = yield* io("inspect", job.source, job.sourceFile.stat)
    yield* narrowCopyMode(job, source)
    let size = sizeOf(source)
    let changed = 0
    let offset = 0
    while (offset < size) {
      const want = Math.min(sourceBuffer.length, size - offset)
      const got = yield* io("read", job.source, readAt(job.sourceFile, sourceBuffer, offset, want))
      const have = got === 0 ? 0 : yield* io("read", tempPath, readAt(temp, copyBuffer, offset, got))
      if (got > 0 && (have !== got || !equalBytes(sourceBuffer, copyBuffer, got))) {
        yield* handle.increaseRemaining(got)
        yield* io("write", tempPath, writeAt(temp, sourceBuffer.subarray(0, got), offset))
        yield* handle.update(got)
        yield* limiter.processed(got)
        changed += got
        yield* limiter.throttle
      } else {
        yield* handle.pausePoint
      }
      offset += got
      if (got < want) size = offset // the source shrank during the round
    }
    const copySize = sizeOf(yield* io("inspect", tempPath, temp.stat))
    if (copySize > size) {
      yield* io("truncate", tempPath, temp.truncate(size))
      changed += copySize - size
    }
    return changed
  })

/**
 * `prepare`: the copy and its name are made durable, the commit is checked to
 * be possible (a failure aborts the transaction before anything moves), and
 * its rename joins the transaction's commit.
 */
export const prepareCommit = (job: FileJob, handle: JobHandle): Effect.Effect<void, FileIoError | TargetExists | TargetNotAFile> =>
  Effect.gen(function*() {
    if (job.inPlace) return
    const rename = job.rename
    if (rename === undefined || job.tempFile === undefined) {
      // A job brought back after a restart without its copy: there is nothing to commit.
      return yield* new FileIoError({ operation: "prepare", path: job.target, detail: "the copy to commit is gone (the server stopped before it was complete)" })
    }
    yield* io("fsync", rename.temp, job.tempFile.sync)
    yield* syncDirectory(job.files, job.directory)
    yield* prepared(job.files, handle.txn, rename)
  })

/** `commit`: the copy put in place onto the target (inside the transaction's journal when it has several). */
export const commit = (job: FileJob, handle: JobHandle): Effect.Effect<void, CommitError> =>
  Effect.suspend(() => job.rename === undefined ? Effect.void : commitRename(job.files, handle.txn, job.rename))

/** `abort`: the temporary copy goes; the target was never touched. */
export const abort = (job: FileJob, handle: JobHandle): Effect.Effect<void, FileIoError> =>
  Effect.suspend(() => {
    const rename = job.rename
    if (rename === undefined) return Effect.void
    return Effect.andThen(withdraw(handle.txn, rename), removeIfPresent(job.files, rename.temp))
  })

/**
 * What both file drivers do first in `make`: check and open the files, and set
 * up the rate limiter, which follows the job's speed (`Jobs.create`'s `speed`
 * at first, then whatever `Jobs.setSpeed` sets).
 */
export const startFileJob = (
  params: FileJobParams,
  handle: JobHandle,
  options: FileDriverOptions | undefined
) =>
  Effect.gen(function*() {
    const files = { fs: yield* FileSystem.FileSystem, path: yield* Path.Path }
    const job = yield* setUp(files, params, handle.id ?? "<internal>", resumedCheckpoint(handle))
    const limiter = yield* RateLimit.make(handle)
    return { job, limiter, chunkSize: options?.chunkSize ?? defaultChunkSize }
  })

/**
 * The callbacks both file drivers share besides `run`: a pause settles the
 * copy's reads ahead (`settleReadsAhead`); the copy
 * is made durable at `prepare`, renamed into place at `commit`, removed at
 * `abort`; the files are closed at `clean` (and again, harmlessly, at `free`).
 */
export const sharedCallbacks = (job: FileJob, handle: JobHandle) => ({
  pause: settleReadsAhead(job),
  prepare: prepareCommit(job, handle),
  commit: commit(job, handle),
  abort: abort(job, handle),
  clean: release(job),
  free: release(job)
})

export const pollIntervalOf = (options: FileDriverOptions | undefined): Duration.Duration =>
  Duration.fromInputUnsafe(options?.pollInterval ?? defaultPollInterval)
