/**
 * Framing: where one message ends and the next begins.
 *
 * `MessageScanner` reads what a client sends as a stream of JSON objects, the
 * way QEMU's JSON streamer does: a message is an object, and it ends at the
 * brace that closes it (strings, with their escapes, and the nesting of `{}`
 * and `[]` are followed byte by byte). Whitespace, newlines or nothing at all
 * may separate two messages, and a message may arrive in any number of pieces.
 * QEMU's client library, for one, writes its messages with no newline.
 *
 * Where QEMU's lexer gets back in step after bad input at the next bracket,
 * comma or control character, the scanner does so at the next newline, so
 * that a line of bad input costs one error reply and never the next line:
 * - an object still open at a newline ends there, and is refused as
 *   incomplete; one with a bracket that closes nothing is read to the end of
 *   its line, and refused;
 * - anything else that begins a line (a bare number or string, a stray
 *   bracket, garbage) is one bad message that runs to the end of the line;
 * - after a message, anything on the same line that is neither whitespace nor
 *   another object is skipped, up to the newline, without a reply.
 *
 * Neither limit needs more than the cap of one message in memory: a message
 * over the size cap is reported as soon as the bytes past the cap arrive,
 * with its first `maxBytes` bytes (so that its `id` can still be found), and
 * nothing after it comes out; a message nested deeper than QEMU's limit is
 * reported at once, and the rest of it is read and dropped, not kept.
 *
 * What a scanner holds between chunks — the start of a message whose end has
 * not arrived — costs about its own size: a piece that is most of the buffer
 * it came in is kept as it is (no copy), smaller ones are copied together
 * into small blocks (so a message sent a byte at a time costs its bytes, not
 * a buffer per byte). That memory may be charged to an `InputBudget` shared
 * by every connection: once the budget is spent, the scanner reports
 * `OverBudget` and stops, as it does for an over-long message.
 *
 * `looksLikeHttpRequest` tells a connection whose first message is an HTTP
 * request line (a web page posting to the port) from QMP, which always
 * begins with `{`.
 *
 * `LineSplitter` is the plain newline framing of what the server writes (one
 * JSON object per line), for the client.
 */

/** The largest message accepted, in bytes. */
export const maxLineBytes = 1024 * 1024

/** QEMU's JSON parser refuses `{}` and `[]` nested deeper than this. */
export const maxNesting = 1024

export type MessageFrame =
  /** One message: an object, an object cut short by a newline, or a bad line. */
  | { readonly _tag: "Message"; readonly bytes: Uint8Array }
  /** A message nested deeper than the limit (the rest of it is dropped). */
  | { readonly _tag: "TooDeep" }
  /** A message over the size cap: its first `maxBytes` bytes. Nothing comes out after it. */
  | { readonly _tag: "TooLong"; readonly head: Uint8Array }
  /** Keeping the rest of an unfinished message would overspend the budget. Nothing comes out after it. */
  | { readonly _tag: "OverBudget" }

const tooDeep: MessageFrame = { _tag: "TooDeep" }
const overBudget: MessageFrame = { _tag: "OverBudget" }

/**
 * Bytes that the scanners of every connection may hold for unfinished
 * messages, together. A scanner takes from it as its buffer grows and gives
 * back when the message completes or the connection ends.
 */
export class InputBudget {
  readonly limit: number
  private used = 0

  constructor(limit: number) {
    this.limit = limit
  }

  /** Bytes held now, by every scanner. */
  get held(): number {
    return this.used
  }

