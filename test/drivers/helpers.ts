/**
 * Shared set-up for the file-driver tests: temporary directories, file
 * contents and hashes, the layers, and a synchronous `FileSystem` over the
 * real files.
 *
 * Why a synchronous one: Node's `FileSystem` completes its I/O on libuv's
 * thread pool, outside the fibers `TestClock.adjust` waits for, so a test
 * cannot know when a job has reached its next sleep. The synchronous one does
 * the same system calls (on the same real files) inside `Effect.sync`, so a
 * job runs, under `TestClock`, exactly until it sleeps — which makes rate-limit
 * schedules and mirror rounds exact.
 */
import { NodeServices } from "@effect/platform-node"
import { ByteSize, Clock, Effect, FileSystem, Layer, Option, Path, PlatformError, Scope } from "effect"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as FileDrivers from "../../src/drivers/layer.ts"
import type { FileDriverOptions } from "../../src/drivers/chunkCopy.ts"
import * as Jobs from "../../src/Jobs.ts"

export const KiB = 1024
export const MiB = 1024 * KiB

/** The chunk size most tests use, so that multi-chunk files stay small. */
export const chunk = 64 * KiB

/** A fresh directory under the OS's temporary directory, removed with its contents when the scope closes. */
export const tempDir: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(join(tmpdir(), "effect-jobs-drivers-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** `size` pseudo-random bytes (a different sequence per seed). */
export const bytes = (size: number, seed = 1): Buffer => {
  const out = Buffer.allocUnsafe(size)
  let x = (seed * 2654435761) >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    out[i] = x & 255
  }
  return out
}

export const writeFile = (path: string, data: Uint8Array): void => fs.writeFileSync(path, data)

/** SHA-256 of a file's content, or `undefined` when there is no such file. */
export const hashOf = (path: string): string | undefined =>
  fs.existsSync(path) ? createHash("sha256").update(fs.readFileSync(path)).digest("hex") : undefined

export const hashBytes = (data: Uint8Array): string => createHash("sha256").update(data).digest("hex")

/** The entries of a directory, sorted. */
export const entries = (dir: string): Array<string> => fs.readdirSync(dir).sort()

/** Temporary copies (by their recognisable names) in a directory. */
export const temps = (dir: string): Array<string> => entries(dir).filter((n) => /\.effect-jobs-\d+-[0-9a-z]+\.tmp$/.test(n))

/** Commit journals (complete or half-written) in a directory. */
export const journals = (dir: string): Array<string> => entries(dir).filter((n) => n.includes(".commit-journal"))

/** A process id that cannot belong to a running process (above Linux's largest `pid_max`). */
export const deadPid = 4_194_399

/** `Jobs` and both file drivers over Node's file system. */
export const nodeLayer = (options: FileDriverOptions = { chunkSize: chunk }) =>
  FileDrivers.layerWith(options).pipe(Layer.provideMerge(Layer.mergeAll(Jobs.layer, NodeServices.layer)))

/** `Jobs` and both file drivers over a given `FileSystem` (and the POSIX `Path`). */
export const layerOver = <J = Jobs.Jobs>(
  fileSystem: Layer.Layer<FileSystem.FileSystem>,
  options: FileDriverOptions = { chunkSize: chunk },
  jobs: Layer.Layer<J> = Jobs.layer as Layer.Layer<J>
) => FileDrivers.layerWith(options).pipe(Layer.provideMerge(Layer.mergeAll(jobs, fileSystem, Path.layer)))

/** Node's `FileSystem` with some operations replaced. */
export const nodeFsWith = (
  change: (fs: FileSystem.FileSystem) => Partial<FileSystem.FileSystem>
): Layer.Layer<FileSystem.FileSystem> =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(Effect.service(FileSystem.FileSystem), (fs) => FileSystem.FileSystem.of({ ...fs, ...change(fs) }))
  ).pipe(Layer.provide(NodeServices.layer))

// ---------------------------------------------------------------------------
// A synchronous FileSystem over the real files.

const failure = (method: string, path: string | number, error: unknown): PlatformError.PlatformError => {
  const code = (error as { code?: string }).code
  const tag: PlatformError.SystemErrorTag = code === "ENOENT"
    ? "NotFound"
    : code === "EEXIST"
    ? "AlreadyExists"
    : code === "EACCES" || code === "EPERM"
    ? "PermissionDenied"
    : "Unknown"
  return PlatformError.systemError({ _tag: tag, module: "FileSystem", method, pathOrDescriptor: path, cause: error })
}

const attempt = <A>(method: string, path: string | number, f: () => A): Effect.Effect<A, PlatformError.PlatformError> =>
  Effect.try({ try: f, catch: (error) => failure(method, path, error) })

