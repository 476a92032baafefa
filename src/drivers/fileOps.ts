/**
 * Small file-system steps shared by the file drivers and the commit journal,
 * with platform failures turned into `FileIoError`s that name the path.
 * @internal
 */
import { Effect, type FileSystem, Option, type Path, type PlatformError } from "effect"
import { FileIoError } from "./errors.ts"

/** The services every file step needs, obtained once by a driver's `make`. */
export interface Files {
  readonly fs: FileSystem.FileSystem
  readonly path: Path.Path
}

/** The OS's own words when there are some (`ENOSPC: no space left on device, write`), else the error's. */
export const describe = (error: PlatformError.PlatformError): string => {
  const cause = error.reason.cause
  if (cause instanceof Error && cause.message.length > 0) return cause.message
  return error.reason.message
}

export const isNotFound = (error: PlatformError.PlatformError): boolean =>
  error.reason._tag === "NotFound"

/**
 * Runs a platform step, reporting its failure as `Cannot <operation> '<path>': <detail>`.
 * Uninterruptible: a cancel waits for the system call under way (one chunk at most), so a
 * handle is never closed — and its descriptor number reused — under a read or write still queued.
 */
export const io = <A>(
  operation: string,
  path: string,
  effect: Effect.Effect<A, PlatformError.PlatformError>
): Effect.Effect<A, FileIoError> =>
  Effect.uninterruptible(Effect.mapError(effect, (error) => new FileIoError({ operation, path, detail: describe(error) })))

/** fsync of a directory, which makes the names created, renamed or removed in it durable. */
export const syncDirectory = (files: Files, directory: string): Effect.Effect<void, FileIoError> =>
  io(
    "fsync directory",
    directory,
    Effect.scoped(Effect.flatMap(files.fs.open(directory, { flag: "r" }), (handle) => handle.sync))
  )

/** `syncDirectory`, unless the directory is gone (nothing left there to make durable). */
export const syncDirectoryIfPresent = (files: Files, directory: string): Effect.Effect<void, FileIoError> =>
  Effect.catch(syncDirectory(files, directory), (error) =>
    Effect.flatMap(exists(files, directory), (present) => (present ? Effect.fail(error) : Effect.void)))

/** Whether a path exists (without following a final symbolic link). */
export const exists = (files: Files, path: string): Effect.Effect<boolean, FileIoError> =>
  Effect.catch(
    Effect.as(files.fs.lstat(path), true),
    (error) => isNotFound(error) ? Effect.succeed(false) : Effect.fail(new FileIoError({ operation: "inspect", path, detail: describe(error) }))
  )

/** What `lstat` says of a path (not following a final symbolic link), or none if nothing is there. */
export const lstatIfPresent = (
  files: Files,
  path: string
): Effect.Effect<Option.Option<FileSystem.File.Info>, FileIoError> =>
  Effect.catch(
    Effect.map(files.fs.lstat(path), Option.some),
    (error) =>
      isNotFound(error)
        ? Effect.succeed(Option.none())
        : Effect.fail(new FileIoError({ operation: "inspect", path, detail: describe(error) }))
  )

/** Whether two `stat` results are of the same file (device and inode). */
export const sameFile = (a: FileSystem.File.Info, b: FileSystem.File.Info): boolean =>
  a.dev === b.dev && Option.isSome(a.ino) && Option.isSome(b.ino) && a.ino.value === b.ino.value

/** Removes a file; a file that is already gone is fine. */
export const removeIfPresent = (files: Files, path: string): Effect.Effect<void, FileIoError> =>
  io("remove", path, files.fs.remove(path, { force: true }))

/**
 * Reads `length` bytes at `offset` into the start of `buffer`, reading again
 * after short reads; returns fewer only at end-of-file.
 */
export const readAt = (
  file: FileSystem.File,
  buffer: Uint8Array,
  offset: number,
  length: number
): Effect.Effect<number, PlatformError.PlatformError> =>
  Effect.flatMap(file.read(buffer.subarray(0, length), { position: BigInt(offset) }), (got) =>
    got === length || got === 0
      ? Effect.succeed(got)
      : Effect.map(readAt(file, buffer.subarray(got), offset + got, length - got), (more) => got + more))

/** Writes all of `data` at `offset`. */
export const writeAt = (
  file: FileSystem.File,
  data: Uint8Array,
  offset: number
): Effect.Effect<void, PlatformError.PlatformError> =>
  Effect.andThen(file.seek(BigInt(offset), "start"), file.writeAll(data))
