import * as Chunk from "effect/Chunk"
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
import * as AggregateCache from "./aggregateCache.js"
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

/** Events per `readForFold` page of a load: a stream of up to this many events is read in one round trip. */
const pageSize = 5_000

/** A folded stream: state, version, and the position of the event at that version (0 for none). */
interface Folded<State> {
  readonly state: State
  readonly version: number
  readonly position: number
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
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: Repository.Options = {},
  method = "Repository.make"
): Internal<State, Command, Event, E> => {
  const { decode, decodeIn, encode } = codec(aggregate)
  const cache = options.cache === undefined ? undefined : AggregateCache.make<State>(method, options.cache)
  const snapshots = Snapshots.make(aggregate)
  const streamIdOf = (id: string) => StreamId.make(aggregate.name, id)

  /**
   * Folds a stream's events after `start` page by page (`page(from, limit)`; a short page is the last), decoding
   * each; returns the state, last version and its position. With `first`, the read starts at `start.version`, whose
   * event must be there and pass the check (a snapshot's: recorded before it was taken; a cached state's: the same
   * position), so the stream was not deleted and re-created since; otherwise the result is `undefined`.
   */
  const foldStream = <A extends EventStore.FoldEvent>(
    streamId: StreamId.StreamId,
    page: (from: number, limit: number) => Effect.Effect<ReadonlyArray<A>, EventStore.ReadError>,
    start: Folded<State>,
    first?: (event: A) => boolean
  ): Effect.Effect<Folded<State> | undefined, Aggregate.EventDecodeError | EventStore.ReadError> =>
    Effect.suspend(() => {
      const acc = { state: start.state, version: start.version, position: start.position }
      let pending = first
      const step = (
        events: ReadonlyArray<A>
      ): Effect.Effect<Folded<State> | undefined, Aggregate.EventDecodeError | EventStore.ReadError> => {
        for (const recorded of events) {
          if (pending !== undefined) {
            // stale: stop reading
            if (recorded.version !== start.version || !pending(recorded)) return Effect.succeed(undefined)
            pending = undefined
            acc.position = recorded.position
            continue
          }
          acc.version = recorded.version
          acc.position = recorded.position
          if (aggregate.retired.has(recorded.type)) continue
          const event = decodeIn(streamId, recorded)
          if (Either.isLeft(event)) return Effect.fail(event.left)
          acc.state = aggregate.evolve(acc.state, event.right)
        }
        if (events.length === pageSize) return Effect.flatMap(page(acc.version + 1, pageSize), step)
        // a load stays a point where other fibers (background snapshot saves, concurrent commands) get to run
        return Effect.as(Effect.yieldNow(), pending !== undefined ? undefined : acc)
      }
      return Effect.flatMap(page(first === undefined ? start.version + 1 : start.version, pageSize), step)
    })

  /** Pages of `readForFold`, up to version `to`. */
  const foldPages = (store: EventStore.EventStore.Service, streamId: StreamId.StreamId, to?: number) =>
  (
    from: number,
    limit: number
  ) => store.readForFold(streamId, to === undefined ? { from, limit } : { from, to, limit })

  /** Pages of `read` (recorded events: with their time), up to the last event recorded at or before `until`. */
  const readPages = (store: EventStore.EventStore.Service, streamId: StreamId.StreamId, until?: DateTime.DateTime) =>
  (
    from: number,
    limit: number
  ) =>
    Effect.map(Stream.runCollect(store.read(streamId, { from, limit })), (chunk) => {
      const events = Chunk.toReadonlyArray(chunk)
      if (until === undefined) return events
      const cut = events.findIndex((e) => e.recordedAt.epochMillis > until.epochMillis)
      return cut === -1 ? events : events.slice(0, cut)
    })

  const initial: Folded<State> = { state: aggregate.initialState, version: 0, position: 0 }

  const fullLoad = (store: EventStore.EventStore.Service, streamId: StreamId.StreamId) =>
    Effect.map(foldStream(streamId, foldPages(store, streamId), initial), (loaded) => loaded ?? initial)

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
  const loadFresh = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId
  ): Effect.Effect<readonly [Current<State>, Folded<State>], Aggregate.EventDecodeError | EventStore.ReadError> => {
    const fromStart = () =>
      Effect.flatMap(
        fullLoad(store, streamId),
        (full) => Effect.map(loaded(streamId, full, 0), (current) => [current, full] as const)
      )
    if (!snapshots.enabled) {
      return Effect.map(
        fullLoad(store, streamId),
        (full) => [{ streamId, state: full.state, version: full.version, snapshot: 0 }, full] as const
      )
    }
    return Effect.flatMap(snapshots.load(streamId), (snapshot) => {
      if (Option.isNone(snapshot)) return fromStart()
      const { state, takenAt, version } = snapshot.value
      return Effect.flatMap(
        foldStream(
          streamId,
          readPages(store, streamId),
          { state, version, position: 0 },
          (recorded) => recorded.recordedAt.epochMillis <= takenAt.epochMillis
        ),
        (folded) =>
          folded === undefined
            ? fromStart()
            : Effect.map(loaded(streamId, folded, version), (current) => [current, folded] as const)
      )
    })
  }

  /** The load of a write: through the cache when there is one (see `aggregateCache.ts`). */
  const current = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId
  ): Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError> => {
    if (cache === undefined) return Effect.map(loadFresh(store, streamId), ([current]) => current)
    if (Either.isLeft(cache)) return Effect.fail(cache.left)
    const lru = cache.right
    const remember = ([current, folded]: readonly [Current<State>, Folded<State>]): Current<State> => {
      if (current.version === 0) lru.delete(store, streamId)
      else {
        lru.set(store, streamId, {
          state: current.state,
          version: current.version,
          position: folded.position,
          snapshot: current.snapshot
        })
      }
      return current
    }
    // looked up when the load runs, not when it is built: a retried command reruns the same effect
    return Effect.suspend(() => {
      const entry = lru.get(store, streamId)
      if (entry === undefined) return Effect.map(loadFresh(store, streamId), remember)
      return Effect.flatMap(
        foldStream(
          streamId,
          foldPages(store, streamId),
          entry,
          (event) => event.position === entry.position
        ),
        (folded) =>
          folded === undefined
            ? Effect.map(loadFresh(store, streamId), remember)
            : folded.version === entry.version
            ? Effect.succeed({ streamId, state: entry.state, version: entry.version, snapshot: entry.snapshot })
            : Effect.map(loaded(streamId, folded, entry.snapshot), (current) => remember([current, folded]))
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
        foldStream(current.streamId, foldPages(store, current.streamId, version), initial),
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
      Effect.map(
        foldStream(streamId, foldPages(store, streamId, version), initial),
        (loaded) => (loaded ?? initial).state
      ),
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
        // never through the cache
        const events = "version" in at ? foldPages(store, streamId, at.version) : readPages(store, streamId, at.until)
        return Effect.flatMap(
          Effect.map(foldStream(streamId, events, initial), (loaded) => loaded ?? initial),
          ({ state, version }) =>
            version === 0
              ? Effect.fail(new Aggregate.AggregateNotFound({ streamId }))
              : Effect.succeed({ id, streamId, state, version })
        )
      }))

  return {
    aggregate,
    streamId: streamIdOf,
    load: (id) =>
      Effect.withSpan(load(id), "Repository.load", {
        captureStackTrace: false,
        attributes: { "aggregate": aggregate.name, id }
      }),
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
            cache !== undefined && Either.isRight(cache)
              ? Effect.tap(store.delete(streamId), () => cache.right.delete(store, streamId))
              : store.delete(streamId),
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
