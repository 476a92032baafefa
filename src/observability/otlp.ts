/**
 * Export to an OpenTelemetry collector over OTLP/HTTP (JSON), with effect's
 * own exporters (`effect/observability` Otlp): traces to `<url>/v1/traces`,
 * metrics to `<url>/v1/metrics`, logs to `<url>/v1/logs` (the console keeps
 * its log lines too). No OpenTelemetry SDK is involved.
 *
 * Provide the layer around everything else: an engine traces and counts into
 * the tracer and metric registry of the context it is built in, and closing
 * the layer last sends what is still buffered.
 */
import { type Duration, Effect, Layer } from "effect"
import type { OtlpExporter } from "effect/observability"

/** The variable that names the collector when no URL is given (OpenTelemetry's own). */
export const endpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT"

export interface OtlpOptions {
  /** The collector's base URL, e.g. `http://127.0.0.1:4318` (the paths `/v1/…` are appended). */
  readonly url: string
  /** The `service.name` resource attribute (default `effect-jobs`). */
  readonly serviceName?: string | undefined
  readonly serviceVersion?: string | undefined
  /** How often buffered spans and the metrics are sent (default 5 s for spans, 10 s for metrics). */
  readonly exportInterval?: Duration.Input | undefined
}

/**
 * The OTLP exporters, sending with Node's HTTP client (undici). The exporters
 * and the client are loaded when the layer is built: a program (or a command
 * of the CLI) that exports nothing does not load them at start-up.
 */
export const layer = (options: OtlpOptions): Layer.Layer<OtlpExporter.Flusher> =>
  Layer.unwrap(Effect.promise(async () => {
    const [{ Otlp }, NodeHttpClient] = await Promise.all([
      import("effect/observability"),
      import("@effect/platform-node/NodeHttpClient")
    ])
    return Otlp.layerJson({
      baseUrl: options.url,
      resource: {
        serviceName: options.serviceName ?? "effect-jobs",
        serviceVersion: options.serviceVersion
      },
      loggerMergeWithExisting: true,
      tracerExportInterval: options.exportInterval,
      metricsExportInterval: options.exportInterval,
      loggerExportInterval: options.exportInterval
    }).pipe(Layer.provide(NodeHttpClient.layerUndici))
  }))
