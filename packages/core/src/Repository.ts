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
import type * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import type * as Aggregate from "./Aggregate.js"
import type * as EventStore from "./EventStore.js"
import type * as ExpectedVersion from "./ExpectedVersion.js"
import * as internal from "./internal/repository.js"
import * as internalUnit from "./internal/unitOfWork.js"
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

/**
 * Options of {@link unitOfWork}.
 *
 * @since 0.3.0
 * @category models
 */
export interface UnitOfWorkOptions<R = never> {
  /**
   * How to run the whole unit again, from the start and with an empty identity map, after it failed with a
   * `ConcurrencyConflict` (at its commit, or raised inside it). Default: no retry, the conflict is the unit's
   * failure. The Schedule is stepped with conflicts only. The unit's effect runs once per attempt: keep what it does
   * besides loading and appending idempotent.
   */
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict, R>
}

/**
 * Runs `self` as one unit of work on the `EventStore` of its context: every append made inside it through a
 * `Repository` or a `CommandHandler` (of any aggregate) is collected, and committed when `self` succeeds as ONE atomic
 * `appendMany`, each stream expected at the version the unit first found it at. A conflict on any stream fails the
 * unit with that `ConcurrencyConflict` and nothing is written; a unit whose effect fails (or is interrupted) writes
 * nothing either.
 *
 * - **Identity map.** Inside the unit, loading a stream again (`load`, `loadOption`, `loadOrInitial`, `loadMany`,
 *   `exists`, and a `CommandHandler`'s load) gives the unit's state, including its own appends not yet committed;
 *   the same aggregate gets the same state object back. Appending twice to a stream chains the versions. The map is
 *   dropped when the unit ends: afterwards, loads read the store.
 * - **What the effect sees.** Appends inside the unit succeed with the stream's version after them and `position` 0
 *   (positions exist only after the commit). `loadAt`, `events` and `delete` are not part of the unit: they work on
 *   the store at once. Fibers forked by `self` share the unit while it runs (what they do after it ended is outside
 *   any unit); a unit started inside a unit (on the same store) joins the outer one.
 * - **Conflicts.** Nothing is committed before the end, so a `CommandHandler`'s per-command retry cannot help with
 *   other writers; the unit's own `retry` option runs the whole unit again instead. Two fibers of one unit that
 *   decide on the same stream at the same time are checked against the unit's version (the handler retries the
 *   later one as usual).
 * - **What still applies.** Event metadata (the handler's, `CommandHandler.withMetadata`'s) is taken when each
 *   command is handled; a `commandId` gives the events their derived ids, so re-running a unit whose every command
 *   has a `commandId` after `CommitOutcomeUnknown` is recognised by the store instead of writing twice (the
 *   effect's results then describe the unit's own view, not the replayed commit). Inline projections run in the
 *   commit's transaction (one that fails rejects the unit); snapshots are taken after the commit.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler, InMemoryEventStore, Repository } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
 * class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Int }) {}
 * class Insufficient extends Schema.TaggedError<Insufficient>()("Insufficient", {}) {}
 *
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Schema.Union(Deposited, Withdrawn),
 *   initialState: 0,
 *   // a positive amount is a deposit, a negative one a withdrawal
 *   decide: (amount: number, balance: number) =>
 *     balance + amount < 0
 *       ? Either.left(new Insufficient())
 *       : Either.right([amount < 0 ? new Withdrawn({ amount: -amount }) : new Deposited({ amount })]),
 *   evolve: (balance, event) => event._tag === "Deposited" ? balance + event.amount : balance - event.amount
 * })
 * const handle = CommandHandler.make(Account)
 * const accounts = Repository.make(Account)
 *
 * // both appends are committed together, or none
 * const transfer = (from: string, to: string, amount: number) =>
 *   Repository.unitOfWork(Effect.zipRight(handle(from, -amount), handle(to, amount)))
 *
 * const program = Effect.gen(function*() {
 *   yield* handle("a", 100)
 *   yield* transfer("a", "b", 30)
 *   const refused = yield* Effect.flip(transfer("a", "b", 500))
 *   const a = yield* accounts.load("a")
 *   const b = yield* accounts.load("b")
 *   return [a.state, b.state, refused._tag]
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(InMemoryEventStore.layer))).then((result) =>
 *   assert.deepStrictEqual(result, [70, 30, "Insufficient"])
 * )
 * ```
 *
 * @since 0.3.0
 * @category combinators
 */
export const unitOfWork: {
  <R2 = never>(
    options?: UnitOfWorkOptions<R2>
  ): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EventStore.AppendError, R | R2 | EventStore.EventStore>
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    options?: UnitOfWorkOptions<R2>
  ): Effect.Effect<A, E | EventStore.AppendError, R | R2 | EventStore.EventStore>
} = internalUnit.unitOfWork
