/**
 * docs/observability.md against the code: its table of metrics lists every
 * metric with the name, type and labels the definitions give, and nothing
 * else; its example (below, between the region marks) runs.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { Jobs } from "../../src/index.ts"
import * as Metrics from "../../src/observability/metrics.ts"
import * as Testing from "../../src/testing.ts"
import { readRepoFile } from "../helpers/docBlock.ts"

/** The rows of the table under "## Metrics": name, type, labels. */
const documentedMetrics = () => {
  const doc = readRepoFile("docs/observability.md")
  const section = doc.slice(doc.indexOf("## Metrics"), doc.indexOf("## Traces"))
  return section.split("\n")
    .filter((line) => line.startsWith("| `"))
    .map((line) => {
      const [name, type, labels] = line.split("|").slice(1, 4).map((cell) => cell.trim())
      return {
        name: name!.replaceAll("`", ""),
        type: type!,
        labels: labels!.length === 0 ? [] : labels!.split(",").map((label) => label.trim().replaceAll("`", ""))
      }
    })
}

describe("docs/observability.md", () => {
  it("lists every metric with its type and labels", () => {
    const defined = Object.values(Metrics.definitions).map(({ labels, name, type }) => ({ name, type, labels: [...labels] }))
    assert.deepStrictEqual(documentedMetrics(), defined)
  })

  it("gives the duration buckets as they are", () => {
    const doc = readRepoFile("docs/observability.md")
    const listed = doc.match(/\*\*Duration buckets\*\* \(upper bounds, seconds\): ([\d., \n]+)\./)![1]!
    assert.deepStrictEqual(listed.split(",").map((n) => Number(n.trim())), [...Metrics.durationBoundaries])
  })
})

// #region example
it.effect("one job, as Prometheus sees it", () =>
  Effect.gen(function*() {
    const jobs = yield* Jobs.Jobs
    yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "j1", params: { iterations: 3 } }))
    const text = yield* PrometheusMetrics.format()
    assert.include(text, `effect_jobs_created_total{type="test"} 1`)
    assert.include(text, `effect_jobs_concluded_total{type="test",outcome="Succeeded"} 1`)
    assert.include(text, `effect_jobs_units_done_total{type="test"} 3`)
    assert.include(text, `effect_jobs_in_status{status="concluded"} 0`)
  }).pipe(Effect.provide(Testing.layer), Effect.provideService(Metric.MetricRegistry, new Map())))
// #endregion example
