/**
 * Server-Sent Events read from a `fetch` body: the text is cut into messages
 * as the HTML standard's event-stream parser does (fields `id`, `event`,
 * `data`; comment lines; a blank line ends a message). `fetch` rather than
 * `EventSource`, so that the page decides when to reconnect and sends
 * `Last-Event-ID` itself.
 */

export interface SseMessage {
  /** `undefined` when the message has no `id` line. */
  readonly id: string | undefined
  readonly event: string
  readonly data: string
}

/** Feeds text in as it arrives; calls `onMessage` for each complete message. */
export class SseParser {
  private pending = ""
  private id: string | undefined = undefined
  private event = ""
  private data: Array<string> = []
  private readonly onMessage: (message: SseMessage) => void

  constructor(onMessage: (message: SseMessage) => void) {
    this.onMessage = onMessage
  }

  push(text: string): void {
    this.pending += text
    let end: number
    while ((end = this.lineEnd()) !== -1) {
      const line = this.pending.slice(0, end)
      const skip = this.pending[end] === "\r" && this.pending[end + 1] === "\n" ? 2 : 1
      this.pending = this.pending.slice(end + skip)
      this.line(line)
    }
  }

  private lineEnd(): number {
    const lf = this.pending.indexOf("\n")
    const cr = this.pending.indexOf("\r")
    // A CR at the very end may be the first half of a CRLF: wait for more.
    if (cr !== -1 && (lf === -1 || cr < lf)) return cr === this.pending.length - 1 ? -1 : cr
    return lf
  }

  private line(line: string): void {
    if (line === "") {
      if (this.data.length > 0 || this.event !== "") {
        this.onMessage({ id: this.id, event: this.event === "" ? "message" : this.event, data: this.data.join("\n") })
      }
      this.id = undefined
      this.event = ""
      this.data = []
      return
    }
    if (line.startsWith(":")) return
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "id") this.id = value
    else if (field === "event") this.event = value
    else if (field === "data") this.data.push(value)
  }
}

/**
 * Reads `response`'s body as an event stream until it ends (resolves) or the
 * connection fails (rejects).
 */
export const readEvents = async (response: Response, onMessage: (message: SseMessage) => void): Promise<void> => {
  if (response.body === null) return
  const parser = new SseParser(onMessage)
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
  while (true) {
    const { done, value } = await reader.read()
    if (done) return
    parser.push(value)
  }
}
