/**
 * Newline-delimited framing with a length cap. Bytes arrive in arbitrary
 * chunks; complete lines come out, without their `\n`. A line longer than the
 * cap is never buffered whole: as soon as the pending part passes the cap the
 * splitter reports `TooLong` once and ignores everything after it (the
 * connection is to be closed).
 */

/** The largest message accepted, in bytes (without its newline). */
export const maxLineBytes = 1024 * 1024

export type Frame =
  | { readonly _tag: "Line"; readonly bytes: Uint8Array }
  | { readonly _tag: "TooLong" }

const tooLong: Frame = { _tag: "TooLong" }

export class LineSplitter {
  readonly maxBytes: number
  private parts: Array<Uint8Array> = []
  private size = 0
  private overflowed = false

  constructor(maxBytes: number = maxLineBytes) {
    this.maxBytes = maxBytes
  }

  /** Whether a line went over the cap (nothing more comes out). */
  get failed(): boolean {
    return this.overflowed
  }

  private take(last: Uint8Array): Uint8Array {
    if (this.parts.length === 0) return last
    const out = new Uint8Array(this.size + last.length)
    let offset = 0
    for (const part of this.parts) {
      out.set(part, offset)
      offset += part.length
    }
    out.set(last, offset)
    this.parts = []
    this.size = 0
    return out
  }

  /** The frames completed by `chunk`. */
  push(chunk: Uint8Array): Array<Frame> {
    const frames: Array<Frame> = []
    if (this.overflowed) return frames
    let start = 0
    while (start <= chunk.length) {
      const newline = chunk.indexOf(0x0a, start)
      if (newline === -1) {
        const rest = chunk.subarray(start)
        if (this.size + rest.length > this.maxBytes) {
          this.overflow(frames)
        } else if (rest.length > 0) {
          this.parts.push(rest)
          this.size += rest.length
        }
        return frames
      }
      const piece = chunk.subarray(start, newline)
      if (this.size + piece.length > this.maxBytes) {
        this.overflow(frames)
        return frames
      }
      frames.push({ _tag: "Line", bytes: this.take(piece) })
      start = newline + 1
    }
    return frames
  }

  /** The end of input: an unterminated last line still counts. */
  end(): Array<Frame> {
    if (this.overflowed || this.size === 0) return []
    return [{ _tag: "Line", bytes: this.take(new Uint8Array(0)) }]
  }

  private overflow(frames: Array<Frame>): void {
    this.overflowed = true
    this.parts = []
    this.size = 0
    frames.push(tooLong)
  }
}
