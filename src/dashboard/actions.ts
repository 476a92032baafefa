/**
 * Action buttons. A button that cannot act now is `aria-disabled`, not
 * `disabled`: it stays in the tab order, so that a keyboard user reaches it
 * and hears why (its accessible description), and its tooltip (`title`)
 * says the same. A refused request shows the API's error where the action
 * was (`report`). "Copy as QMP" and "Copy as CLI" put the action's QMP
 * command, or the `npx effect-jobs qmp …` line, on the clipboard.
 */
import { type ApiError, post } from "./api.ts"
import { h, setAttribute, setText, uniqueId } from "./dom.ts"
import { cliLine, type QmpCommand, qmpText } from "./qmp.ts"

export interface ActionButton {
  readonly element: HTMLButtonElement
  /** `undefined`: enabled; else why not. */
  readonly setRefusal: (reason: string | undefined) => void
  readonly setLabel: (label: string) => void
}

/** A button that runs `act` unless refused; its reason is its description. */
export const actionButton = (
  label: string,
  act: () => void,
  attributes: Readonly<Record<string, string>> = {}
): ActionButton => {
  const reasonId = uniqueId("reason")
  const reason = h("span", { id: reasonId, class: "visually-hidden" })
  const text = document.createTextNode(label)
  const element = h("button", { type: "button", class: "action", ...attributes }, text, reason)
  let refused: string | undefined
  element.addEventListener("click", () => {
    if (refused === undefined) act()
  })
  return {
    element,
    setRefusal: (why) => {
      refused = why
      setAttribute(element, "aria-disabled", why === undefined ? undefined : "true")
      setAttribute(element, "title", why)
      setAttribute(element, "aria-describedby", why === undefined ? undefined : reasonId)
      setText(reason, why ?? "")
    },
    setLabel: (label) => {
      if (text.data !== label) text.data = label
    }
  }
}

/** Where an action's outcome is told: an API error, or nothing once it succeeded. */
export type Report = (error: ApiError | undefined, what: string) => void

/** POSTs an action; its refusal goes to `report`. */
export const perform = async (path: string, body: unknown, what: string, report: Report): Promise<boolean> => {
  const answer = await post(path, body)
  report(answer.ok ? undefined : answer.error, what)
  return answer.ok
}

/** An inline place for an action's error (`role="alert"`, so it is read out). */
export const errorLine = (): { readonly element: HTMLElement; readonly report: Report } => {
  const element = h("p", { class: "error-line", role: "alert", hidden: true })
  return {
    element,
    report: (error, what) => {
      element.hidden = error === undefined
      setText(element, error === undefined ? "" : `${what}: ${error.desc}`)
    }
  }
}

const copy = async (button: HTMLButtonElement, text: string) => {
  const label = button.textContent
  try {
    await navigator.clipboard.writeText(text)
    button.textContent = "Copied"
  } catch {
    // No clipboard (an insecure context, a refusal): the text is in the tooltip, to copy by hand.
    button.textContent = "Copy failed"
  }
  setTimeout(() => {
    button.textContent = label
  }, 1500)
}

/** "Copy as QMP" and "Copy as CLI" for a command made when clicked. */
export const copyButtons = (
  command: () => QmpCommand,
  flags: () => ReadonlyArray<string> | null
): HTMLElement => {
  const asQmp = h("button", { type: "button", class: "copy", "data-copy": "qmp" }, "Copy as QMP")
  const asCli = h("button", { type: "button", class: "copy", "data-copy": "cli" }, "Copy as CLI")
  asQmp.addEventListener("click", () => void copy(asQmp, qmpText(command())))
  asCli.addEventListener("click", () => void copy(asCli, cliLine(command(), flags())))
  // The text itself, for whoever would rather read it than copy it.
  const refresh = () => {
    asQmp.title = qmpText(command())
    asCli.title = cliLine(command(), flags())
  }
  asQmp.addEventListener("pointerenter", refresh)
  asQmp.addEventListener("focus", refresh)
  asCli.addEventListener("pointerenter", refresh)
  asCli.addEventListener("focus", refresh)
  return h("span", { class: "copy-buttons" }, asQmp, asCli)
}
