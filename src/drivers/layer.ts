/**
 * The file drivers together: `backup` and `mirror`, registered with `Jobs`,
 * needing a `FileSystem` and a `Path` (on Node: `NodeServices.layer` from
 * `@effect/platform-node`), plus what a server runs at start to finish
 * interrupted commits. See docs/drivers.md.
 *
 * @since 0.1.0
 */
import { type FileSystem, Layer, type Path } from "effect"
import type { Jobs } from "../Jobs.ts"
import * as Backup from "./backup.ts"
import type { FileDriverOptions } from "./chunkCopy.ts"
import * as Mirror from "./mirror.ts"

export * as Backup from "./backup.ts"
export { BackupDriver } from "./backup.ts"
export { defaultChunkSize, type FileDriverOptions, FileJobParams } from "./chunkCopy.ts"
export { defaultCheckpointInterval } from "./copyCheckpoint.ts"
export { recoverDirectory, recoverJournals, type RecoveryReport, removeStaleTemps } from "./commitJournal.ts"
export * from "./errors.ts"
export * as Mirror from "./mirror.ts"
export { MirrorDriver } from "./mirror.ts"

/**
 * Registers the `backup` and `mirror` job types.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> = Layer.mergeAll(
  Backup.layer,
  Mirror.layer
)

/**
 * Both drivers with the given tuning (chunk size, a mirror's poll interval).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: FileDriverOptions
): Layer.Layer<never, never, Jobs | FileSystem.FileSystem | Path.Path> =>
  Layer.mergeAll(Backup.layerWith(options), Mirror.layerWith(options))
