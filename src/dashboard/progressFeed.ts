/**
 * The jobs' progress, rates and limits over `GET /api/progress`: the views of
 * the jobs that changed, every quarter of a second. They are state, not
 * history, so a lost connection is simply opened again (its first message
 * has every job). It is closed while the tab is hidden, and opened again when
 * it is shown.
 */
import type { Progress } from "./api.ts"
import { readEvents } from "./sse.ts"
import { onVisibilityChange, whenVisible } from "./visibility.ts"

const retryMillis = 1000

export class ProgressFeed {
  private readonly onProgress: (progress: Progress) => void
  private controller: AbortController | undefined

  constructor(onProgress: (progress: Progress) => void) {
    this.onProgress = onProgress
  }

  start(): void {
    onVisibilityChange((visible) => {
      if (!visible) this.controller?.abort()
    })
    void this.run()
  }

  private async run(): Promise<void> {
    while (true) {
      await whenVisible()
      const controller = new AbortController()
      this.controller = controller
      try {
        const response = await fetch("/api/progress", { cache: "no-store", signal: controller.signal })
        if (response.ok) {
          await readEvents(response, (message) => {
            if (message.event === "progress") this.onProgress(JSON.parse(message.data) as Progress)
          })
        }
      } catch {
        // Lost, or closed because the tab was hidden: opened again below.
      }
      if (!controller.signal.aborted) await new Promise((resolve) => setTimeout(resolve, retryMillis))
    }
  }
}
