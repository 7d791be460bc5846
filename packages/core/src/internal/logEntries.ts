/**
 * How a subscription hands a batch of the global log to a projection: events through `handleBatch` / `handle`,
 * tombstones through `onDelete`, in position order.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Tracer from "effect/Tracer"
import * as EventStore from "../EventStore.js"
import type * as Projection from "../Projection.js"

/**
 * The options of a subscription's `EventStore.subscribe`: it reads the tombstones of the global log only when the
 * projection has an `onDelete` (nothing else has anything to do with them).
 *
 * @internal
 */
export const subscribeOptions = <E, R>(
  projection: Projection.Projection<E, R>,
  from: number,
  filter: EventStore.Filter | undefined
): EventStore.SubscribeOptions & EventStore.WithDeletions => {
  const deletions = projection.onDelete !== undefined
  return filter === undefined ? { from, deletions } : { from, filter, deletions }
}

const handleEvents = <E, R>(
  projection: Projection.Projection<E, R>,
  events: Chunk.Chunk<EventStore.RecordedEvent>
): Effect.Effect<void, E, R> => {
  const handleBatch = projection.handleBatch
  return handleBatch === undefined
    ? Effect.forEach(events, projection.handle, { discard: true })
    : Effect.suspend(() => handleBatch(Chunk.toReadonlyArray(events)))
}

/**
 * Handles the entries in order: each run of consecutive events as one batch (`handleBatch` when the projection has
 * one, else `handle` per event), each tombstone with `onDelete(streamId)` (skipped when the projection has none).
 *
 * @internal
 */
export const handleEntries = <E, R>(
  projection: Projection.Projection<E, R>,
  entries: Chunk.Chunk<EventStore.LogEntry>
): Effect.Effect<void, E, R> => {
  // the common case: no tombstone in the batch
  if (!Chunk.some(entries, EventStore.isTombstone)) {
    return handleEvents(projection, entries as Chunk.Chunk<EventStore.RecordedEvent>)
  }
  // built anew on every run (a retried batch calls the handlers again, as `Effect.forEach` does)
  return Effect.suspend(() => {
    const steps: Array<Effect.Effect<void, E, R>> = []
    let run: Array<EventStore.RecordedEvent> = []
    const flush = () => {
      if (run.length > 0) steps.push(handleEvents(projection, Chunk.unsafeFromArray(run)))
      run = []
    }
    for (const entry of entries) {
      if (EventStore.isTombstone(entry)) {
        flush()
        const onDelete = projection.onDelete
        if (onDelete !== undefined) steps.push(Effect.suspend(() => onDelete(entry.streamId)))
      } else {
        run.push(entry)
      }
    }
    flush()
    return Effect.forEach(steps, (step) => step, { discard: true })
  })
}

/** At most this many links per batch span. */
const maxLinks = 32

/**
 * Links from a subscription's batch span to the spans that appended its events (the `traceId` / `spanId` that
 * `CommandHandler` stores in the metadata), once per span, at most `maxLinks`.
 *
 * @internal
 */
export const spanLinks = (entries: Chunk.Chunk<EventStore.LogEntry>): Array<Tracer.SpanLink> => {
  const links: Array<Tracer.SpanLink> = []
  let seen: Set<string> | undefined
  for (const entry of entries) {
    if (EventStore.isTombstone(entry)) continue
    const { spanId, traceId } = entry.metadata
    if (typeof traceId !== "string" || typeof spanId !== "string") continue
    seen ??= new Set()
    if (seen.has(spanId)) continue
    seen.add(spanId)
    links.push({
      _tag: "SpanLink",
      span: Tracer.externalSpan({ traceId, spanId }),
      attributes: { "event.position": entry.position, "event.type": entry.type }
    })
    if (links.length === maxLinks) break
  }
  return links
}

/**
 * A projection may carry, under this key, which of its handler's failures are the infrastructure's (a store it
 * writes to is down) rather than its own: a subscription retries those like its own stores' failures (for as long as
 * it runs, with backoff, starting over from the checkpoint) instead of stepping the `retry` Schedule and stopping or
 * parking. `ProcessManager` sets it (its handler reads and appends to the event store and schedules timers). A
 * symbol key survives the spread of a projection (consumer groups restrict a projection by spreading it).
 *
 * @internal
 */
export const infrastructureFailure: unique symbol = Symbol.for(
  "@effect-eventsourcing/core/Projection/infrastructureFailure"
)

/** @internal */
export const isInfrastructureFailure = <E, R>(projection: Projection.Projection<E, R>): (error: E) => boolean => {
  const classify = (projection as { readonly [infrastructureFailure]?: (error: unknown) => boolean })[
    infrastructureFailure
  ]
  return classify ?? (() => false)
}
