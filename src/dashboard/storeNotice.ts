/**
 * The store's state, as its notices tell it (`event: StoreUnwritable`,
 * `StoreWritable` on the event stream): hidden while the store can be
 * written; a warning, with the store's reason, while it cannot — new jobs
 * are refused and the list waits for the events still to be stored.
 */
import { h, setText } from "./dom.ts"

export class StoreNoticeBanner {
  readonly element: HTMLElement
  private readonly text: HTMLElement

  constructor() {
    this.text = h("span", {})
    this.element = h("p", { class: "store-notice", id: "store-notice", role: "alert", hidden: true }, this.text)
  }

  /** Applies one notice (the `data` of its message). */
  apply(event: string, data: string): void {
    if (event === "StoreUnwritable") {
      const { error } = JSON.parse(data) as { readonly error: string }
      setText(this.text, `The job store cannot be written: ${error}. New jobs are refused, and changes wait, until it can.`)
      this.element.hidden = false
    } else if (event === "StoreWritable") {
      this.element.hidden = true
    }
  }
}
