/**
 * Exporting the library's spans and metrics with `@effect/opentelemetry`: one Layer wires the OpenTelemetry SDK as
 * Effect's tracer and as a reader of Effect's metrics. Give it the exporters of your backend (OTLP, Prometheus, ...);
 * the test (`test/telemetry.test.ts`) uses in-memory ones.
 *
 * What one command gives: a trace from the command's own span through `CommandHandler.handle` and
 * `EventStore.append`; the events store the handler span's `traceId` / `spanId` in their metadata, and the
 * subscription that later handles them runs its `Subscription.handle` span with a link to it. The metrics of the
 * core `Metrics` module (`effect_eventsourcing_*`) are read by the metric reader.
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import type { MetricReader } from "@opentelemetry/sdk-metrics"
import type { SpanProcessor } from "@opentelemetry/sdk-trace-base"

export const layer = (options: { readonly spanProcessor: SpanProcessor; readonly metricReader: MetricReader }) =>
  NodeSdk.layer(() => ({
    resource: { serviceName: "bank-account" },
    spanProcessor: options.spanProcessor,
    metricReader: options.metricReader
  }))
