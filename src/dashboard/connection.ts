/**
 * The connection indicator: whether the page is live, catching up, or
 * disconnected and when it tries again; after a reconnect, "caught up (N
 * events)"; after a reset, that the list was reloaded. Also the sequence
 * number of the last event the page has applied.
 */
import { h, setAttribute, setText } from "./dom.ts"
import type { ConnectionState } from "./eventLog.ts"

export class ConnectionIndicator {
  readonly element: HTMLElement
  private readonly text: HTMLElement
  private readonly seq: HTMLElement

  constructor() {
    this.text = h("span", { class: "connection-text", id: "connection" , role: "status" }, "connecting…")
    this.seq = h("span", { class: "seq", id: "seq" })
    this.element = h("div", { class: "connection", "data-state": "connecting" }, h("span", { class: "dot", "aria-hidden": "true" }), this.text, this.seq)
  }

  show(state: ConnectionState): void {
    setAttribute(this.element, "data-state", state.kind)
    setText(this.text, describe(state))
  }

  showSeq(seq: number): void {
    setText(this.seq, `seq ${seq}`)
    this.seq.dataset.seq = String(seq)
  }
}

const seconds = (millis: number) => `${(millis / 1000).toFixed(millis < 1000 ? 2 : 0)} s`

const describe = (state: ConnectionState): string => {
  switch (state.kind) {
    case "connecting":
      return "connecting…"
    case "catching-up":
      return state.received === 0 ? "catching up…" : `catching up (${state.received} events)…`
    case "live":
      if (state.reset) return "live: the server no longer had every missed event, so the list was reloaded"
      return state.caughtUp === undefined ? "live" : `live: caught up (${state.caughtUp} events)`
    case "disconnected":
      return `disconnected (${state.reason}); reconnecting in ${seconds(state.retryInMillis)}`
    case "server-stopped":
      return `the server stopped; reconnecting in ${seconds(state.retryInMillis)}`
  }
}
