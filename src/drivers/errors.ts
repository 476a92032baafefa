/**
 * The errors of the file drivers (`backup`, `mirror`) and of commit-journal
 * recovery. Each names the path it is about in its message, which is what a
 * failed `create` (`JobSetupFailed`) or a failed job reports.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The source does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceNotFound extends Schema.TaggedError<SourceNotFound>()("SourceNotFound", { path: Schema.String }) {
  override get message() {
    return `Source file '${this.path}' does not exist`
  }
}

/**
 * The source is not a regular file (a directory, a device, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceNotAFile extends Schema.TaggedError<SourceNotAFile>()("SourceNotAFile", { path: Schema.String }) {
  override get message() {
    return `Source '${this.path}' is not a regular file`
  }
}

/**
 * The source exists but cannot be opened or read.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceUnreadable extends Schema.TaggedError<SourceUnreadable>()("SourceUnreadable", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Cannot read source file '${this.path}': ${this.detail}`
  }
}

/**
 * The directory the target would be created in does not exist (or is not a directory).
 *
 * @since 0.1.0
 * @category errors
 */
export class TargetDirectoryNotFound extends Schema.TaggedError<TargetDirectoryNotFound>()(
  "TargetDirectoryNotFound",
  { path: Schema.String, target: Schema.String }
) {
  override get message() {
    return `Target directory '${this.path}' does not exist (target '${this.target}')`
  }
}

/**
 * The target exists and `overwrite` was not set.
 *
 * @since 0.1.0
 * @category errors
 */
export class TargetExists extends Schema.TaggedError<TargetExists>()("TargetExists", { path: Schema.String }) {
  override get message() {
    return `Target '${this.path}' already exists (pass overwrite: true to replace it)`
  }
}

/**
 * The target exists and is not a regular file: it is never replaced.
 *
 * @since 0.1.0
 * @category errors
 */
export class TargetNotAFile extends Schema.TaggedError<TargetNotAFile>()("TargetNotAFile", { path: Schema.String }) {
  override get message() {
    return `Target '${this.path}' exists and is not a regular file`
  }
}

/**
 * Source and target are the same file (the same path, a hard link, or a symbolic link to it).
 *
 * @since 0.1.0
 * @category errors
 */
export class SameFile extends Schema.TaggedError<SameFile>()("SameFile", {
  source: Schema.String,
  target: Schema.String
}) {
  override get message() {
    return `Source '${this.source}' and target '${this.target}' are the same file`
  }
}

/**
 * Another job of this process is already writing the target.
 *
 * @since 0.1.0
 * @category errors
 */
export class TargetInUse extends Schema.TaggedError<TargetInUse>()("TargetInUse", {
  path: Schema.String,
  job: Schema.String
}) {
  override get message() {
    return `Target '${this.path}' is already being written by job '${this.job}'`
  }
}

/**
 * A read returned end-of-file before the size the copy started with.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceTruncated extends Schema.TaggedError<SourceTruncated>()("SourceTruncated", {
  path: Schema.String,
  offset: Schema.Number,
  expected: Schema.Number
}) {
  override get message() {
    return `Source file '${this.path}' was truncated during the copy: end of file at byte ${this.offset}, expected ${this.expected} bytes`
  }
}

/**
 * The source path no longer leads to the file the job opened at `make` (it was
 * replaced, by a rename or a symbolic link, or removed): a backup copying it or
 * a mirror about to compare it stops rather than read another file.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceReplaced extends Schema.TaggedError<SourceReplaced>()("SourceReplaced", { path: Schema.String }) {
  override get message() {
    return `Source file '${this.path}' was replaced or removed during the copy`
  }
}

/**
 * After a restart, the source is no longer the file a backup was copying (its
 * device, inode, size or modification time differ from those its checkpoint
 * recorded): going on would join two different files, so the backup fails.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceChanged extends Schema.TaggedError<SourceChanged>()("SourceChanged", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Source file '${this.path}' changed while the server was stopped (${this.detail}): the copy cannot go on`
  }
}

/**
 * The source reports a size of 0 yet has content: a file whose content the
 * system makes at each read (procfs). A backup reads such a file to its end; a
 * mirror refuses it, since two reads never agree and no round could converge.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceSizeUnknown extends Schema.TaggedError<SourceSizeUnknown>()("SourceSizeUnknown", {
  path: Schema.String
}) {
  override get message() {
    return `Source file '${this.path}' reports a size of 0 but has content (a procfs-like file, whose content is made at each read): it cannot be mirrored; back it up instead`
  }
}

/**
 * An I/O operation failed; `operation` says which (read, write, fsync, rename, …).
 *
 * @since 0.1.0
 * @category errors
 */
export class FileIoError extends Schema.TaggedError<FileIoError>()("FileIoError", {
  operation: Schema.String,
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Cannot ${this.operation} '${this.path}': ${this.detail}`
  }
}

/**
 * A commit journal could not be read, decoded or carried out.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommitJournalError extends Schema.TaggedError<CommitJournalError>()("CommitJournalError", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message() {
    return `Commit journal '${this.path}': ${this.detail}`
  }
}

/**
 * Every error a file driver reports.
 *
 * @since 0.1.0
 * @category models
 */
export type FileJobError =
  | SourceNotFound
  | SourceNotAFile
  | SourceUnreadable
  | TargetDirectoryNotFound
  | TargetExists
  | TargetNotAFile
  | SameFile
  | TargetInUse
  | SourceTruncated
  | SourceReplaced
  | SourceChanged
  | SourceSizeUnknown
  | FileIoError
  | CommitJournalError
