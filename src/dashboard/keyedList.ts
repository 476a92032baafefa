/**
 * A list drawn from keyed items, whose elements are kept from one drawing to
 * the next: an item already shown is updated in place (its buttons keep
 * their focus), a new one is made, a gone one is removed, in the items' order.
 */

export interface Item<A> {
  readonly element: HTMLElement
  readonly update: (value: A) => void
}

export class KeyedList<A> {
  private readonly items = new Map<string, Item<A>>()
  private readonly parent: HTMLElement
  private readonly make: (value: A) => Item<A>

  constructor(parent: HTMLElement, make: (value: A) => Item<A>) {
    this.parent = parent
    this.make = make
  }

  draw(values: ReadonlyArray<readonly [key: string, value: A]>): void {
    const wanted = new Set<string>()
    let previous: Element | null = null
    for (const [key, value] of values) {
      wanted.add(key)
      let item = this.items.get(key)
      if (item === undefined) {
        item = this.make(value)
        this.items.set(key, item)
      }
      item.update(value)
      const expected: Element | null = previous === null ? this.parent.firstElementChild : previous.nextElementSibling
      if (expected !== item.element) this.parent.insertBefore(item.element, expected)
      previous = item.element
    }
    for (const [key, item] of this.items) {
      if (wanted.has(key)) continue
      item.element.remove()
      this.items.delete(key)
    }
  }
}