  /** Takes `bytes` if they fit; false (and nothing taken) if they do not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false
    this.used += bytes
    return true
  }

  give(bytes: number): void {
    this.used -= bytes
  }
}

/**
 * An HTTP request line: a method (an HTTP token), one space, a target, one
 * space, `HTTP/` and a digit — `POST / HTTP/1.1`, `OPTIONS * HTTP/1.1`,
 * `PRI * HTTP/2.0`. None of its characters can begin a JSON object.
 */
const httpRequestLine = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ [^\s]+ HTTP\/\d/

/** Whether a message (the first of a connection) is an HTTP request line. */
export const looksLikeHttpRequest = (message: Uint8Array): boolean =>
  message[0] !== OPEN_BRACE && httpRequestLine.test(latin1.decode(message)) // an object is never decoded

const latin1 = new TextDecoder("latin1")

const LF = 0x0a
const CR = 0x0d
const TAB = 0x09
const SPACE = 0x20
const DOUBLE_QUOTE = 0x22
const SINGLE_QUOTE = 0x27 // QEMU's parser also reads 'single-quoted' strings
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/** What the scanner is in the middle of: a message … */
const OBJECT = 0 // one that began with `{`
const BAD_LINE = 1 // one that began a line with anything else: it runs to the newline
/** … or the space between two messages (every state from here on): */
const LINE_START = 2 // at the start of a line (or of the input)
const AFTER_MESSAGE = 3 // after a message, on the same line
const SKIPPING = 4 // garbage after a message, skipped up to the newline
type Reading = typeof OBJECT | typeof BAD_LINE | typeof LINE_START | typeof AFTER_MESSAGE | typeof SKIPPING

const concat = (parts: ReadonlyArray<Uint8Array>, size: number, last: Uint8Array): Uint8Array => {
  if (parts.length === 0) return last
  const out = new Uint8Array(size + last.length)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  out.set(last, offset)
  return out
}

const empty = new Uint8Array(0)

/** Small pieces of an unfinished message are copied together into blocks of this size. */
const blockBytes = 8 * 1024

export class MessageScanner {
  readonly maxBytes: number
  readonly maxNesting: number
  private readonly budget: InputBudget | undefined
  private reading: Reading = LINE_START
  /** The message went over the nesting limit: it is read to its end and dropped. */
  private dropping = false
  /** 0 outside strings; else the quote that closes the string being read. */
  private quote = 0
  private escaped = false
  private braces = 0
  private brackets = 0
  /** The start of the current message, as it came in earlier chunks: `size` bytes in these pieces, then `block`. */
  private parts: Array<Uint8Array> = []
  private size = 0
  /** Where small pieces are copied: `block[0, blockUsed)` follows `parts`. */
  private block: Uint8Array = empty
  private blockUsed = 0
  /** Bytes the kept pieces hold in memory (charged to the budget). */
  private charged = 0
  private stopped = false

  constructor(maxBytes: number = maxLineBytes, nesting: number = maxNesting, budget?: InputBudget) {
    this.maxBytes = maxBytes
    this.maxNesting = nesting
    this.budget = budget
  }

  /** Whether a message went over the size cap or the budget (nothing more comes out). */
  get failed(): boolean {
    return this.stopped
  }

  /** Whether a message has begun and not ended. */
  get unfinished(): boolean {
    return this.reading < LINE_START
  }

  /** Bytes held in memory for the unfinished message (what is charged to the budget). */
  get heldBytes(): number {
    return this.charged
  }

  /** How many buffers the unfinished message is kept in. */
  get heldPieces(): number {
    return this.parts.length + (this.blockUsed > 0 ? 1 : 0)
  }

