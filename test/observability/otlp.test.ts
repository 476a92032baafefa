/**
 * Export over OTLP/HTTP to a collector stand-in: a Node HTTP server on
 * 127.0.0.1 that keeps the JSON posted to /v1/traces and /v1/metrics. The
 * exporters' interval is an hour: what arrives was sent as the layer closed.
 * Then `effect-jobs serve --otlp URL` as a real process, with a backup job
 * created over QMP; and the flag's fallback to OTEL_EXPORTER_OTLP_ENDPOINT.
 */
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Console, Effect, Metric, Option, type Scope } from "effect"
import { Command } from "effect/cli"
import * as fs from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { otlpFlag } from "../../src/cli/serve.ts"
import { Jobs } from "../../src/Jobs.ts"
import * as Metrics from "../../src/observability/metrics.ts"
import * as Otlp from "../../src/observability/otlp.ts"
import * as Testing from "../../src/testing.ts"
import { bytes, run, serve, tempDir } from "../cli/harness.ts"

interface OtlpAttribute {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: string | number; readonly boolValue?: boolean }
}
interface OtlpSpan {
  readonly name: string
  readonly spanId: string
  readonly attributes: ReadonlyArray<OtlpAttribute>
  readonly events: ReadonlyArray<{ readonly name: string }>
  readonly links: ReadonlyArray<{ readonly spanId: string }>
}
interface OtlpMetric {
  readonly name: string
  readonly sum?: { readonly dataPoints: ReadonlyArray<{ readonly attributes: ReadonlyArray<OtlpAttribute>; readonly asDouble?: number }> }
}

/** A collector stand-in on 127.0.0.1: keeps every body posted, by path. */
const collector: Effect.Effect<
  { readonly url: string; readonly posts: (path: string) => ReadonlyArray<unknown> },
  never,
  Scope.Scope
> = Effect.acquireRelease(
  Effect.callback<{ server: http.Server; posts: Map<string, Array<unknown>> }>((resume) => {
    const posts = new Map<string, Array<unknown>>()
    const server = http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        const list = posts.get(request.url ?? "") ?? []
        list.push(JSON.parse(Buffer.concat(chunks).toString("utf8")))
        posts.set(request.url ?? "", list)
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, posts })))
  }),
  ({ server }) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map(({ posts, server }) => ({
  url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
  posts: (path: string) => posts.get(path) ?? []
})))

const spansIn = (bodies: ReadonlyArray<unknown>): Array<OtlpSpan> =>
  bodies.flatMap((body) =>
    (body as { resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<OtlpSpan> }> }> }).resourceSpans
      .flatMap((resource) => resource.scopeSpans.flatMap((scope) => scope.spans))
  )

const metricsIn = (bodies: ReadonlyArray<unknown>): Array<OtlpMetric> =>
  bodies.flatMap((body) =>
    (body as { resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: Array<OtlpMetric> }> }> }).resourceMetrics
      .flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics))
  )

const attribute = (attributes: ReadonlyArray<OtlpAttribute>, key: string) => {
  const value = attributes.find((a) => a.key === key)?.value
  return value?.stringValue ?? value?.boolValue ?? value?.intValue
}

const serviceName = (bodies: ReadonlyArray<unknown>) =>
  bodies.map((body) =>
    attribute((body as { resourceSpans: Array<{ resource: { attributes: Array<OtlpAttribute> } }> }).resourceSpans[0]!.resource.attributes, "service.name")
  )

