import type * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Aggregate from "../Aggregate.js"
import * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type * as Repository from "../Repository.js"
import * as SnapshotStore from "../SnapshotStore.js"
import * as StreamId from "../StreamId.js"
import { codec, encodeAll } from "./codec.js"
import * as Snapshots from "./snapshots.js"
import * as UnitOfWork from "./unitOfWork.js"
import * as Uuid from "./uuid.js"

/** @internal The ambient metadata of `CommandHandler.withMetadata` (public as `CommandHandler.currentMetadata`). */
export const currentMetadata: FiberRef.FiberRef<EventStore.EventMetadata> = globalValue(
  Symbol.for("@effect-eventsourcing/core/CommandHandler/currentMetadata"),
  () => FiberRef.unsafeMake<EventStore.EventMetadata>({})
)

const isEmpty = (metadata: EventStore.EventMetadata): boolean => {
  for (const _ in metadata) return false
  return true
}

/**
 * @internal
 * A stream as loaded for a write: its state and version, and the version of the latest snapshot known to be stored
 * (or being stored) for it, 0 for none: what the snapshot policy needs after the append.
 */
export interface Current<State> {
  readonly streamId: StreamId.StreamId
  readonly state: State
  readonly version: number
  readonly snapshot: number
}

/** @internal The outcome of {@link Internal.appendTo}. */
export interface Written<State> {
  readonly state: State
  readonly version: number
  readonly position: number
}

/**
 * @internal
 * The repository plus the entry points `CommandHandler` goes through: `current` (the load of a write) and
 * `appendTo` (append with `Exact(current.version)`, fold, apply the snapshot policy). Both take the store, so a
 * retried command looks it up once.
 */
export interface Internal<State, Command, Event, E>
  extends Omit<Repository.Repository<State, Command, Event, E>, Repository.TypeId>
{
  readonly current: (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId
  ) => Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError>
  /**
   * With a `commandId`, the events get the ids derived from it (`eventIdOf`): re-sending the same command after an
   * unknown outcome replays the batch the store already has instead of writing it twice.
   */
  readonly appendTo: (
    store: EventStore.EventStore.Service,
    current: Current<State>,
    events: ReadonlyArray<Event>,
    metadata: EventStore.EventMetadata | undefined,
    commandId?: string
  ) => Effect.Effect<Written<State>, EventStore.AppendError | Aggregate.EventEncodeError | Aggregate.EventDecodeError>
}

