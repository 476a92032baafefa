/**
 * Building elements: `h("button", { class: "verb", onclick }, "Pause")`.
 * Attributes are set as attributes (`aria-*`, `data-*`, `title`, …), `on…`
 * as listeners; `false` and `undefined` leave an attribute out.
 */

export type Attributes = Readonly<Record<string, string | number | boolean | undefined | ((event: Event) => void)>>

export type Child = Node | string | null | undefined | false

export const h = <K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: ReadonlyArray<Child>
): HTMLElementTagNameMap[K] => {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue
    if (typeof value === "function") element.addEventListener(name.slice(2), value)
    else if (name === "class") element.className = String(value)
    else element.setAttribute(name, value === true ? "" : String(value))
  }
  append(element, children)
  return element
}

/** An SVG element, with attributes. */
export const svg = <K extends keyof SVGElementTagNameMap>(
  tag: K,
  attributes: Readonly<Record<string, string | number>> = {}
): SVGElementTagNameMap[K] => {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag)
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value))
  return element
}

export const append = (parent: Node, children: ReadonlyArray<Child>): void => {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child)
  }
}

/** Replaces an element's children. */
export const replaceChildren = (parent: Element, ...children: ReadonlyArray<Child>): void => {
  parent.replaceChildren()
  append(parent, children)
}

/** Sets a text only when it differs: a redraw touches what changed, and nothing else. */
export const setText = (element: Element, text: string): void => {
  if (element.textContent !== text) element.textContent = text
}

export const setAttribute = (element: Element, name: string, value: string | undefined): void => {
  if (value === undefined) {
    if (element.hasAttribute(name)) element.removeAttribute(name)
  } else if (element.getAttribute(name) !== value) {
    element.setAttribute(name, value)
  }
}

/** The element with this id, which the page must have. */
export const byId = <E extends HTMLElement = HTMLElement>(id: string): E => {
  const element = document.getElementById(id)
  if (element === null) throw new Error(`the page has no #${id}`)
  return element as E
}

let uniqueCount = 0
/** An id no other element has. */
export const uniqueId = (prefix: string): string => `${prefix}-${++uniqueCount}`
