/**
 * A file handle that is `file` in every way except its writes, which go
 * through `write` and `writeAll` as given: a test counts or announces what a
 * driver writes without touching the driver.
 */
import { FileSystem } from "effect"

type Write = FileSystem.File["write"]
type WriteAll = FileSystem.File["writeAll"]

export const fileWithWrites = (
  file: FileSystem.File,
  writes: {
    readonly write?: (buffer: Uint8Array, inner: Write) => ReturnType<Write>
    readonly writeAll?: (buffer: Uint8Array, inner: WriteAll) => ReturnType<WriteAll>
  }
): FileSystem.File => ({
  [FileSystem.FileTypeId]: FileSystem.FileTypeId,
  get stat() {
    return file.stat
  },
  get sync() {
    return file.sync
  },
  seek: (offset, from) => file.seek(offset, from),
  read: (buffer, options) => file.read(buffer, options),
  readAlloc: (length, options) => file.readAlloc(length, options),
  truncate: (length) => file.truncate(length),
  write: (buffer) => (writes.write === undefined ? file.write(buffer) : writes.write(buffer, (b) => file.write(b))),
  writeAll: (buffer) =>
    writes.writeAll === undefined ? file.writeAll(buffer) : writes.writeAll(buffer, (b) => file.writeAll(b))
})
