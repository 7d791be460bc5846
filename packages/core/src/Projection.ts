/**
 * A projection is a named handler of recorded events. It runs inline (inside the append's commit: if it fails, the
 * append fails and nothing is stored) when registered on a store Layer, or asynchronously through a durable
 * `Subscription`.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Aggregate from "./Aggregate.js"
import type * as EventStore from "./EventStore.js"
import { codec } from "./internal/codec.js"
import type { StreamId } from "./StreamId.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/Projection")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface Projection<E = never, R = never> {
  readonly [TypeId]: TypeId
  readonly name: string
  /** Handles one event. Events reach it in global position order. */
  readonly handle: (event: EventStore.RecordedEvent) => Effect.Effect<void, E, R>
  /**
   * Runs when a stream is deleted, to remove the read-side data derived from it: for inline projections, in the
   * delete's transaction; for a subscription, when it reaches the deletion's tombstone in the global log (in
   * position order with the events, before its checkpoint passes the tombstone: exactly once where the checkpoint
   * store has transactions). A subscription of a projection without `onDelete` does not read tombstones.
   */
  readonly onDelete: ((streamId: StreamId) => Effect.Effect<void, E, R>) | undefined
  /**
   * Runs when a subscription of this projection is reset to `position` (0: replay from the start), before the
   * replay, to remove the read-side data derived from later events. Absent (or `undefined`) for a projection with
   * nothing to remove; `make`, `makeBatched` and `fromAggregate` set it from their `onReset` option.
   */
  readonly onReset?: ((position: number) => Effect.Effect<void, E, R>) | undefined
  /**
   * Handles a batch of consecutive events at once (subscriptions use it when present, e.g. to write a whole batch
   * in one statement); it must be equivalent to `handle` on each event in order.
   */
  readonly handleBatch?: ((events: ReadonlyArray<EventStore.RecordedEvent>) => Effect.Effect<void, E, R>) | undefined
}

/**
 * @example
 * ```ts
 * import { EventStore, ExpectedVersion, InMemoryEventStore, Projection, StreamId } from "@effect-eventsourcing/core"
 * import { Effect } from "effect"
 *
 * const counts = new Map<string, number>()
 * const eventCounts = Projection.make({
 *   name: "event-counts",
 *   handle: (event) => Effect.sync(() => void counts.set(event.type, (counts.get(event.type) ?? 0) + 1)),
 *   // optional: forget a deleted stream (inline, or at its tombstone in a subscription), clear before a replay
 *   onDelete: (streamId) => Effect.log(`forget ${streamId}`),
 *   onReset: () => Effect.sync(() => counts.clear())
 * })
 *
 * // inline: runs inside every append's transaction (a failure rejects the append)
 * const Store = InMemoryEventStore.layerWith({ inline: [eventCounts] })
 *
 * const program = EventStore.append(
 *   StreamId.unsafeMake("account", "1"),
 *   [{ type: "Opened", data: {} }],
 *   ExpectedVersion.NoStream
 * )
 *
 * Effect.runPromise(program.pipe(Effect.provide(Store))).then(() => assert.strictEqual(counts.get("Opened"), 1))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(options: {
  readonly name: string
  readonly handle: (event: EventStore.RecordedEvent) => Effect.Effect<void, E, R>
  readonly onDelete?: (streamId: StreamId) => Effect.Effect<void, E, R>
  readonly onReset?: (position: number) => Effect.Effect<void, E, R>
}): Projection<E, R> => ({
  [TypeId]: TypeId,
  name: options.name,
  handle: options.handle,
  onDelete: options.onDelete,
  onReset: options.onReset
})

/**
 * A projection that handles events in batches: a subscription hands it each batch (up to its `batchSize`) at once,
 * inside the batch's transaction; inline (and anywhere one event is handled) it receives one-event batches.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeBatched = <E = never, R = never>(options: {
  readonly name: string
  readonly handleBatch: (events: ReadonlyArray<EventStore.RecordedEvent>) => Effect.Effect<void, E, R>
  readonly onDelete?: (streamId: StreamId) => Effect.Effect<void, E, R>
  readonly onReset?: (position: number) => Effect.Effect<void, E, R>
}): Projection<E, R> => ({
  [TypeId]: TypeId,
  name: options.name,
  handle: (event) => options.handleBatch([event]),
  handleBatch: options.handleBatch,
  onDelete: options.onDelete,
  onReset: options.onReset
})

/**
 * A projection of one aggregate's events, decoded through its `events` Schema. Events of other categories are
 * skipped (subscribe with `filter: { categories: [aggregate.name] }` to not even read them), and so are the
 * aggregate's retired event types; an event that no longer decodes fails the handler with `EventDecodeError`
 * (never skipped silently).
 *
 * @example
 * ```ts
 * import { Aggregate, Projection } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Number }) {}
 * const Counter = Aggregate.make({
 *   name: "counter",
 *   events: Incremented,
 *   initialState: 0,
 *   decide: (command: { readonly by: number }) => Either.right([new Incremented({ by: command.by })]),
 *   evolve: (state, event) => state + event.by
 * })
 *
 * const totals = new Map<string, number>()
 * const projection = Projection.fromAggregate(Counter, {
 *   name: "counter-totals",
 *   handle: (event, recorded) =>
 *     Effect.sync(() => totals.set(recorded.streamId, (totals.get(recorded.streamId) ?? 0) + event.by))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromAggregate = <State, Command, Event, DomainError, E = never, R = never>(
  aggregate: Aggregate.Aggregate<State, Command, Event, DomainError>,
  options: {
    readonly name: string
    readonly handle: (event: Event, recorded: EventStore.RecordedEvent) => Effect.Effect<void, E, R>
    readonly onDelete?: (streamId: StreamId) => Effect.Effect<void, E, R>
    readonly onReset?: (position: number) => Effect.Effect<void, E, R>
  }
): Projection<E | Aggregate.EventDecodeError, R> => {
  const decode = codec(aggregate).decode
  const prefix = `${aggregate.name}-`
  return make<E | Aggregate.EventDecodeError, R>({
    ...options,
    handle: (recorded) => {
      if (!recorded.streamId.startsWith(prefix) || aggregate.retired.has(recorded.type)) return Effect.void
      const decoded = decode(recorded)
      return Either.isLeft(decoded) ? Effect.fail(decoded.left) : options.handle(decoded.right, recorded)
    }
  })
}