/** @internal */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>
): Internal<State, Command, Event, E> => {
  const { decode, encode } = codec(aggregate)
  const snapshots = Snapshots.make(aggregate)
  const streamIdOf = (id: string) => StreamId.make(aggregate.name, id)

  /**
   * Folds a stream of recorded events from `start`, decoding each; returns the state and last version. With
   * `snapshot`, the first event must be the one the snapshot ended with, recorded before it was taken (so the stream
   * was not deleted and re-created since); otherwise the result is `undefined`.
   */
  const foldStream = (
    events: Stream.Stream<EventStore.RecordedEvent, EventStore.ReadError>,
    start: { readonly state: State; readonly version: number },
    snapshot?: { readonly takenAt: DateTime.Utc }
  ): Effect.Effect<
    { state: State; version: number } | undefined,
    Aggregate.EventDecodeError | EventStore.ReadError
  > =>
    // pulled chunk by chunk rather than `Stream.run*`, which forks a fiber per run and waits for it (several times
    // the cost of an in-memory load, bench W4); one `yieldNow` at the end keeps a load a point where other fibers
    // (background snapshot saves, concurrent commands) get to run, as the forked run did
    Effect.scoped(Effect.flatMap(Stream.toPull(events), (pull) => {
      const acc = { state: start.state, version: start.version }
      let pending = snapshot
      const loop: Effect.Effect<
        { state: State; version: number } | undefined,
        Aggregate.EventDecodeError | EventStore.ReadError
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

  /** The snapshot policy after a load: saves the state when it is due; `last` is the snapshot it was folded from. */
  const loaded = (
    streamId: StreamId.StreamId,
    { state, version }: { readonly state: State; readonly version: number },
    last: number
  ): Effect.Effect<Current<State>> =>
    snapshots.due(version, last)
      ? Effect.as(snapshots.save(streamId, state, version), { streamId, state, version, snapshot: version })
      : Effect.succeed({ streamId, state, version, snapshot: last })

  /** Folds from a trusted snapshot when there is one, and saves a new one when the policy says so. */
  const current = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId
  ): Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError> => {
    if (!snapshots.enabled) {
      return Effect.map(fullLoad(store, streamId), ({ state, version }) => ({ streamId, state, version, snapshot: 0 }))
    }
    return Effect.flatMap(snapshots.load(streamId), (snapshot) => {
      if (Option.isNone(snapshot)) return Effect.flatMap(fullLoad(store, streamId), (full) => loaded(streamId, full, 0))
      const { state, takenAt, version } = snapshot.value
      return Effect.flatMap(
        foldStream(store.read(streamId, { from: version }), { state, version }, { takenAt }),
        (folded) =>
          folded === undefined
            ? Effect.flatMap(fullLoad(store, streamId), (full) => loaded(streamId, full, 0))
            : loaded(streamId, folded, version)
      )
    })
  }

  /**
   * Encodes with the ambient metadata (`CommandHandler.withMetadata`) under `metadata`; with a `commandId`, the
   * events carry the ids derived from it.
   */
  const encodeWith = (
    ambient: EventStore.EventMetadata,
    streamId: StreamId.StreamId,
    events: ReadonlyArray<Event>,
    metadata: EventStore.EventMetadata | undefined,
    commandId: string | undefined
  ): Either.Either<ReadonlyArray<EventStore.EventData>, Aggregate.EventEncodeError> => {
    const encoded = encodeAll(
      encode,
      streamId,
      events,
      isEmpty(ambient) ? metadata : metadata === undefined ? ambient : { ...ambient, ...metadata }
    )
    if (Either.isLeft(encoded) || commandId === undefined) return encoded
    return Either.right(
      encoded.right.map((event, i) => ({ ...event, id: Uuid.eventId(aggregate.name, streamId, commandId, i) }))
    )
  }

  /** Encodes (see `encodeWith`) and appends. */
  const write = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId,
    events: ReadonlyArray<Event>,
    expected: ExpectedVersion.ExpectedVersion,
    metadata: EventStore.EventMetadata | undefined,
    commandId?: string
  ): Effect.Effect<EventStore.AppendResult, EventStore.AppendError | Aggregate.EventEncodeError> =>
    Effect.flatMap(
      FiberRef.get(currentMetadata),
      (ambient): Effect.Effect<EventStore.AppendResult, EventStore.AppendError | Aggregate.EventEncodeError> => {
        const encoded = encodeWith(ambient, streamId, events, metadata, commandId)
        return Either.isLeft(encoded) ? Effect.fail(encoded.left) : store.append(streamId, encoded.right, expected)
      }
    )

  /** The state at `version` (at most `current.version`): `current`'s own, or folded from the stream. */
  const stateAt = (
    store: EventStore.EventStore.Service,
    current: Current<State>,
    version: number
  ): Effect.Effect<State, Aggregate.EventDecodeError | EventStore.ReadError> =>
    version === current.version
      ? Effect.succeed(current.state)
      : Effect.map(
        foldStream(store.read(current.streamId, { to: version }), initial),
        (loaded) => (loaded ?? initial).state
      )

  const appendTo = (
    store: EventStore.EventStore.Service,
    current: Current<State>,
    events: ReadonlyArray<Event>,
    metadata: EventStore.EventMetadata | undefined,
    commandId?: string
  ): Effect.Effect<
    Written<State>,
    EventStore.AppendError | Aggregate.EventEncodeError | Aggregate.EventDecodeError
  > =>
    Effect.flatMap(
      write(store, current.streamId, events, ExpectedVersion.Exact(current.version), metadata, commandId),
      ({ position, version }) => {
        if (version !== current.version + events.length) {
          // the store replayed a batch committed before `current` was loaded (same event ids: a command re-sent
          // after an unknown outcome): its result, with the state at its version
          return Effect.map(stateAt(store, current, version), (state) => ({ state, version, position }))
        }
        let state = current.state
        for (const event of events) state = aggregate.evolve(state, event)
        const written = { state, version, position }
        // the snapshot policy after an append, with the real distance to the latest snapshot
        return snapshots.due(version, current.snapshot)
          ? Effect.as(snapshots.save(current.streamId, state, version), written)
          : Effect.succeed(written)
      }
    )

  // inside a unit of work (`Repository.unitOfWork`) loads and appends go through its identity map
  const unit = UnitOfWork.participant<State, Event>({
    key: aggregate,
    initialState: aggregate.initialState,
    evolve: aggregate.evolve,
    retired: aggregate.retired,
    load: current,
    foldTo: (store, streamId, version) =>
      Effect.map(foldStream(store.read(streamId, { to: version }), initial), (loaded) => (loaded ?? initial).state),
    prepare: (streamId, events, metadata, commandId) =>
      Effect.flatMap(
        FiberRef.get(currentMetadata),
        (ambient) => encodeWith(ambient, streamId, events, metadata, commandId)
      ),
    decode,
    afterCommit: ({ state, streamId, version, snapshot }) =>
      snapshots.due(version, snapshot) ? snapshots.save(streamId, state, version) : Effect.void
  })
  const currentOrUnit = unit.current(current)

  const loadOrInitial = (id: string) =>
    Effect.flatMap(
      streamIdOf(id),
      (streamId) =>
        Effect.flatMap(EventStore.EventStore, (store) =>
          Effect.map(currentOrUnit(store, streamId), ({ state, version }) => ({
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

  const loadAt = (id: string, at: Repository.At) =>
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
    aggregate,
    streamId: streamIdOf,
    load: (id) => Effect.withSpan(load(id), "Repository.load", { attributes: { "aggregate": aggregate.name, id } }),
    loadOption,
    loadOrInitial,
    exists: (id) =>
      Effect.flatMap(
        streamIdOf(id),
        (streamId) => Effect.flatMap(EventStore.EventStore, (store) => unit.exists(store, streamId))
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
          Effect.flatMap(
            EventStore.EventStore,
            (store) => unit.write(write)(store, streamId, events, expected, metadata)
          )
      ),
    current: currentOrUnit,
    appendTo: unit.appendTo(appendTo)
  }
}
