/**
 * A client's bounded outgoing queue. Replies and events are offered without
 * ever waiting; one writer fiber takes everything pending at once and writes it
 * to the socket, waiting there when the client reads slowly. If the client
 * falls behind by more than the bound, `offer` says so and the connection is
 * dropped: a client that stops reading costs the server a bounded amount of
 * memory and never slows the engine or the other clients.
 *
 * What one tick offers goes out in one write, at the end of that tick: a
 * command's events and its reply, the replies to several messages read at
 * once. While the writer waits for lines, that write is made right there by
 * `writeNow` when the socket takes it without waiting (the common case: no
 * fiber to wake); when it cannot, the writer is woken and writes as usual,
 * waiting for the socket to drain.
 */
import { Deferred, Effect, Exit } from "effect"

export type OfferResult = "queued" | "full" | "closed"

/** The text of one write: the lines, each ended by a newline. */
export const textOf = (lines: ReadonlyArray<string>): string =>
  lines.length === 1 ? `${lines[0]}\n` : `${lines.join("\n")}\n`

/**
 * Writes text to the socket if that needs no waiting (true), or does nothing
 * (false): the socket's buffer is too full, or it is closing.
 */
export type WriteNow = (text: string) => boolean

export class Outbox {
  readonly maxMessages: number
  readonly maxBytes: number
  private readonly writeNow: WriteNow | undefined
  private lines: Array<string> = []
  private bytes = 0
  /** Set while the writer waits for lines (it holds none). */
  private waiter: Deferred.Deferred<void> | undefined = undefined
  private state: "open" | "ending" | "closed" = "open"
  private endOfTickScheduled = false

  constructor(maxMessages: number, maxBytes: number, writeNow?: WriteNow) {
    this.maxMessages = maxMessages
    this.maxBytes = maxBytes
    this.writeNow = writeNow
  }

  /** Queues one line (without its newline). A single line larger than the byte bound is still accepted alone. */
  offer(line: string): OfferResult {
    if (this.state !== "open") return "closed"
    const pending = this.lines.length
    if (pending >= this.maxMessages || (pending > 0 && this.bytes + line.length > this.maxBytes)) return "full"
    this.lines.push(line)
    this.bytes += line.length
    if (this.waiter !== undefined && !this.endOfTickScheduled) {
      this.endOfTickScheduled = true
      queueMicrotask(this.atEndOfTick)
    }
    return "queued"
  }

  /** Waits for lines and takes them all; `undefined` once ended and empty, or closed. */
  readonly take: Effect.Effect<ReadonlyArray<string> | undefined> = Effect.suspend(() => {
    if (this.state === "closed") return Effect.succeed(undefined)
    if (this.lines.length > 0) return Effect.succeed(this.takeLines())
    if (this.state === "ending") return Effect.succeed(undefined)
    const waiter = (this.waiter ??= Deferred.makeUnsafe<void>())
    return Effect.andThen(Deferred.await(waiter), this.take)
  })

  /** No more lines: `take` hands out what is queued, then `undefined`. */
  end(): void {
    if (this.state === "open") this.state = "ending"
    this.wake()
  }

  /** Drops everything. */
  close(): void {
    this.state = "closed"
    this.lines = []
    this.bytes = 0
    this.wake()
  }

  private takeLines(): Array<string> {
    const out = this.lines
    this.lines = []
    this.bytes = 0
    return out
  }

  /** The tick's lines, written now if the writer is still waiting and the socket takes them; else to the writer. */
  private readonly atEndOfTick = (): void => {
    this.endOfTickScheduled = false
    if (this.waiter === undefined || this.lines.length === 0) return
    if (this.writeNow !== undefined && this.writeNow(textOf(this.lines))) {
      this.takeLines()
      return
    }
    this.wake()
  }

  private wake(): void {
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      Deferred.doneUnsafe(waiter, Exit.void)
    }
  }
}
