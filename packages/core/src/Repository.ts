/**
 * Typed access to one aggregate's streams: events are encoded and decoded through the aggregate's Schema, and
 * states are rebuilt by folding them.
 *
 * @example
 * ```ts
 * import { Repository } from "@effect-eventsourcing/core"
 * import { Effect } from "effect"
 * import { Account } from "./Account.js"
 *
 * const accounts = Repository.make(Account)
 * const program = Effect.gen(function*() {
 *   const { state, version } = yield* accounts.load("42")
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Aggregate from "./Aggregate.js"
import * as EventStore from "./EventStore.js"
import type * as ExpectedVersion from "./ExpectedVersion.js"
import { codec, encodeAll } from "./internal/codec.js"
import * as Snapshots from "./internal/snapshots.js"
import * as SnapshotStore from "./SnapshotStore.js"
import * as StreamId from "./StreamId.js"

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
export type LoadError = Aggregate.EventDecodeError | EventStore.EventStoreError | StreamId.InvalidStreamId

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
  /** Encodes and appends events; an event that does not encode is refused before anything is written. */
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
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>
): Repository<State, Command, Event, E> => {
  const { decode, encode } = codec(aggregate)
  const snapshots = Snapshots.make(aggregate)
  const streamIdOf = (id: string) => StreamId.make(aggregate.name, id)

  /**
   * Folds a stream of recorded events from `start`, decoding each; returns the state and last version. With
   * `snapshot`, the first event must be the one the snapshot ended with, recorded before it was taken (so the stream
   * was not deleted and re-created since); otherwise the result is `undefined`.
   */
  const foldStream = (
    events: Stream.Stream<EventStore.RecordedEvent, EventStore.EventStoreError>,
    start: { readonly state: State; readonly version: number },
    snapshot?: { readonly takenAt: DateTime.Utc }
  ): Effect.Effect<
    { state: State; version: number } | undefined,
    Aggregate.EventDecodeError | EventStore.EventStoreError
  > =>
    // pulled chunk by chunk rather than `Stream.run*`, which forks a fiber per run and waits for it (several times
    // the cost of an in-memory load, bench W4); one `yieldNow` at the end keeps a load a point where other fibers
    // (background snapshot saves, concurrent commands) get to run, as the forked run did
    Effect.scoped(Effect.flatMap(Stream.toPull(events), (pull) => {
      const acc = { state: start.state, version: start.version }
      let pending = snapshot
      const loop: Effect.Effect<
        { state: State; version: number } | undefined,
        Aggregate.EventDecodeError | EventStore.EventStoreError
      > = Effect.matchEffect(pull, {
        onFailure: (error) =>
          Option.isSome(error) ?
            Effect.fail(error.value) :
            Effect.as(Effect.yieldNow(), pending !== undefined ? undefined : acc),
        onSuccess: (chunk) => {
          for (const recorded of chunk) {
            if (pending !== undefined) {
              if (recorded.version !== start.version || recorded.recordedAt.epochMillis > pending.takenAt.epochMillis) {
                // stale snapshot: stop reading
                return Effect.as(Effect.yieldNow(), undefined)
              }
              pending = undefined
              continue
            }
            acc.version = recorded.version
            if (aggregate.retired.has(recorded.type)) continue
            const event = decode(recorded)
            if (Either.isLeft(event)) return Effect.fail(event.left)
            acc.state = aggregate.evolve(acc.state, event.right)
          }
          return loop
        }
      })
      return loop
    }))

  const initial = { state: aggregate.initialState, version: 0 }

  const fullLoad = (store: EventStore.EventStore.Service, streamId: StreamId.StreamId) =>
    Effect.map(foldStream(store.read(streamId), initial), (loaded) => loaded ?? initial)

  /** Folds from a trusted snapshot when there is one, and saves a new one when enough events were folded. */
  const loadStream = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId
  ): Effect.Effect<{ state: State; version: number }, Aggregate.EventDecodeError | EventStore.EventStoreError> =>
    Effect.flatMap(snapshots.load(streamId), (snapshot) => {
      if (Option.isNone(snapshot)) {
        return Effect.tap(
          fullLoad(store, streamId),
          (loaded) => snapshots.maybeSave(streamId, loaded.state, loaded.version, 0)
        )
      }
      const { state, takenAt, version } = snapshot.value
      return foldStream(store.read(streamId, { from: version }), { state, version }, { takenAt }).pipe(
        Effect.flatMap((loaded) =>
          loaded === undefined
            ? Effect.tap(
              fullLoad(store, streamId),
              (full) => snapshots.maybeSave(streamId, full.state, full.version, 0)
            )
            : Effect.tap(Effect.succeed(loaded), () =>
              snapshots.maybeSave(streamId, loaded.state, loaded.version, version))
        )
      )
    })

  const loadOrInitial = (id: string) =>
    Effect.flatMap(
      streamIdOf(id),
      (streamId) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          Effect.map(loadStream(store, streamId), ({ state, version }) => ({
            id,
            streamId,
            state,
            version
          })))
    )

  const loadOption = (id: string) =>
    Effect.map(loadOrInitial(id), (loaded) => loaded.version === 0 ? Option.none() : Option.some(loaded))

  const load = (id: string) =>
    Effect.flatMap(loadOrInitial(id), (loaded) =>
      loaded.version === 0
        ? Effect.fail(new Aggregate.AggregateNotFound({ streamId: loaded.streamId }))
        : Effect.succeed(loaded))

  const loadAt = (id: string, at: At) =>
    Effect.flatMap(streamIdOf(id), (streamId) =>
      Effect.flatMap(EventStore.EventStore, (store) => {
        const events = "version" in at
          ? store.read(streamId, { to: at.version })
          : Stream.takeWhile(store.read(streamId), (e) => e.recordedAt.epochMillis <= at.until.epochMillis)
        return Effect.flatMap(
          Effect.map(foldStream(events, initial), (loaded) => loaded ?? initial),
          ({ state, version }) =>
            version === 0
              ? Effect.fail(new Aggregate.AggregateNotFound({ streamId }))
              : Effect.succeed({ id, streamId, state, version })
        )
      }))

  return {
    [TypeId]: TypeId,
    aggregate,
    streamId: streamIdOf,
    load: (id) => Effect.withSpan(load(id), "Repository.load", { attributes: { "aggregate": aggregate.name, id } }),
    loadOption,
    loadOrInitial,
    exists: (id) =>
      Effect.flatMap(
        streamIdOf(id),
        (streamId) =>
          Effect.flatMap(EventStore.EventStore, (store) => Effect.map(store.streamVersion(streamId), (v) => v > 0))
      ),
    loadMany: (ids) => Effect.forEach(ids, load, { concurrency: 8 }),
    loadAt: (id, at) =>
      Effect.withSpan(loadAt(id, at), "Repository.loadAt", { attributes: { "aggregate": aggregate.name, id } }),
    events: (id, options) =>
      Stream.unwrap(
        Effect.flatMap(streamIdOf(id), (streamId) =>
          Effect.map(EventStore.EventStore, (store) =>
            store.read(streamId, options).pipe(
              Stream.filter((recorded) =>
                !aggregate.retired.has(recorded.type)
              ),
              Stream.mapEffect((recorded) => decode(recorded))
            )))
      ),
    delete: (id) =>
      Effect.flatMap(streamIdOf(id), (streamId) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          Effect.zipRight(
            store.delete(streamId),
            Effect.flatMap(
              Effect.serviceOption(SnapshotStore.SnapshotStore),
              Option.match({ onNone: () => Effect.void, onSome: (snapshots) => snapshots.delete(streamId) })
            )
          ))),
    append: (id, events, expected, metadata) =>
      Effect.flatMap(
        streamIdOf(id),
        (streamId) =>
          Effect.flatMap(encodeAll(encode, streamId, events, metadata), (encoded) =>
            Effect.flatMap(EventStore.EventStore, (store) => store.append(streamId, encoded, expected)))
      )
  }
}
