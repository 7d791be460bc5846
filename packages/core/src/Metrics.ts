/**
 * The metrics of the library, as Effect `Metric`s in Effect's default registry: read them with `Metric.value`, or
 * export them with `@effect/opentelemetry` (or any exporter of Effect metrics). Each is recorded tagged:
 *
 * - by every store built with `EventStore.make`, tagged `store` (`"memory"`, `"postgres"`, or the `name` a store
 *   gives `make`): {@link appendDuration}, {@link eventsAppended}, {@link appendConflicts} (for `append` and
 *   `appendMany`);
 * - by every `Subscription`, tagged `subscription` (the projection's name): {@link subscriptionPosition},
 *   {@link subscriptionLag}, {@link subscriptionLagEvents}, {@link eventsHandled}, {@link handlerFailures}, {@link batchDuration}, and
 *   `Subscription.infrastructureRetries`.
 *
 * @example
 * ```ts
 * import { EventStore, ExpectedVersion, InMemoryEventStore, Metrics, StreamId } from "@effect-eventsourcing/core"
 * import { Effect, Metric } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   yield* EventStore.append(StreamId.unsafeMake("metered", "1"), [{ type: "Opened", data: {} }], ExpectedVersion.NoStream)
 *   return yield* Metric.value(Metric.tagged(Metrics.eventsAppended, "store", "memory"))
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(InMemoryEventStore.layer))).then((state) =>
 *   assert.ok(state.count >= 1)
 * )
 * ```
 *
 * @since 0.3.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/** 0.1 ms doubling up to ~13 s */
const seconds = MetricBoundaries.exponential({ start: 0.0001, factor: 2, count: 18 })

/**
 * `effect_eventsourcing_append_duration_seconds`: how long appends took (from the call to its outcome, whatever
 * it is), tagged `store`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const appendDuration: Metric.Metric.Histogram<number> = Metric.histogram(
  "effect_eventsourcing_append_duration_seconds",
  seconds,
  "how long EventStore.append / appendMany took, in seconds"
)

/**
 * `effect_eventsourcing_events_appended_total`: events committed by appends, tagged `store`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const eventsAppended: Metric.Metric.Counter<number> = Metric.counter(
  "effect_eventsourcing_events_appended_total",
  { description: "events committed by EventStore.append / appendMany", incremental: true }
)

/**
 * `effect_eventsourcing_append_conflicts_total`: appends refused with a `ConcurrencyConflict`, tagged `store`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const appendConflicts: Metric.Metric.Counter<number> = Metric.counter(
  "effect_eventsourcing_append_conflicts_total",
  { description: "appends refused with a ConcurrencyConflict", incremental: true }
)

/**
 * `effect_eventsourcing_subscription_position`: the global position of the last entry a subscription handled and
 * checkpointed, tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const subscriptionPosition: Metric.Metric.Gauge<number> = Metric.gauge(
  "effect_eventsourcing_subscription_position",
  { description: "global position of the last entry a subscription checkpointed" }
)

/**
 * `effect_eventsourcing_subscription_lag_seconds`: how far behind the writers a subscription is, in time: when it
 * checkpoints a batch, the time since its last entry was recorded. Tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const subscriptionLag: Metric.Metric.Gauge<number> = Metric.gauge(
  "effect_eventsourcing_subscription_lag_seconds",
  { description: "seconds between the recording of a subscription's last checkpointed entry and its checkpoint" }
)

/**
 * `effect_eventsourcing_subscription_lag_events`: how far behind the writers a subscription is, in positions of the
 * global log: the head (`EventStore.headPosition`) minus its checkpoint, when it checkpoints a batch. The head is
 * read at most once a second per subscription (between, the last head read, or the checkpoint when it is past it:
 * a lower bound, 0 once caught up). A filtered subscription counts the positions of the whole log, as
 * `Subscription.status` does. Tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const subscriptionLagEvents: Metric.Metric.Gauge<number> = Metric.gauge(
  "effect_eventsourcing_subscription_lag_events",
  { description: "global log positions between the head and a subscription's checkpoint" }
)

/**
 * `effect_eventsourcing_subscription_events_handled_total`: entries (events and tombstones) a subscription handled
 * and checkpointed, tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const eventsHandled: Metric.Metric.Counter<number> = Metric.counter(
  "effect_eventsourcing_subscription_events_handled_total",
  { description: "entries a subscription handled and checkpointed", incremental: true }
)

/**
 * `effect_eventsourcing_subscription_handler_failures_total`: failed attempts of a subscription's handler (each
 * retry counts), tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const handlerFailures: Metric.Metric.Counter<number> = Metric.counter(
  "effect_eventsourcing_subscription_handler_failures_total",
  { description: "failed attempts of a subscription's handler", incremental: true }
)

/**
 * `effect_eventsourcing_subscription_batch_duration_seconds`: how long a subscription's batch took (handling and
 * checkpoint, in one transaction where supported), tagged `subscription`.
 *
 * @since 0.3.0
 * @category metrics
 */
export const batchDuration: Metric.Metric.Histogram<number> = Metric.histogram(
  "effect_eventsourcing_subscription_batch_duration_seconds",
  seconds,
  "how long a subscription's batch (handler and checkpoint) took, in seconds"
)
