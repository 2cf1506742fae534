/**
 * OpenTelemetry tracing for the beacon: spans go to an OTLP/HTTP collector when an endpoint is configured, and
 * nowhere otherwise.
 */
import { Effect, Layer } from "effect"

/** How to export spans. */
export interface TracingOptions {
  /**
   * The collector's OTLP/HTTP base URL, e.g. `http://otel-collector:4318` (spans go to `/v1/traces` under it), or a
   * full URL ending in `/v1/traces`. Undefined turns tracing off.
   */
  readonly endpoint: string | undefined
  /** The `service.name` resource attribute; `cloudtaser-beacon` unless given. */
  readonly serviceName?: string | undefined
}

/** The URL spans are posted to, for an OTLP/HTTP base endpoint as in `OTEL_EXPORTER_OTLP_ENDPOINT`. */
export const tracesUrl = (endpoint: string): string =>
  /\/v1\/traces\/?$/.test(endpoint) ? endpoint : `${endpoint.replace(/\/+$/, "")}/v1/traces`

/**
 * A layer that installs an OpenTelemetry tracer exporting in batches over OTLP/HTTP (JSON). Releasing the layer
 * flushes the spans still queued, so keep it inside the program's main scope. With no endpoint it is empty, and
 * spans stay in the process.
 */
export const layer = (options: TracingOptions): Layer.Layer<never> => {
  const endpoint = options.endpoint
  if (endpoint === undefined || endpoint === "") return Layer.empty
  // The OpenTelemetry SDK costs some 15 MB and a noticeable share of start-up, so it is loaded only when used.
  return Layer.unwrapEffect(Effect.promise(async () => {
    const [NodeSdk, { OTLPTraceExporter }, { BatchSpanProcessor }] = await Promise.all([
      import("@effect/opentelemetry/NodeSdk"),
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/sdk-trace-base")
    ])
    return NodeSdk.layer(() => ({
      resource: { serviceName: options.serviceName ?? "cloudtaser-beacon" },
      spanProcessor: new BatchSpanProcessor(new OTLPTraceExporter({ url: tracesUrl(endpoint) })),
      shutdownTimeout: "5 seconds"
    })).pipe(Layer.discard)
  }))
}
