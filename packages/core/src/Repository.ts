/**
 * Typed access to one aggregate's streams: events are encoded and decoded through the aggregate's Schema, and
 * states are rebuilt by folding them.
 *
 * @example
 * ```ts
 * import { Aggregate, Repository } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Deposited,
 *   initialState: { balance: 0 },
 *   decide: (command: { readonly amount: number }) => Either.right([new Deposited({ amount: command.amount })]),
 *   evolve: (state, event) => ({ balance: state.balance + event.amount })
 * })
 *
 * const accounts = Repository.make(Account)
 * const program = Effect.gen(function*() {
 *   const { state, version } = yield* accounts.load("42")
 *   return { balance: state.balance, version }
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type * as Aggregate from "./Aggregate.js"
import type * as EventStore from "./EventStore.js"
import type * as ExpectedVersion from "./ExpectedVersion.js"
import * as internal from "./internal/repository.js"
import type * as SnapshotStore from "./SnapshotStore.js"
import type * as StreamId from "./StreamId.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/Repository")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A rebuilt aggregate: its state and the stream version it reflects.
 *
 * @since 0.1.0
 * @category models
 */
export interface Loaded<State> {
  readonly id: string
  readonly streamId: StreamId.StreamId
  readonly state: State
  readonly version: number
}

/**
 * Where to stop when loading the past: at a stream version, or at the last event recorded at or before a time.
 *
 * @since 0.1.0
 * @category models
 */
export type At = { readonly version: number } | { readonly until: DateTime.DateTime }

/**
 * The failures of a load.
 *
 * @since 0.1.0
 * @category models
 */
export type LoadError =
  | Aggregate.EventDecodeError
  | EventStore.EventStoreError
  | EventStore.InvalidArgument
  | StreamId.InvalidStreamId

/**
 * @since 0.1.0
 * @category models
 */
export interface Repository<State, Command, Event, E> {
  readonly [TypeId]: TypeId
  readonly aggregate: Aggregate.Aggregate<State, Command, Event, E>
  /** `"<aggregate name>-<id>"`, validated. */
  readonly streamId: (id: string) => Either.Either<StreamId.StreamId, StreamId.InvalidStreamId>
  /** The current state; fails with `AggregateNotFound` when the stream has no events. */
  readonly load: (
    id: string
  ) => Effect.Effect<Loaded<State>, Aggregate.AggregateNotFound | LoadError, EventStore.EventStore>
  /** The current state, or `None` when the stream has no events. */
  readonly loadOption: (id: string) => Effect.Effect<Option.Option<Loaded<State>>, LoadError, EventStore.EventStore>
  /** The current state, or the initial state at version 0 when the stream has no events. */
  readonly loadOrInitial: (id: string) => Effect.Effect<Loaded<State>, LoadError, EventStore.EventStore>
  /** Whether the stream has events (one cheap query). */
  readonly exists: (
    id: string
  ) => Effect.Effect<boolean, EventStore.EventStoreError | StreamId.InvalidStreamId, EventStore.EventStore>
  /** Loads several aggregates; fails with `AggregateNotFound` on the first that is missing. */
  readonly loadMany: (
    ids: Iterable<string>
  ) => Effect.Effect<ReadonlyArray<Loaded<State>>, Aggregate.AggregateNotFound | LoadError, EventStore.EventStore>
  /** The state as it was at a version or a time (snapshots are bypassed). */
  readonly loadAt: (
    id: string,
    at: At
  ) => Effect.Effect<Loaded<State>, Aggregate.AggregateNotFound | LoadError, EventStore.EventStore>
  /** The decoded events of one aggregate. */
  readonly events: (
    id: string,
    options?: EventStore.ReadOptions
  ) => Stream.Stream<Event, LoadError, EventStore.EventStore>
  /**
   * Deletes the aggregate's stream (GDPR) and its snapshots. The store tells inline projections (`onDelete`).
   */
  readonly delete: (
    id: string
  ) => Effect.Effect<
    void,
    EventStore.EventStoreError | SnapshotStore.SnapshotStoreError | StreamId.InvalidStreamId,
    EventStore.EventStore
  >
  /**
   * Encodes and appends events; an event that does not encode is refused before anything is written. The events
   * carry `metadata` over the ambient metadata of `CommandHandler.withMetadata`.
   */
  readonly append: (
    id: string,
    events: ReadonlyArray<Event>,
    expected: ExpectedVersion.ExpectedVersion,
    metadata?: EventStore.EventMetadata
  ) => Effect.Effect<
    EventStore.AppendResult,
    EventStore.AppendError | Aggregate.EventEncodeError | StreamId.InvalidStreamId,
    EventStore.EventStore
  >
}

/**
 * The aggregate state cache (opt-in): the repository keeps the last loaded `(state, version)` of up to `capacity`
 * streams (least recently used first out, one cache per store service) and a load reads only the events after the
 * cached version (`EventStore.readForFold` from that version), so appends of other processes are always seen. A
 * stream deleted and re-created since, or an append rolled back, is recognised by the position of the cached
 * version's event (positions are never reused) and folded again from the start. `loadAt` never uses the cache.
 * Cached states are shared between loads: treat states as immutable values (as `evolve` should).
 *
 * @since 0.3.0
 * @category models
 */
export interface CacheOptions {
  /** How many streams to keep: a positive integer (otherwise every load fails with `InvalidArgument`). */
  readonly capacity: number
}

/**
 * Options of {@link make}.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Keep loaded states in an in-process cache (see {@link CacheOptions}); no cache by default. */
  readonly cache?: CacheOptions | undefined
}

/**
 * The repository of an aggregate. With `{ cache: { capacity } }` its loads go through the aggregate state cache
 * (see {@link CacheOptions}), e.g. `Repository.make(Counter, { cache: { capacity: 10_000 } })`.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler, InMemoryEventStore, Repository } from "@effect-eventsourcing/core"
 * import { Effect, Either, Option, Schema } from "effect"
 *
 * class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Int }) {}
 * class Increment extends Schema.TaggedClass<Increment>()("Increment", { by: Schema.Int }) {}
 * class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { max: Schema.Int }) {}
 *
 * const Counter = Aggregate.make({
 *   name: "counter", // streams are "counter-<id>"
 *   events: Incremented,
 *   commands: Increment,
 *   initialState: 0,
 *   decide: (command, state) =>
 *     state + command.by > 100
 *       ? Either.left(new TooLarge({ max: 100 }))
 *       : Either.right([new Incremented({ by: command.by })]),
 *   evolve: (state, event) => state + event.by
 * })
 *
 * const counters = Repository.make(Counter)
 *
 * const program = Effect.gen(function*() {
 *   yield* CommandHandler.make(Counter)("a", new Increment({ by: 5 }))
 *   const loaded = yield* counters.load("a") // fails with AggregateNotFound when the stream is empty
 *   const missing = yield* counters.loadOption("b")
 *   return { state: loaded.state, version: loaded.version, missing: Option.isNone(missing) }
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(InMemoryEventStore.layer))).then((result) =>
 *   assert.deepStrictEqual(result, { state: 5, version: 1, missing: true })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options?: Options
): Repository<State, Command, Event, E> => ({ [TypeId]: TypeId, ...internal.make(aggregate, options) })
