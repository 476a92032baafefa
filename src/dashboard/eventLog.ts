/**
 * The engine's event log, followed live over `GET /api/events`, resumed
 * after every lost connection from the last sequence number seen
 * (`Last-Event-ID`), so that no event is missed and none is applied twice.
 *
 * After a reconnect it asks the server for its latest sequence number
 * (`GET /api/server`) and reports "caught up" with the number of events it
 * received once it has seen that one. An `event: reset` (the server no
 * longer keeps the events after the cursor, or is another run of it)
 * replaces what the page knew. A durable store's notices, which have no
 * sequence number, are passed on as they come. While the tab is hidden a lost connection is
 * not retried: the page reconnects when it is shown again.
 */
import { get, type JobEvent, type Reset, type ServerInfo } from "./api.ts"
import { readEvents } from "./sse.ts"
import { whenVisible } from "./visibility.ts"

export type ConnectionState =
  | { readonly kind: "connecting" }
  | { readonly kind: "catching-up"; readonly received: number }
  /** `caughtUp`: the events received since the connection came back, after a reconnect. */
  | { readonly kind: "live"; readonly caughtUp: number | undefined; readonly reset: boolean }
  | { readonly kind: "disconnected"; readonly retryInMillis: number; readonly reason: string }
  | { readonly kind: "server-stopped"; readonly retryInMillis: number }

export interface EventLogHandlers {
  /** Each job event, once, in sequence order. */
  readonly onEvent: (event: JobEvent) => void
  readonly onReset: (reset: Reset) => void
  readonly onState: (state: ConnectionState) => void
  /** A store notice (`StoreUnwritable`, `StoreWritable`): outside the log, never replayed. */
  readonly onStoreNotice: (event: string, data: string) => void
}

const firstRetryMillis = 250
const lastRetryMillis = 4000

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

export class EventLog {
  /** The sequence number of the last event received: where the next connection resumes. */
  cursor: number
  private readonly handlers: EventLogHandlers
  private stopped = false
  private controller: AbortController | undefined

  constructor(handlers: EventLogHandlers, cursor: number) {
    this.handlers = handlers
    this.cursor = cursor
  }

  start(): void {
    void this.run()
  }

  stop(): void {
    this.stopped = true
    this.controller?.abort()
  }

  private async run(): Promise<void> {
    let retry = firstRetryMillis
    let reconnecting = false
    while (!this.stopped) {
      if (reconnecting) await whenVisible()
      this.handlers.onState({ kind: "connecting" })
      let ended: "shutdown" | "closed" = "closed"
      let reason = "the connection was lost"
      try {
        ended = await this.follow(reconnecting)
        retry = firstRetryMillis
      } catch (error) {
        if (this.stopped) return
        reason = error instanceof Error ? error.message : String(error)
      }
      if (this.stopped) return
      this.handlers.onState(
        ended === "shutdown"
          ? { kind: "server-stopped", retryInMillis: retry }
          : { kind: "disconnected", retryInMillis: retry, reason }
      )
      await sleep(retry)
      retry = Math.min(retry * 2, lastRetryMillis)
      reconnecting = true
    }
  }

  /** One connection, to its end. */
  private async follow(reconnecting: boolean): Promise<"shutdown" | "closed"> {
    const controller = new AbortController()
    this.controller = controller
    const response = await fetch("/api/events", {
      headers: { "last-event-id": String(this.cursor), accept: "text/event-stream" },
      cache: "no-store",
      signal: controller.signal
    })
    if (!response.ok) throw new Error(`the server answered ${response.status}`)
    let received = 0
    let target: number | undefined
    let live = false
    let reset = false
    const checkCaughtUp = () => {
      if (live || target === undefined || this.cursor < target) return
      live = true
      // A first connection that finds its history gone simply starts from the list it is given.
      this.handlers.onState({ kind: "live", caughtUp: reconnecting ? received : undefined, reset: reset && reconnecting })
    }
    this.handlers.onState({ kind: "catching-up", received: 0 })
    // Asked once the stream is open: every event up to its answer is on its way.
    void get<ServerInfo>("/api/server").then((answer) => {
      target = answer.ok ? answer.value.seq : this.cursor
      checkCaughtUp()
    })
    let shutdown = false
    await readEvents(response, (message) => {
      if (message.event === "shutdown") {
        shutdown = true
        return
      }
      if (message.event === "reset") {
        const data = JSON.parse(message.data) as Reset
        this.cursor = data.seq
        reset = true
        this.handlers.onReset(data)
        checkCaughtUp()
        return
      }
      if (message.event === "StoreUnwritable" || message.event === "StoreWritable") {
        this.handlers.onStoreNotice(message.event, message.data)
        return
      }
      if (message.id === undefined) return
      const event = JSON.parse(message.data) as JobEvent
      // Never twice, whatever a server sends.
      if (event.seq <= this.cursor) return
      this.cursor = event.seq
      received++
      this.handlers.onEvent(event)
      if (!live) this.handlers.onState({ kind: "catching-up", received })
      checkCaughtUp()
    })
    return shutdown ? "shutdown" : "closed"
  }
}
