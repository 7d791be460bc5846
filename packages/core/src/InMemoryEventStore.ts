/**
 * An in-memory {@link EventStore.EventStore} with the same semantics as the PostgreSQL store: all four expected
 * versions, atomic batches, gap-safe global reads and subscriptions, scoped locks. Appending costs O(events
 * appended); nothing scans other streams. Time comes from Effect's `Clock`, so `TestClock` works.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as EventStore from "./EventStore.js"
import * as internal from "./internal/memoryStore.js"
import type * as Projection from "./Projection.js"

/**
 * A commit held "in flight" by {@link Control.holdNextCommit}: its positions are reserved but it is not visible until
 * `release`. Later commits become durable meanwhile, yet global readers and subscribers must not pass the hole.
 *
 * The held append ends in one of three ways; the first to happen wins, later calls do nothing:
 * - `release`: it commits (inline projections run then) and succeeds;
 * - `rollback`: it fails with `EventStoreError` (method `append` or `appendMany`) and nothing of it ever becomes
 *   visible: its positions stay a hole that readers skip, and the streams' versions are given back;
 * - the appending fiber is interrupted: the same as `rollback`, except that the append ends interrupted (as a
 *   PostgreSQL transaction rolled back by its client).
 *
 * `release` or `rollback` before an append has reserved its positions decides that append's fate in advance.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeldCommit {
  /** Waits until an append has reserved its positions, and returns them. */
  readonly reserved: Effect.Effect<ReadonlyArray<number>>
  /** Lets the held commit become visible. */
  readonly release: Effect.Effect<void>
  /**
   * Makes the held commit fail instead: nothing becomes visible, its positions stay a hole.
   *
   * @since 0.2.0
   */
  readonly rollback: Effect.Effect<void>
}

/**
 * Test hooks of the in-memory store.
 *
 * @since 0.1.0
 * @category tags
 */
export class Control extends Context.Tag("@effect-eventsourcing/core/InMemoryEventStore/Control")<
  Control,
  {
    /** The next append (or appendMany) reserves its positions, then waits for `release`. */
    readonly holdNextCommit: Effect.Effect<HeldCommit>
    /**
     * The next `delete` of a stream that has events reserves its tombstone's position, then waits for `release`:
     * the stream's events stay readable and the tombstone invisible until then (`rollback`: nothing is deleted, the
     * position stays a hole).
     *
     * @since 0.3.0
     */
    readonly holdNextDelete: Effect.Effect<HeldCommit>
  }
>() {}

/**
 * `inline`: projections run inside every append's commit, before it becomes visible; if one fails the append fails
 * with `EventStoreError` and nothing is stored. Their `onDelete` runs when a stream is deleted.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly inline?: ReadonlyArray<Projection.Projection<unknown>>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<EventStore.EventStore.Service> =>
  Effect.map(internal.make(options), (_) => _.store)

/**
 * The store together with its test hooks.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWithControl = (
  options?: Options
): Effect.Effect<{ readonly store: EventStore.EventStore.Service; readonly control: Control["Type"] }> =>
  internal.make(options)

/**
 * A fresh store per layer build, with options (inline projections).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options?: Options): Layer.Layer<EventStore.EventStore> =>
  Layer.effect(EventStore.EventStore, make(options))

/**
 * A fresh store per layer build. It provides {@link EventStore.EventStore} only, like every other store's Layer, so
 * the in-memory and the PostgreSQL Layers can be chosen between at runtime
 * (`Effect.provide(url === undefined ? InMemoryEventStore.layer : PostgresEventStore.layer().pipe(...))`). The test
 * hooks are in {@link layerWithControl}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<EventStore.EventStore> = layerWith()

/**
 * A fresh store and its test hooks ({@link Control}) per layer build: for tests that hold a commit in flight.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWithControl = (options?: Options): Layer.Layer<EventStore.EventStore | Control> =>
  Layer.effectContext(
    Effect.map(
      internal.make(options),
      ({ control, store }) => Context.make(EventStore.EventStore, store).pipe(Context.add(Control, control))
    )
  )
