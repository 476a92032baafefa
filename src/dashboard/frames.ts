/**
 * Drawing once per animation frame, whatever the number of changes before it:
 * at a thousand events a second the page draws sixty times, not a thousand.
 * A hidden tab draws nothing; it draws once when it is shown again.
 */
import { onVisibilityChange } from "./visibility.ts"

export class FrameScheduler {
  private scheduled = false
  private missed = false
  private readonly draw: () => void

  constructor(draw: () => void) {
    this.draw = draw
    onVisibilityChange((visible) => {
      if (visible && this.missed) this.request()
    })
  }

  request = (): void => {
    if (document.visibilityState !== "visible") {
      this.missed = true
      return
    }
    if (this.scheduled) return
    this.scheduled = true
    requestAnimationFrame(() => {
      this.scheduled = false
      this.missed = false
      this.draw()
    })
  }
}
