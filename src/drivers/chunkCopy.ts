/**
 * The machinery the `backup` and `mirror` drivers share: their parameters,
 * the checks made before a job exists (`check`) and again by `make` (which
 * also opens the source), the temporary copy beside the target, the chunked
 * copy loop (progress, pause points, rate limit), the compare-and-fix round of
 * a mirror, and the durable hand-over to the commit.
 * @internal
 */
import { Clock, Duration, Effect, Exit, Fiber, FileSystem, Option, Path, Schema, Scope } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import * as RateLimit from "../RateLimit.ts"
import { commitRename, prepared, recoverJournalsWith, removeStaleTempsWith, type Rename, withdraw } from "./commitJournal.ts"
import {
  type CommitJournalError,
  type FileIoError,
  type FileJobError,
  SameFile,
  SourceNotAFile,
  SourceNotFound,
  SourceReplaced,
  SourceTruncated,
  SourceUnreadable,
  TargetDirectoryNotFound,
  TargetExists,
  TargetInUse,
  TargetNotAFile
} from "./errors.ts"
import { describe, type Files, io, isNotFound, readAt, removeIfPresent, syncDirectory, writeAt } from "./fileOps.ts"
import { freshToken, liveTargets, liveTemps, tempName } from "./ownership.ts"

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
  /** Bytes per read and write (default `defaultChunkSize`). */
  readonly chunkSize?: number | undefined
  /** How often a READY mirror looks for changes in its source (default 1 second). */
  readonly pollInterval?: Duration.Input | undefined
}

/**
 * 4 MiB. Measured with bench/fileDrivers.ts (backup of 1 GiB, page-cached
 * source, ext4, 2 cores): in most runs 1 MiB chunks reached about 70 % of the
 * throughput of 4 MiB ones and 256 KiB less, while 8 MiB added nothing
 * consistent; smaller chunks keep pause, cancel and the rate limit finer. (A
 * rate-limited copy uses smaller chunks anyway: at most one slice's quota.)
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultChunkSize = 4 * 1024 * 1024

export const defaultPollInterval: Duration.Input = "1 second"

/** The smallest chunk of a rate-limited copy (QEMU's default cluster size). */
export const minimumChunk = 64 * 1024

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
  /** Permission bits of the source, given to the copy. */
  readonly mode: number
  /** Closed by `release`: every handle the job opened. */
  readonly scope: Scope.Closeable
  /** The source as opened (a sub-scope of `scope`, replaced when a mirror re-opens its source). */
  sourceFile: FileSystem.File
  sourceInfo: FileSystem.File.Info
  sourceScope: Scope.Closeable
  /** The temporary copy, once `run` created it. */
  rename: Rename | undefined
  tempFile: FileSystem.File | undefined
  released: boolean
}

const sameFile = (a: FileSystem.File.Info, b: FileSystem.File.Info): boolean =>
  a.dev === b.dev && Option.isSome(a.ino) && Option.isSome(b.ino) && a.ino.value === b.ino.value

export const sizeOf = (info: FileSystem.File.Info): number => Number(info.size)

