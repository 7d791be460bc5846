/**
 * Recording the metrics of `Metrics.ts`, updated synchronously where the outcome is known (one `matchCauseEffect`
 * on the append path: `Effect.onExit` cost twice as much there). The tags are one array per store / subscription, kept: the
 * registry caches a metric's hook by the identity of that array (`Metric.tagged` builds a new one on every update,
 * and the registry lookup it then needs cost ~5 µs per append).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import type * as EventStore from "../EventStore.js"
import * as Metrics from "../Metrics.js"

/**
 * Durations are wall-clock time (a `TestClock` would make them 0), read from a clock of our own: the append path
 * then needs no `Clock` lookup.
 */
const clock = Clock.make()

const isConflict = (cause: Cause.Cause<unknown>): boolean => {
  const failure = Cause.failureOption(cause)
  return failure._tag === "Some" && typeof failure.value === "object" && failure.value !== null &&
    (failure.value as { readonly _tag?: unknown })._tag === "ConcurrencyConflict"
}

/** @internal */
export type AppendMeter = <A, E, R>(effect: Effect.Effect<A, E, R>, events: number) => Effect.Effect<A, E, R>

/**
 * The append metrics of one store: `meter(append, events)` records its duration, and on its outcome the events
 * committed or the conflict.
 *
 * @internal
 */
export const appendMeter = (store: string): AppendMeter => {
  const tags = [MetricLabel.make("store", store)]
  return <A, E, R>(effect: Effect.Effect<A, E, R>, events: number): Effect.Effect<A, E, R> =>
    // timed from each run (an append effect may be run again, e.g. retried)
    Effect.suspend(() => {
      const start = clock.unsafeCurrentTimeNanos()
      return Effect.matchCauseEffect(effect, {
        onFailure: (cause) => {
          Metrics.appendDuration.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - start) / 1e9, tags)
          if (isConflict(cause)) Metrics.appendConflicts.unsafeUpdate(1, tags)
          return Effect.failCause(cause)
        },
        onSuccess: (a) => {
          Metrics.appendDuration.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - start) / 1e9, tags)
          if (events > 0) Metrics.eventsAppended.unsafeUpdate(events, tags)
          return Effect.succeed(a)
        }
      })
    })
}

/** How often a subscription reads the head of the log for its lag in events, at most. */
const headInterval = 1_000

/**
 * The metrics of one subscription. `head` reads the head of the log (`EventStore.headPosition`) for the lag in
 * events: after a committed batch, at most once per `headInterval`; its failure leaves the gauge as it is.
 *
 * @internal
 */
export const subscriptionMeter = (
  name: string,
  head: Effect.Effect<number, unknown>,
  options: { readonly headInterval?: number } = {}
) => {
  const tags = [MetricLabel.make("subscription", name)]
  const interval = options.headInterval ?? headInterval
  // the last head read (a lower bound of the head), and when it was read
  let knownHead = 0
  let readAt = Number.NEGATIVE_INFINITY
  const lagEvents = (position: number) =>
    Metrics.subscriptionLagEvents.unsafeUpdate(Math.max(0, knownHead - position), tags)
  const refresh = (position: number) =>
    Effect.matchEffect(head, {
      onFailure: () => Effect.void,
      onSuccess: (read) =>
        Effect.sync(() => {
          knownHead = Math.max(knownHead, read)
          lagEvents(position)
        })
    })
  return {
    /** times a batch (whatever its outcome) */
    timed: <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
      Effect.clockWith((clock) => {
        const start = clock.unsafeCurrentTimeNanos()
        return Effect.onExit(effect, () => {
          Metrics.batchDuration.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - start) / 1e9, tags)
          return Effect.void
        })
      }),
    /** one failed attempt of the handler */
    failed: Effect.sync(() => Metrics.handlerFailures.unsafeUpdate(1, tags)),
    /** a batch handled and checkpointed */
    committed: (batch: Chunk.Chunk<EventStore.LogEntry>): Effect.Effect<void> =>
      Effect.clockWith((clock) =>
        Effect.sync(() => {
          const last = Chunk.unsafeLast(batch)
          Metrics.subscriptionPosition.unsafeUpdate(last.position, tags)
          Metrics.eventsHandled.unsafeUpdate(Chunk.size(batch), tags)
          Metrics.subscriptionLag.unsafeUpdate(
            Math.max(0, clock.unsafeCurrentTimeMillis() - last.recordedAt.epochMillis) / 1000,
            tags
          )
        })
      ),
    /**
     * The lag in events after a batch ending at `position`: the head is read again when the last read is older
     * than the interval; otherwise the last read (raised to `position`) serves.
     */
    lag: (position: number): Effect.Effect<void> =>
      Effect.suspend(() => {
        knownHead = Math.max(knownHead, position)
        const now = clock.unsafeCurrentTimeMillis()
        if (now - readAt < interval) {
          lagEvents(position)
          return Effect.void
        }
        readAt = now
        return refresh(position)
      })
  }
}