const info = (s: fs.BigIntStats): FileSystem.File.Info => ({
  type: s.isFile() ? "File" : s.isDirectory() ? "Directory" : s.isSymbolicLink() ? "SymbolicLink" : "Unknown",
  mtime: Option.some(s.mtime),
  atime: Option.some(s.atime),
  birthtime: Option.some(s.birthtime),
  dev: s.dev,
  ino: Option.some(s.ino),
  mode: Number(s.mode),
  nlink: Option.some(s.nlink),
  uid: Option.some(Number(s.uid)),
  gid: Option.some(Number(s.gid)),
  rdev: Option.some(s.rdev),
  size: ByteSize.bytes(s.size),
  blksize: Option.some(ByteSize.bytes(s.blksize)),
  blocks: Option.some(s.blocks)
})

/** Every write to a file whose name matches, with the Clock time it happened at. */
export interface WriteLog {
  readonly writes: Array<{ readonly at: number; readonly offset: number; readonly length: number }>
}

const makeFile = (fd: number, log: ((offset: number, length: number) => Effect.Effect<void>) | undefined): FileSystem.File => {
  let position = 0
  const file: FileSystem.File = {
    [FileSystem.FileTypeId]: FileSystem.FileTypeId,
    stat: attempt("stat", fd, () => info(fs.fstatSync(fd, { bigint: true }))),
    seek: (offset) =>
      Effect.sync(() => {
        position = Number(offset)
        return offset
      }),
    sync: attempt("sync", fd, () => fs.fsyncSync(fd)),
    read: (buffer, options) =>
      attempt("read", fd, () => {
        const at = options?.position === undefined ? position : Number(options.position)
        const got = fs.readSync(fd, buffer, 0, buffer.length, at)
        if (options?.position === undefined) position += got
        return got
      }),
    readAlloc: () => Effect.die("not implemented"),
    truncate: (length) => attempt("truncate", fd, () => fs.ftruncateSync(fd, length ?? 0)),
    write: (buffer) =>
      attempt("write", fd, () => {
        const n = fs.writeSync(fd, buffer, 0, buffer.length, position)
        position += n
        return n
      }),
    writeAll: (buffer) =>
      Effect.andThen(
        Effect.suspend(() => (log === undefined ? Effect.void : log(position, buffer.length))),
        attempt("writeAll", fd, () => {
          let done = 0
          while (done < buffer.length) done += fs.writeSync(fd, buffer, done, buffer.length - done, position + done)
          position += done
        })
      )
  }
  return file
}

/**
 * The synchronous `FileSystem` (what the drivers use of it). Writes to files
 * whose path matches `logWrites` are recorded in the returned log.
 */
export const syncFs = (logWrites?: RegExp): { readonly layer: Layer.Layer<FileSystem.FileSystem>; readonly log: WriteLog } => {
  const log: WriteLog = { writes: [] }
  const record = (path: string) =>
    logWrites !== undefined && logWrites.test(path)
      ? (offset: number, length: number) =>
        Effect.map(Clock.currentTimeMillis, (at) => void log.writes.push({ at, offset, length }))
      : undefined
  const impl = FileSystem.makeNoop({
    access: (path, options) =>
      attempt("access", path, () =>
        fs.accessSync(path, (options?.readable ? fs.constants.R_OK : 0) | (options?.writable ? fs.constants.W_OK : 0))),
    stat: (path) => attempt("stat", path, () => info(fs.statSync(path, { bigint: true }))),
    lstat: (path) => attempt("lstat", path, () => info(fs.lstatSync(path, { bigint: true }))),
    open: (path, options) =>
      Effect.map(
        Effect.acquireRelease(
          attempt("open", path, () => fs.openSync(path, options?.flag ?? "r", options?.mode)),
          (fd) => Effect.sync(() => fs.closeSync(fd))
        ),
        (fd) => makeFile(fd, record(path))
      ),
    rename: (from, to) => attempt("rename", from, () => fs.renameSync(from, to)),
    link: (from, to) => attempt("link", from, () => fs.linkSync(from, to)),
    remove: (path, options) => attempt("remove", path, () => fs.rmSync(path, { force: options?.force ?? false, recursive: options?.recursive ?? false })),
    readDirectory: (path) => attempt("readDirectory", path, () => fs.readdirSync(path)),
    readFileString: (path) => attempt("readFile", path, () => fs.readFileSync(path, "utf8")),
    readFile: (path) => attempt("readFile", path, () => new Uint8Array(fs.readFileSync(path)))
  })
  return { layer: Layer.succeed(FileSystem.FileSystem, impl), log }
}
