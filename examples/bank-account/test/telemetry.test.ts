/**
 * One trace, exported through `@effect/opentelemetry` with in-memory exporters: the command's span, then
 * `CommandHandler.handle`, then `EventStore.append`; the asynchronous projection's `Subscription.handle` span linked
 * to the handler's span through the `traceId` / `spanId` stored in the event's metadata; and the metrics.
 */
import { CheckpointStore, EventStore, InMemoryEventStore, Projection, Subscription } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { AggregationTemporality, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Chunk, Effect, Layer, Stream } from "effect"
import { Account, OpenAccount } from "../src/Account.js"
import { handle } from "../src/program.js"
import * as Telemetry from "../src/telemetry.js"

/** A metric reader that collects on demand. */
class CollectingReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected onForceFlush(): Promise<void> {
    return Promise.resolve()
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve()
  }
}

const spans = new InMemorySpanExporter()
const reader = new CollectingReader()

const openedCount = Projection.fromAggregate(Account, { name: "opened-accounts", handle: () => Effect.void })

/** The value of a counter's data point with the given attribute. */
const counter = (metrics: ResourceMetrics, name: string, key: string, value: string): number | undefined => {
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== name) continue
      for (const point of metric.dataPoints) {
        if (point.attributes[key] === value) return point.value as number
      }
    }
  }
  return undefined
}

describe("telemetry", () => {
  it.live("one trace from the command to the asynchronous projection, and the metrics", () =>
    Effect.gen(function*() {
      const stored = yield* Effect.scoped(Effect.gen(function*() {
        const subscription = yield* Subscription.forkScoped(openedCount)
        // the command as it arrives (an HTTP request, a CLI invocation): its own span
        const result = yield* handle("telemetry-1", new OpenAccount({ owner: "Ada" })).pipe(
          Effect.withSpan("cli open-account")
        )
        yield* subscription.awaitPosition(result.position)
        const store = yield* EventStore.EventStore
        return Chunk.toArray(yield* Stream.runCollect(store.readAll()))
      })).pipe(
        Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory))
      )

      const finished = spans.getFinishedSpans()
      // the exported spans, as an operator's tracing backend receives them
      console.log(
        finished.map((s) =>
          `${s.name.padEnd(24)} trace ${s.spanContext().traceId.slice(0, 8)} span ${
            s.spanContext().spanId.slice(0, 8)
          }` +
          ` parent ${s.parentSpanContext?.spanId.slice(0, 8) ?? "-       "}` +
          (s.links.length === 0
            ? ""
            : ` links ${
              s.links.map((l) => `${l.context.traceId.slice(0, 8)}/${l.context.spanId.slice(0, 8)}`).join(",")
            }`)
        ).join("\n")
      )
      const named = (name: string): ReadableSpan => {
        const span = finished.find((s) => s.name === name)
        assert.isDefined(span, `no span ${name} among ${finished.map((s) => s.name).join(", ")}`)
        return span!
      }
      const command = named("cli open-account")
      const handler = named("CommandHandler.handle")
      const append = named("EventStore.append")
      const projection = named("Subscription.handle")
      const traceId = command.spanContext().traceId
      // command -> CommandHandler.handle -> ... -> EventStore.append, one trace
      assert.strictEqual(handler.parentSpanContext?.spanId, command.spanContext().spanId)
      assert.strictEqual(append.spanContext().traceId, traceId)
      const ancestors = (span: ReadableSpan): Array<string> => {
        const parent = finished.find((s) => s.spanContext().spanId === span.parentSpanContext?.spanId)
        return parent === undefined ? [] : [parent.name, ...ancestors(parent)]
      }
      assert.include(ancestors(append), "CommandHandler.handle")
      // the event carries the handler's span ...
      assert.strictEqual(stored.length, 1)
      assert.strictEqual(stored[0]!.metadata.traceId, traceId)
      assert.strictEqual(stored[0]!.metadata.spanId, handler.spanContext().spanId)
      // ... and the projection's span, in a trace of its own, links to it
      assert.notStrictEqual(projection.spanContext().traceId, traceId)
      assert.deepStrictEqual(
        projection.links.map((link) => [link.context.traceId, link.context.spanId]),
        [[traceId, handler.spanContext().spanId]]
      )

      const { resourceMetrics } = yield* Effect.promise(() => reader.collect())
      assert.strictEqual(
        counter(resourceMetrics, "effect_eventsourcing_events_appended_total", "store", "memory"),
        1
      )
      assert.strictEqual(
        counter(
          resourceMetrics,
          "effect_eventsourcing_subscription_events_handled_total",
          "subscription",
          "opened-accounts"
        ),
        1
      )
    }).pipe(Effect.provide(Telemetry.layer({ spanProcessor: new SimpleSpanProcessor(spans), metricReader: reader }))))
})
