/**
 * Whether the page is shown: a hidden tab is not redrawn, and does not
 * reconnect, until it is shown again.
 */

/** Resolves at once if the page is shown, else when it next is. */
export const whenVisible = (): Promise<void> =>
  document.visibilityState === "visible"
    ? Promise.resolve()
    : new Promise((resolve) => {
      const onChange = () => {
        if (document.visibilityState !== "visible") return
        document.removeEventListener("visibilitychange", onChange)
        resolve()
      }
      document.addEventListener("visibilitychange", onChange)
    })

/** Calls `onChange(visible)` whenever the page is shown or hidden. */
export const onVisibilityChange = (onChange: (visible: boolean) => void): void => {
  document.addEventListener("visibilitychange", () => onChange(document.visibilityState === "visible"))
}
