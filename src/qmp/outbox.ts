/**
 * A client's bounded outgoing queue. Replies and events are offered without
 * ever waiting; one writer fiber takes everything pending at once and writes it
 * to the socket, waiting there when the client reads slowly. If the client
 * falls behind by more than the bound, `offer` says so and the connection is
 * dropped: a client that stops reading costs the server a bounded amount of
 * memory and never slows the engine or the other clients.
 */
import { Deferred, Effect, Exit } from "effect"

export type OfferResult = "queued" | "full" | "closed"

export class Outbox {
  readonly maxMessages: number
  readonly maxBytes: number
  private lines: Array<string> = []
  private bytes = 0
  private waiter: Deferred.Deferred<void> | undefined = undefined
  private state: "open" | "ending" | "closed" = "open"

  constructor(maxMessages: number, maxBytes: number) {
    this.maxMessages = maxMessages
    this.maxBytes = maxBytes
  }

  /** Queues one line (without its newline). A single line larger than the byte bound is still accepted alone. */
  offer(line: string): OfferResult {
    if (this.state !== "open") return "closed"
    const pending = this.lines.length
    if (pending >= this.maxMessages || (pending > 0 && this.bytes + line.length > this.maxBytes)) return "full"
    this.lines.push(line)
    this.bytes += line.length
    this.wake()
    return "queued"
  }

  /** Waits for lines and takes them all; `undefined` once ended and empty, or closed. */
  readonly take: Effect.Effect<ReadonlyArray<string> | undefined> = Effect.suspend(() => {
    if (this.state === "closed") return Effect.succeed(undefined)
    if (this.lines.length > 0) {
      const out = this.lines
      this.lines = []
      this.bytes = 0
      return Effect.succeed(out)
    }
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

  private wake(): void {
    const waiter = this.waiter
    if (waiter !== undefined) {
      this.waiter = undefined
      Deferred.doneUnsafe(waiter, Exit.void)
    }
  }
}
