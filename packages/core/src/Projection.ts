/**
 * A projection is a named handler of recorded events. It runs inline (inside the append's commit: if it fails, the
 * append fails and nothing is stored) when registered on a store Layer, or asynchronously through a durable
 * `Subscription`.
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as EventStore from "./EventStore.js"
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
  /** Runs when a stream is deleted, to remove the read-side data derived from it. */
  readonly onDelete: ((streamId: StreamId) => Effect.Effect<void, E, R>) | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <E = never, R = never>(options: {
  readonly name: string
  readonly handle: (event: EventStore.RecordedEvent) => Effect.Effect<void, E, R>
  readonly onDelete?: (streamId: StreamId) => Effect.Effect<void, E, R>
}): Projection<E, R> => ({
  [TypeId]: TypeId,
  name: options.name,
  handle: options.handle,
  onDelete: options.onDelete
})
