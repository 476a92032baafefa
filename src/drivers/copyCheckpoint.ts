/**
 * Where a backup or a mirror can go on from after a restart: every `checkpointInterval`
 * bytes the copy is fsynced and a checkpoint recorded (`JobHandle.checkpoint`)
 * with the temporary copy's path, the offset it holds up to, and the source's
 * identity (device, inode, size, modification time). A restarted server's
 * backup checks the source against that identity — a different file fails
 * with `SourceChanged` — and goes on writing the same temporary copy from the
 * offset.
 *
 * Only what was fsynced before the checkpoint is counted on: a crash loses at
 * most what was copied after it, which is copied again. A copy that is whole
 * (a backup's at its end, a mirror's whenever it is in sync) gets a last
 * checkpoint marked `complete`.
 * @internal
 */
import { Effect, type FileSystem, Option, Schema } from "effect"
import type { JobHandle } from "../JobHandle.ts"
import { SourceChanged } from "./errors.ts"

/** Bytes copied between two checkpoints (64 MiB): an fsync each, a small share of the copy's time. */
export const defaultCheckpointInterval = 64 * 1024 * 1024

const SourceIdentity = Schema.Struct({
  dev: Schema.Number,
  ino: Schema.Number,
  size: Schema.Number,
  mtime: Schema.Number
})

export const CopyCheckpoint = Schema.Struct({
  temp: Schema.String,
  offset: Schema.Number,
  source: SourceIdentity,
  /**
   * The copy was whole when this was taken: a job brought back WAITING or
   * PENDING commits it as it is, whatever its source has become since (a
   * mirror's source goes on changing after its completion).
   */
  complete: Schema.optionalKey(Schema.Boolean),
  /**
   * With `complete`: the copy's device and inode. A rename or a link keeps
   * them, so a restart that finds the target to be this file knows the copy
   * was put in place before the server stopped.
   */
  copy: Schema.optionalKey(Schema.Struct({ dev: Schema.Number, ino: Schema.Number }))
})

export type CopyCheckpoint = typeof CopyCheckpoint.Type

const identityOf = (info: FileSystem.File.Info): typeof SourceIdentity.Type => ({
  dev: Number(info.dev),
  ino: Option.match(info.ino, { onNone: () => -1, onSome: Number }),
  size: Number(info.size),
  mtime: Option.match(info.mtime, { onNone: () => -1, onSome: (d) => d.getTime() })
})

/** The checkpoint for a copy of `source` into `temp`, fsynced up to `offset`. */
export const checkpointOf = (temp: string, offset: number, source: FileSystem.File.Info): CopyCheckpoint => ({
  temp,
  offset,
  source: identityOf(source)
})

/** A file's device and inode, as a complete checkpoint records its copy's. */
export const fileIdentityOf = (info: FileSystem.File.Info): { readonly dev: number; readonly ino: number } => {
  const { dev, ino } = identityOf(info)
  return { dev, ino }
}

/**
 * Whether `target` is the very file a complete checkpoint's copy was: its
 * commit had put it in place when the server stopped.
 */
export const isCopyInPlace = (checkpoint: CopyCheckpoint, target: FileSystem.File.Info): boolean => {
  const copy = checkpoint.copy
  if (checkpoint.complete !== true || copy === undefined || copy.ino < 0) return false
  const now = fileIdentityOf(target)
  return target.type === "File" && now.dev === copy.dev && now.ino === copy.ino
}

/** The checkpoint a resumed job was brought back with, if it is one of ours. */
export const resumedCheckpoint = (handle: JobHandle): CopyCheckpoint | undefined => {
  const decoded = Schema.decodeUnknownOption(CopyCheckpoint)(handle.resumedFrom)
  return Option.getOrUndefined(decoded)
}

/**
 * What must not have changed for a copy to go on: for a backup, the file and
 * its content (device, inode, size, modification time); for a mirror, only the
 * file (its rounds catch up with a content that changed).
 */
export type SameSource = "file" | "content"

const identityKeys = {
  file: ["dev", "ino"],
  content: ["dev", "ino", "size", "mtime"]
} as const

/** Fails with `SourceChanged` unless `source` is the file the checkpoint was taken of (and, for `content`, unchanged). */
export const checkSameSource = (
  path: string,
  checkpoint: CopyCheckpoint,
  source: FileSystem.File.Info,
  same: SameSource
): Effect.Effect<void, SourceChanged> => {
  const now = identityOf(source)
  const was = checkpoint.source
  const changed = identityKeys[same].filter((key) => now[key] !== was[key])
  return changed.length === 0
    ? Effect.void
    : Effect.fail(
      new SourceChanged({
        path,
        detail: `its ${changed.join(", ")} ${changed.length === 1 ? "differs" : "differ"} from the checkpoint's`
      })
    )
}
