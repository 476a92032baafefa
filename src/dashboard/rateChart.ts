/**
 * A small chart of a job's rate over time: its samples of the last minute as
 * a line, scaled to the highest, drawn in SVG (no canvas, no library).
 */
import { svg } from "./dom.ts"
import * as Format from "./format.ts"
import type { RateSample } from "./store.ts"

const width = 320
const height = 80
/** The chart spans the samples' time, from 10 seconds up to the last minute. */
const shortestSpan = 10_000
const longestSpan = 60_000

export class RateChart {
  readonly element: SVGSVGElement
  private readonly line: SVGPolylineElement
  private readonly area: SVGPolygonElement
  private readonly peak: SVGTextElement
  private readonly title: SVGTitleElement

  constructor() {
    this.element = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "rate-chart", role: "img" })
    this.title = svg("title")
    this.area = svg("polygon", { class: "area" })
    this.line = svg("polyline", { class: "line" })
    this.peak = svg("text", { x: 4, y: 12, class: "peak" })
    this.element.append(this.title, svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: "axis" }), this.area, this.line, this.peak)
  }

  draw(samples: ReadonlyArray<RateSample>, now: number): void {
    const recent = samples.filter((s) => s.at >= now - longestSpan)
    const span = Math.min(longestSpan, Math.max(shortestSpan, now - (recent[0]?.at ?? now)))
    const max = Math.max(1, ...recent.map((s) => s.rate))
    const points = recent.map((s) => {
      const x = ((s.at - (now - span)) / span) * width
      const y = height - 2 - (s.rate / max) * (height - 18)
      return `${x.toFixed(1)},${y.toFixed(1)}`
    })
    this.line.setAttribute("points", points.join(" "))
    this.area.setAttribute(
      "points",
      points.length === 0 ? "" : `${points[0]!.split(",")[0]},${height} ${points.join(" ")} ${points.at(-1)!.split(",")[0]},${height}`
    )
    const label = recent.length === 0
      ? "no rate measured yet"
      : `rate over the last ${Math.round(span / 1000)} seconds; peak ${Format.rate(max)}, now ${Format.rate(recent.at(-1)!.rate)}`
    this.title.textContent = label
    this.element.setAttribute("aria-label", label)
    this.peak.textContent = recent.length === 0 ? "no rate yet" : `peak ${Format.rate(max)}`
  }
}