describe("OTLP export", () => {
  it.live("a job's span and the job metrics reach the collector when the layer closes", () =>
    Effect.gen(function*() {
      const receiver = yield* collector
      yield* Effect.gen(function*() {
        const jobs = yield* Jobs
        yield* jobs.awaitOutcome(yield* jobs.run({ type: "test", id: "exported", params: { iterations: 3 } }))
      }).pipe(
        Effect.provide(Testing.layer),
        Effect.provide(Otlp.layer({ url: receiver.url, exportInterval: "1 hour" })),
        Effect.provideService(Metric.MetricRegistry, new Map())
      )

      const traces = receiver.posts("/v1/traces")
      assert.deepStrictEqual(serviceName(traces), traces.map(() => "effect-jobs"))
      const spans = spansIn(traces)
      const job = spans.find((span) => span.name === "job test")
      assert.isDefined(job)
      assert.strictEqual(attribute(job!.attributes, "job.id"), "exported")
      assert.strictEqual(attribute(job!.attributes, "job.outcome"), "Succeeded")
      assert.deepStrictEqual(job!.events.map((e) => e.name), ["created", "running", "waiting", "pending", "concluded"])
      const children = spans.filter((span) => (span as { parentSpanId?: string }).parentSpanId === job!.spanId)
      assert.deepStrictEqual(children.map((span) => span.name).sort(), ["clean", "commit", "prepare", "run"])

      const metrics = metricsIn(receiver.posts("/v1/metrics"))
      const created = metrics.find((m) => m.name === Metrics.definitions.created.name)
      assert.isDefined(created)
      const point = created!.sum!.dataPoints.find((p) => attribute(p.attributes, "type") === "test")
      assert.strictEqual(point?.asDouble, 1)
      const units = metrics.find((m) => m.name === Metrics.definitions.unitsDone.name)
      assert.strictEqual(units!.sum!.dataPoints[0]!.asDouble, 3)
    }).pipe(Effect.scoped))

  it.live("effect-jobs serve --otlp URL exports the spans of QMP commands and of the jobs they create", () =>
    Effect.gen(function*() {
      const receiver = yield* collector
      const dir = yield* tempDir
      fs.writeFileSync(join(dir, "disk.img"), bytes(256 * 1024))
      const socket = join(dir, "s.sock")
      const { server } = yield* serve(["--socket", socket, "--otlp", receiver.url], { cwd: dir })
      assert.include(server.stdout(), `exporting traces, metrics and logs to ${receiver.url} (OTLP/HTTP)`)

      const backup = yield* run(["qmp", "--socket", socket, "backup", `{"job-id": "b1", "source": "disk.img", "target": "disk.bak"}`])
      assert.strictEqual(backup.code, 0, backup.stderr)
      const quit = yield* run(["qmp", "--socket", socket, "quit"])
      assert.strictEqual(quit.code, 0, quit.stderr)
      const exited = yield* server.exited
      assert.strictEqual(exited.code, 0, exited.stderr)

      const spans = spansIn(receiver.posts("/v1/traces"))
      const command = spans.find((span) => span.name === "qmp backup")
      const job = spans.find((span) => span.name === "job backup")
      assert.isDefined(command, `spans: ${spans.map((span) => span.name)}`)
      assert.isDefined(job, `spans: ${spans.map((span) => span.name)}`)
      assert.strictEqual(attribute(job!.attributes, "job.id"), "b1")
      assert.deepStrictEqual(job!.links.map((link) => link.spanId), [command!.spanId])
      assert.include(job!.events.map((e) => e.name), "concluded")
      const metrics = metricsIn(receiver.posts("/v1/metrics")).map((m) => m.name)
      assert.include(metrics, Metrics.definitions.created.name)
      assert.include(metrics, Metrics.definitions.connections.name)
    }).pipe(Effect.scoped))

  it.effect("--otlp falls back to OTEL_EXPORTER_OTLP_ENDPOINT, and must be an http(s) URL", () =>
    Effect.gen(function*() {
      const seen: Array<Option.Option<string>> = []
      const probe = Command.make("probe", { otlp: otlpFlag }, ({ otlp }) =>
        Effect.sync(() => {
          seen.push(otlp)
        }))
      const runProbe = (args: ReadonlyArray<string>, env: Record<string, string>) =>
        Command.runWith(probe, { version: "0" })(args).pipe(
          Effect.provide(NodeServices.layer),
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))),
          Effect.provideService(Console.Console, { ...console, log: () => {}, error: () => {} } as unknown as Console.Console),
          Effect.exit
        )
      yield* runProbe([], {})
      yield* runProbe([], { [Otlp.endpointVariable]: "http://collector:4318" })
      yield* runProbe(["--otlp", "https://other:4318"], { [Otlp.endpointVariable]: "http://collector:4318" })
      assert.deepStrictEqual(seen, [Option.none(), Option.some("http://collector:4318"), Option.some("https://other:4318")])
      const bad = yield* runProbe(["--otlp", "collector:4318"], {})
      assert.strictEqual(bad._tag, "Failure")
      assert.strictEqual(seen.length, 3)
    }))
})