  /** The frames completed by `chunk`, in order. */
  push(chunk: Uint8Array): Array<MessageFrame> {
    const frames: Array<MessageFrame> = []
    if (this.stopped) return frames
    // The state lives in locals while the loop runs, and goes back to the fields at every exit.
    let reading = this.reading
    let quote = this.quote
    let escaped = this.escaped
    let braces = this.braces
    let brackets = this.brackets
    /** Where the current message begins in this chunk (0 when it began in an earlier one). */
    let start = 0
    const length = chunk.length
    for (let i = 0; i < length; i++) {
      const c = chunk[i]!
      if (reading >= LINE_START) {
        if (c === OPEN_BRACE && reading !== SKIPPING) {
          reading = OBJECT
        } else if (c === LF) {
          reading = LINE_START
          continue
        } else if (c === SPACE || c === CR || c === TAB || reading === SKIPPING) {
          continue
        } else if (reading === AFTER_MESSAGE) {
          reading = SKIPPING
          continue
        } else {
          reading = BAD_LINE
        }
        quote = 0
        escaped = false
        braces = 0
        brackets = 0
        start = i
      }
      let end = -1 // where the message ends (exclusive), if it ends at this byte
      if (c === LF) {
        end = i
      } else if (quote !== 0) {
        if (escaped) {
          escaped = false
        } else if (c === BACKSLASH) {
          escaped = true
        } else if (c === quote) {
          quote = 0
        } else {
          // Most of a message is string content: run through it in a tighter loop.
          let j = i + 1
          while (j < length) {
            const d = chunk[j]!
            if (d === quote || d === BACKSLASH || d === LF) break
            j++
          }
          i = j - 1
        }
        continue
      } else if (c === DOUBLE_QUOTE || c === SINGLE_QUOTE) {
        quote = c
        continue
      } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
        if (c === OPEN_BRACE) braces++
        else brackets++
        if (braces + brackets > this.maxNesting && !this.dropping) {
          frames.push(tooDeep)
          this.dropping = true
          this.release()
        }
        continue
      } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
        if (c === CLOSE_BRACE) braces--
        else brackets--
        if (reading !== OBJECT) continue
        // A bracket that closes nothing: where the object was meant to end is anyone's guess.
        if (braces < 0 || brackets < 0) reading = BAD_LINE
        if (braces !== 0 || brackets !== 0) continue
        end = i + 1
      } else {
        continue
      }
      reading = c === LF ? LINE_START : AFTER_MESSAGE
      if (this.dropping) {
        this.dropping = false
        continue
      }
      if (!this.emit(frames, chunk, start, end)) return this.stop(frames)
    }
    this.reading = reading
    this.quote = quote
    this.escaped = escaped
    this.braces = braces
    this.brackets = brackets
    if (reading < LINE_START && !this.dropping) {
      // The message goes on in the next chunk: keep its piece, unless that passes the cap or the budget.
      const rest = chunk.subarray(start)
      if (this.size + rest.length > this.maxBytes) {
        this.overflow(frames, rest)
        return this.stop(frames)
      }
      if (!this.keep(rest)) {
        frames.push(overBudget)
        this.stopped = true
        return this.stop(frames)
      }
    }
    return frames
  }

  /** The end of input: a message still open is handed over as it is. */
  end(): Array<MessageFrame> {
    const frames: Array<MessageFrame> = []
    if (!this.stopped && this.reading < LINE_START && !this.dropping && this.size > 0) {
      frames.push({ _tag: "Message", bytes: concat(this.pieces(), this.size, empty) })
    }
    return this.stop(frames)
  }

  /** Drops what is held (the connection is gone), giving it back to the budget. */
  discard(): void {
    this.stop([])
  }

  /** Hands over the message ending at `end` in `chunk`; false when it is over the cap. */
  private emit(frames: Array<MessageFrame>, chunk: Uint8Array, start: number, end: number): boolean {
    const last = chunk.subarray(start, end)
    if (this.size + last.length > this.maxBytes) {
      this.overflow(frames, last)
      return false
    }
    frames.push({ _tag: "Message", bytes: concat(this.pieces(), this.size, last) })
    this.release()
    return true
  }

  private overflow(frames: Array<MessageFrame>, last: Uint8Array): void {
    const head = concat(this.pieces(), this.size, last.subarray(0, this.maxBytes - this.size))
    frames.push({ _tag: "TooLong", head })
    this.stopped = true
  }

  /** The pieces of the unfinished message, in order. */
  private pieces(): ReadonlyArray<Uint8Array> {
    return this.blockUsed === 0 ? this.parts : [...this.parts, this.block.subarray(0, this.blockUsed)]
  }

  /**
   * Keeps a piece of the unfinished message, charging what it holds in
   * memory to the budget; false if the budget cannot pay for it.
   */
  private keep(piece: Uint8Array): boolean {
    if (piece.length >= blockBytes) {
      // Kept as it is if it is most of its buffer; else copied, so that it does not keep the rest alive.
      const own = 2 * piece.length >= piece.buffer.byteLength
      if (!this.charge(own ? piece.buffer.byteLength : piece.length)) return false
      this.sealBlock()
      this.parts.push(own ? piece : piece.slice())
    } else {
      // Into the current block, and what does not fit into a new one.
      const fits = Math.min(piece.length, this.block.length - this.blockUsed)
      if (fits < piece.length && !this.charge(blockBytes)) return false
      this.block.set(piece.subarray(0, fits), this.blockUsed)
      this.blockUsed += fits
      if (fits < piece.length) {
        this.sealBlock()
        this.block = new Uint8Array(blockBytes)
        this.block.set(piece.subarray(fits))
        this.blockUsed = piece.length - fits
      }
    }
    this.size += piece.length
    return true
  }

  private charge(bytes: number): boolean {
    if (this.budget !== undefined && !this.budget.take(bytes)) return false
    this.charged += bytes
    return true
  }

  /** The current block becomes a piece like the others. */
  private sealBlock(): void {
    if (this.blockUsed > 0) this.parts.push(this.block.subarray(0, this.blockUsed))
    this.block = empty
    this.blockUsed = 0
  }

  private release(): void {
    this.budget?.give(this.charged)
    this.charged = 0
    this.parts = []
    this.size = 0
    this.block = empty
    this.blockUsed = 0
  }

  private stop(frames: Array<MessageFrame>): Array<MessageFrame> {
    this.reading = LINE_START
    this.dropping = false
    this.release()
    return frames
  }
}

export type Frame =
  | { readonly _tag: "Line"; readonly bytes: Uint8Array }
  | { readonly _tag: "TooLong" }

const lineTooLong: Frame = { _tag: "TooLong" }

/**
 * Newline-delimited framing with a length cap: complete lines come out,
 * without their `\n`, whatever the chunking. A line longer than the cap is
 * reported once, without being buffered whole, and nothing comes out after it.
 */
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
    const out = concat(this.parts, this.size, last)
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
    frames.push(lineTooLong)
  }
}