const openSource = (files: Files, scope: Scope.Scope, source: string) =>
  Effect.gen(function*() {
    const sourceScope = yield* Scope.fork(scope, "sequential")
    const unreadable = (error: Parameters<typeof describe>[0]) =>
      isNotFound(error) ? new SourceNotFound({ path: source }) : new SourceUnreadable({ path: source, detail: describe(error) })
    const file = yield* Effect.mapError(Scope.provide(sourceScope)(files.fs.open(source, { flag: "r" })), unreadable)
    // The identity of the file opened, not of whatever the path names a moment later.
    const info = yield* Effect.mapError(file.stat, unreadable)
    if (info.type !== "File") return yield* new SourceNotAFile({ path: source })
    return { file, info, sourceScope }
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
 * is set. The source stays open (pinned) until the job is released.
 */
export const setUp = (
  files: Files,
  params: FileJobParams,
  label: string
): Effect.Effect<FileJob, SourceNotFound | SourceNotAFile | SourceUnreadable | TargetDirectoryNotFound | TargetInUse | TargetExists | TargetNotAFile | SameFile | FileIoError | CommitJournalError> =>
  Effect.gen(function*() {
    const paths = resolvePaths(files, params)
    const { source, target, directory, targetName } = paths

    yield* statSource(files, source)
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
        const opened = yield* openSource(files, scope, source)
        yield* recoverJournalsWith(files, directory)
        yield* removeStaleTempsWith(files, directory, targetName)
        yield* checkExistingTarget(files, paths, opened.info, params.overwrite)
        const job: FileJob = {
          files,
          label,
          source,
          target,
          directory,
          targetName,
          mode: opened.info.mode & 0o777,
          scope,
          sourceFile: opened.file,
          sourceInfo: opened.info,
          sourceScope: opened.sourceScope,
          rename: undefined,
          tempFile: undefined,
          released: false
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
    return Scope.close(job.scope, Exit.void)
  })

/** Creates the temporary copy beside the target (exclusively: a name is never reused). */
export const createTemp = (job: FileJob): Effect.Effect<FileSystem.File, FileIoError> =>
  Effect.gen(function*() {
    const temp = job.files.path.join(job.directory, tempName(job.targetName, freshToken()))
    liveTemps.add(temp)
    const rename: Rename = { temp, target: job.target }
    job.rename = rename
    const file = yield* io(
      "create",
      temp,
      Scope.provide(job.scope)(job.files.fs.open(temp, { flag: "wx+", mode: job.mode }))
    )
    job.tempFile = file
    return file
  })

/** Fails with `SourceReplaced` unless the source path still names the file the job opened. */
export const checkSource = (job: FileJob): Effect.Effect<void, SourceReplaced | FileIoError> =>
  Effect.flatMap(
    Effect.catch(
      Effect.map(job.files.fs.stat(job.source), Option.some),
      (error) =>
        isNotFound(error) ? Effect.succeed(Option.none<FileSystem.File.Info>()) : io("inspect", job.source, Effect.fail(error))
    ),
    (now) =>
      Option.isSome(now) && sameFile(now.value, job.sourceInfo)
        ? Effect.void
        : Effect.fail(new SourceReplaced({ path: job.source }))
  )

/**
 * Copies the first `size` bytes of the source into the temporary copy, chunk
 * by chunk: progress per chunk, the rate limit applied per chunk, and (through
 * the limiter's throttle) a pause point after every chunk. The read of the
 * next chunk overlaps the write of the current one (two buffers); both are
 * done before the progress update, so no read or write is under way at a
 * pause point (a background fsync may be).
 *
 * `strict` (backup): a read that ends before `size` fails with
 * `SourceTruncated`, and the source path must keep naming the file opened.
 * Otherwise (mirror) the copy just stops at end-of-file. Returns the bytes copied.
 */
export const copyAll = (
  job: FileJob,
  handle: JobHandle,
  limiter: RateLimit.RateLimiter,
  buffers: readonly [Uint8Array, Uint8Array],
  size: number,
  strict: boolean
): Effect.Effect<number, SourceTruncated | SourceReplaced | FileIoError> => {
  // Write-behind: an fsync of the copy every `flushInterval` bytes, in the background and one
  // at a time, so the disk writes overlap the copy and the fsync at `prepare` has little left.
  // However the copy ends, the fsync under way is waited for before the handle can be closed.
  let flushing: Fiber.Fiber<void, FileIoError> | undefined
  const copy = Effect.gen(function*() {
    const temp = job.tempFile!
    const tempPath = job.rename!.temp
    const chunk = buffers[0].length
    // Rate-limited, a chunk is at most one slice's quota (but at least `minimumChunk`): the limit is
    // applied per chunk, so smaller chunks keep a slow copy smooth.
    const step = Effect.map(limiter.speed, (speed) =>
      speed === 0 ? chunk : Math.min(chunk, Math.max(minimumChunk, RateLimit.quota(speed))))
    const read = (buffer: Uint8Array, offset: number, length: number) =>
      length === 0 ? Effect.succeed(0) : io("read", job.source, readAt(job.sourceFile, buffer, offset, length))
    let current = buffers[0]
    let next = buffers[1]
    let offset = 0
    let unflushed = 0
    let want = Math.min(yield* step, size)
    let got = yield* read(current, 0, want)
    while (offset < size) {
      if (got < want && strict) {
        return yield* new SourceTruncated({ path: job.source, offset: offset + got, expected: size })
      }
      const nextOffset = offset + got
      const nextWant = got < want ? 0 : Math.min(yield* step, size - nextOffset)
      const [, gotNext] = yield* Effect.all([
        got === 0
          ? Effect.void
          : io("write", tempPath, writeAt(temp, got === current.length ? current : current.subarray(0, got), offset)),
        read(next, nextOffset, nextWant),
        strict ? checkSource(job) : Effect.void
      ], { concurrency: "unbounded" })
      offset = nextOffset
      unflushed += got
      if (unflushed >= flushInterval && (flushing === undefined || flushing.pollUnsafe() !== undefined)) {
        if (flushing !== undefined) yield* Fiber.join(flushing)
        flushing = yield* Effect.forkChild(io("fsync", tempPath, temp.sync), { startImmediately: true })
        unflushed = 0
      }
      yield* handle.update(got)
      yield* limiter.processed(got)
      if (got < want) break
      yield* limiter.throttle
      const written = current
      current = next
      next = written
      got = gotNext
      want = nextWant
    }
    if (flushing !== undefined) yield* Fiber.join(flushing)
    return offset
  })
  return Effect.ensuring(copy, Effect.suspend(() => (flushing === undefined ? Effect.void : Fiber.await(flushing))))
}

const equalBytes = (a: Uint8Array, b: Uint8Array, length: number): boolean => {
  for (let i = 0; i < length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The source's path now: its identity, size and modification time (for a mirror's change check). */
export interface SourceSnapshot {
  readonly info: FileSystem.File.Info
  readonly takenAt: number
}

export const snapshotSource = (job: FileJob): Effect.Effect<SourceSnapshot, SourceNotFound | FileIoError> =>
  Effect.gen(function*() {
    const info = yield* Effect.catch(
      job.files.fs.stat(job.source),
      (error): Effect.Effect<never, SourceNotFound | FileIoError> =>
        isNotFound(error) ? Effect.fail(new SourceNotFound({ path: job.source })) : io("inspect", job.source, Effect.fail(error))
    )
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
 * One round of a mirror: the source (re-opened if its path now names another
 * file) is compared with the copy chunk by chunk; chunks that differ (or are
 * new) are copied — each announced with `increaseRemaining` and counted with
 * `update`, rate-limited and followed by a pause point — and a copy longer than
 * the source is cut to its size. Returns the bytes that differed.
 */
export const syncRound = (
  job: FileJob,
  handle: JobHandle,
  limiter: RateLimit.RateLimiter,
  sourceBuffer: Uint8Array,
  copyBuffer: Uint8Array,
  snapshot: SourceSnapshot
): Effect.Effect<number, SourceNotFound | SourceNotAFile | SourceUnreadable | FileIoError> =>
  Effect.gen(function*() {
    if (!sameFile(snapshot.info, job.sourceInfo)) {
      // Replaced (e.g. saved by an editor through a rename): mirror the file the path names now.
      const old = job.sourceScope
      const opened = yield* openSource(job.files, job.scope, job.source)
      job.sourceFile = opened.file
      job.sourceInfo = opened.info
      job.sourceScope = opened.sourceScope
      yield* Scope.close(old, Exit.void)
    }
    const temp = job.tempFile!
    const tempPath = job.rename!.temp
    let size = sizeOf(yield* io("inspect", job.source, job.sourceFile.stat))
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

/** `prepare`: the copy and its name are made durable, and its rename joins the transaction's commit. */
export const prepareCommit = (job: FileJob, handle: JobHandle): Effect.Effect<void, FileIoError> =>
  Effect.gen(function*() {
    const rename = job.rename!
    yield* io("fsync", rename.temp, job.tempFile!.sync)
    yield* syncDirectory(job.files, job.directory)
    yield* prepared(handle.txn, rename)
  })

/** `commit`: the atomic rename onto the target (inside the transaction's journal when it has several). */
export const commit = (job: FileJob, handle: JobHandle): Effect.Effect<void, FileIoError | CommitJournalError> =>
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
    const job = yield* setUp(files, params, handle.id ?? "<internal>")
    const limiter = yield* RateLimit.make(handle)
    return { job, limiter, chunkSize: options?.chunkSize ?? defaultChunkSize }
  })

/**
 * The callbacks both file drivers share once the copy exists: the copy is made
 * durable at `prepare`, renamed into place at `commit`, removed at `abort`; the
 * files are closed at `clean` (and again, harmlessly, at `free`).
 */
export const finalizationCallbacks = (job: FileJob, handle: JobHandle) => ({
  prepare: prepareCommit(job, handle),
  commit: commit(job, handle),
  abort: abort(job, handle),
  clean: release(job),
  free: release(job)
})

export const pollIntervalOf = (options: FileDriverOptions | undefined): Duration.Duration =>
  Duration.fromInputUnsafe(options?.pollInterval ?? defaultPollInterval)
