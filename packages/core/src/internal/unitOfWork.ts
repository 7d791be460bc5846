/**
 * The unit of work of `Repository.unitOfWork`: an identity map of the streams a unit has loaded or appended to, and
 * the appends it collected, committed at the end as one `appendMany`.
 *
 * The unit lives in a FiberRef (inherited by the fibers the unit's effect forks). The repository goes through
 * {@link participant} for its loads (`current`, `exists`) and appends (`appendTo`, `write`): outside a unit they are
 * the store's own; inside one they read and write the map, and nothing reaches the store before the commit.
 */
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import type * as Schedule from "effect/Schedule"
import type * as Aggregate from "../Aggregate.js"
import * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import { InvalidStreamId, type StreamId } from "../StreamId.js"
import { retryOnly } from "./retry.js"
import * as validation from "./validation.js"

/** A stream as loaded for a write (the shape of the repository's `Current`). */
interface Current<State> {
  readonly streamId: StreamId
  readonly state: State
  readonly version: number
  readonly snapshot: number
}

/** One aggregate's state of a stream in the map, at the entry's version, and what to do with it after the commit. */
interface Known {
  readonly current: Current<unknown>
  readonly afterCommit: Effect.Effect<void>
}

/** A stream of the unit: the version the unit found in the store, and the events it appended since. */
interface Entry {
  readonly streamId: StreamId
  readonly base: number
  readonly pending: Array<EventStore.EventData>
  /** by aggregate (the `Aggregate` object); every state is at version `base + pending.length` */
  readonly states: Map<object, Known>
}

interface Unit {
  readonly store: EventStore.EventStore.Service
  readonly entries: Map<string, Entry>
  open: boolean
}

/** @internal The unit of the current fiber (shared with the fibers it forks; a join keeps the parent's). */
export const currentUnit: FiberRef.FiberRef<Unit | undefined> = globalValue(
  Symbol.for("@effect-eventsourcing/core/Repository/currentUnit"),
  () => FiberRef.unsafeMake<Unit | undefined>(undefined, { join: (parent) => parent })
)

/** Runs `f` with the open unit of `store` this fiber runs in, if any (one step, no allocation outside a unit). */
const withUnit = <A, E, R>(
  store: EventStore.EventStore.Service,
  f: (unit: Unit | undefined) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    const unit = fiber.getFiberRef(currentUnit)
    return f(unit !== undefined && unit.open && unit.store === store ? unit : undefined)
  })

/**
 * @internal
 * What the unit needs from one aggregate's repository: its store load, its encoding (with metadata and the
 * event ids of a command id), its codec and the snapshot policy to apply after the commit.
 */
export interface Participant<State, Event> {
  /** the identity of the aggregate (its `Aggregate` object) */
  readonly key: object
  readonly initialState: State
  readonly evolve: (state: State, event: Event) => State
  readonly retired: ReadonlySet<string>
  readonly load: (
    store: EventStore.EventStore.Service,
    streamId: StreamId
  ) => Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError>
  /** The state folded from the store's events up to `version`. */
  readonly foldTo: (
    store: EventStore.EventStore.Service,
    streamId: StreamId,
    version: number
  ) => Effect.Effect<State, Aggregate.EventDecodeError | EventStore.ReadError>
  readonly prepare: (
    streamId: StreamId,
    events: ReadonlyArray<Event>,
    metadata: EventStore.EventMetadata | undefined,
    commandId: string | undefined
  ) => Effect.Effect<ReadonlyArray<EventStore.EventData>, Aggregate.EventEncodeError>
  readonly decode: (recorded: EventStore.RecordedEvent) => Either.Either<Event, Aggregate.EventDecodeError>
  /** The snapshot policy after an append reached `current` (never fails). */
  readonly afterCommit: (current: Current<State>) => Effect.Effect<void>
}

const epoch = DateTime.unsafeMake(0)

/** @internal The unit-aware entry points of one repository (each falls back to the store's own outside a unit). */
export const participant = <State, Event>(p: Participant<State, Event>) => {
  const key = p.key

  const remember = (entry: Entry, current: Current<State>, keepOthers: boolean): void => {
    if (!keepOthers) entry.states.clear()
    entry.states.set(key, { current, afterCommit: p.afterCommit(current) })
  }

  /** This aggregate's state of an entry it has not seen (or not since another wrote to it): store + pending. */
  const rebuild = (
    store: EventStore.EventStore.Service,
    entry: Entry
  ): Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError> =>
    Effect.flatMap(
      entry.base === 0 ? Effect.succeed(p.initialState) : p.foldTo(store, entry.streamId, entry.base),
      (folded) => {
        let state = folded
        for (let i = 0; i < entry.pending.length; i++) {
          const event = entry.pending[i]!
          if (p.retired.has(event.type)) continue
          const decoded = p.decode({
            id: event.id ?? "",
            streamId: entry.streamId,
            version: entry.base + i + 1,
            position: 0,
            type: event.type,
            data: event.data,
            metadata: event.metadata ?? {},
            recordedAt: epoch
          })
          if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
          state = p.evolve(state, decoded.right)
        }
        const current: Current<State> = {
          streamId: entry.streamId,
          state,
          version: entry.base + entry.pending.length,
          snapshot: 0
        }
        remember(entry, current, true)
        return Effect.succeed(current)
      }
    )

  /** The unit's state of the stream, loading it from the store on first use. */
  const inUnit = (
    unit: Unit,
    streamId: StreamId
  ): Effect.Effect<Current<State>, Aggregate.EventDecodeError | EventStore.ReadError> => {
    const entry = unit.entries.get(streamId)
    if (entry !== undefined) {
      const known = entry.states.get(key)
      return known !== undefined ? Effect.succeed(known.current as Current<State>) : rebuild(unit.store, entry)
    }
    return Effect.flatMap(p.load(unit.store, streamId), (loaded) => {
      // another fiber of the unit loaded it first: its entry is the unit's
      if (unit.entries.has(streamId)) return inUnit(unit, streamId)
      const created: Entry = { streamId, base: loaded.version, pending: [], states: new Map() }
      unit.entries.set(streamId, created)
      remember(created, loaded, true)
      return Effect.succeed(loaded)
    })
  }

  /** The entry of a stream the unit appends to without loading it: the store's version is its base. */
  const entryOf = (unit: Unit, streamId: StreamId): Effect.Effect<Entry, EventStore.EventStoreError> => {
    const entry = unit.entries.get(streamId)
    if (entry !== undefined) return Effect.succeed(entry)
    return Effect.map(unit.store.streamVersion(streamId), (base) => {
      const raced = unit.entries.get(streamId)
      if (raced !== undefined) return raced
      const created: Entry = { streamId, base, pending: [], states: new Map() }
      unit.entries.set(streamId, created)
      return created
    })
  }

  /** Encodes and checks events as the store would, then adds them to the entry (which must be at `expected`). */
  const collect = (
    entry: Entry,
    events: ReadonlyArray<Event>,
    expected: ExpectedVersion.ExpectedVersion,
    metadata: EventStore.EventMetadata | undefined,
    commandId: string | undefined
  ): Effect.Effect<number, EventStore.AppendError | Aggregate.EventEncodeError> =>
    Effect.flatMap(p.prepare(entry.streamId, events, metadata, commandId), (data): Effect.Effect<
      number,
      EventStore.AppendError
    > => {
      const checked = validation.checkAppend(entry.streamId, data, expected)
      if (!Array.isArray(checked)) return Effect.fail(invalid(checked as validation.Problem))
      const actual = entry.base + entry.pending.length
      if (!ExpectedVersion.matches(expected, actual)) {
        return Effect.fail(new EventStore.ConcurrencyConflict({ streamId: entry.streamId, expected, actual }))
      }
      for (const event of checked as ReadonlyArray<EventStore.EventData>) entry.pending.push(event)
      return Effect.succeed(actual + events.length)
    })

  const evolveAll = (state: State, events: ReadonlyArray<Event>): State => {
    let next = state
    for (const event of events) next = p.evolve(next, event)
    return next
  }

  return {
    /** `Repository`'s load for a write. */
    current: <E>(
      load: (store: EventStore.EventStore.Service, streamId: StreamId) => Effect.Effect<Current<State>, E>
    ) =>
    (
      store: EventStore.EventStore.Service,
      streamId: StreamId
    ): Effect.Effect<Current<State>, E | Aggregate.EventDecodeError | EventStore.ReadError> =>
      withUnit(
        store,
        (unit): Effect.Effect<Current<State>, E | Aggregate.EventDecodeError | EventStore.ReadError> =>
          unit === undefined ? load(store, streamId) : inUnit(unit, streamId)
      ),

    /** `CommandHandler`'s append with `Exact(current.version)`: collected in a unit (position 0 until the commit). */
    appendTo: <W, E>(
      append: (
        store: EventStore.EventStore.Service,
        current: Current<State>,
        events: ReadonlyArray<Event>,
        metadata: EventStore.EventMetadata | undefined,
        commandId?: string
      ) => Effect.Effect<W, E>
    ) =>
    (
      store: EventStore.EventStore.Service,
      current: Current<State>,
      events: ReadonlyArray<Event>,
      metadata: EventStore.EventMetadata | undefined,
      commandId?: string
    ): Effect.Effect<
      W | { readonly state: State; readonly version: number; readonly position: number },
      E | EventStore.AppendError | Aggregate.EventEncodeError
    > =>
      withUnit(store, (unit): Effect.Effect<
        W | { readonly state: State; readonly version: number; readonly position: number },
        E | EventStore.AppendError | Aggregate.EventEncodeError
      > => {
        if (unit === undefined) return append(store, current, events, metadata, commandId)
        return Effect.flatMap(entryOf(unit, current.streamId), (entry) =>
          Effect.map(
            collect(entry, events, ExpectedVersion.Exact(current.version), metadata, commandId),
            (version) => {
              const state = evolveAll(current.state, events)
              remember(entry, { streamId: current.streamId, state, version, snapshot: current.snapshot }, false)
              return { state, version, position: 0 }
            }
          ))
      }),

    /** `Repository.append`: collected in a unit, with `expected` checked against the unit's version. */
    write: <E>(
      append: (
        store: EventStore.EventStore.Service,
        streamId: StreamId,
        events: ReadonlyArray<Event>,
        expected: ExpectedVersion.ExpectedVersion,
        metadata: EventStore.EventMetadata | undefined
      ) => Effect.Effect<EventStore.AppendResult, E>
    ) =>
    (
      store: EventStore.EventStore.Service,
      streamId: StreamId,
      events: ReadonlyArray<Event>,
      expected: ExpectedVersion.ExpectedVersion,
      metadata: EventStore.EventMetadata | undefined
    ): Effect.Effect<EventStore.AppendResult, E | EventStore.AppendError | Aggregate.EventEncodeError> =>
      withUnit(store, (unit): Effect.Effect<
        EventStore.AppendResult,
        E | EventStore.AppendError | Aggregate.EventEncodeError
      > => {
        if (unit === undefined) return append(store, streamId, events, expected, metadata)
        return Effect.flatMap(
          entryOf(unit, streamId),
          (entry) =>
            Effect.map(collect(entry, events, expected, metadata, undefined), (version) => {
              const known = entry.states.get(key)
              if (known === undefined) {
                entry.states.clear()
              } else {
                const was = known.current as Current<State>
                remember(entry, { ...was, state: evolveAll(was.state, events), version }, false)
              }
              return { version, position: 0 }
            })
        )
      }),

    /** `Repository.exists`: the unit's version when it knows the stream. */
    exists: (
      store: EventStore.EventStore.Service,
      streamId: StreamId
    ): Effect.Effect<boolean, EventStore.EventStoreError> =>
      withUnit(store, (unit) => {
        const entry = unit?.entries.get(streamId)
        return entry === undefined
          ? Effect.map(store.streamVersion(streamId), (version) => version > 0)
          : Effect.succeed(entry.base + entry.pending.length > 0)
      })
  }
}

const invalid = (problem: validation.Problem): EventStore.InvalidArgument | InvalidStreamId =>
  problem._tag === "InvalidStreamId"
    ? new InvalidStreamId({ streamId: problem.streamId, reason: problem.reason })
    : new EventStore.InvalidArgument({ method: "append", argument: problem.argument, reason: problem.reason })

/** Commits the unit's appends as one `appendMany`, each stream at the version the unit found it at. */
const commit = (unit: Unit): Effect.Effect<void, EventStore.AppendError> => {
  unit.open = false
  // sorted by stream id, so that concurrent units insert the rows of overlapping streams in the same order: raw
  // `appendMany`s of two streams in opposite orders were seen to deadlock on PostgreSQL (40P01, an EventStoreError:
  // 10 of 400 concurrent calls with `Any`, 0 of 400 sorted); not reproduced through units, whose `Exact` versions
  // make the losers fail at once
  const entries = [...unit.entries.values()]
    .filter((entry) => entry.pending.length > 0)
    .sort((a, b) => a.streamId < b.streamId ? -1 : a.streamId > b.streamId ? 1 : 0)
  if (entries.length === 0) return Effect.void
  return Effect.flatMap(
    unit.store.appendMany(
      entries.map((entry) => ({
        streamId: entry.streamId,
        events: entry.pending,
        expected: ExpectedVersion.Exact(entry.base)
      }))
    ),
    (results) =>
      Effect.forEach(entries, (entry, i) => {
        // a replayed unit (same event ids) may have been committed at other versions: no snapshot then
        if (results[i]!.version !== entry.base + entry.pending.length) return Effect.void
        return Effect.forEach(entry.states.values(), (known) => known.afterCommit, { discard: true })
      }, { discard: true })
  )
}

/** @internal */
export interface Options<R> {
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict, R>
}

const isConcurrencyConflict = (error: unknown): error is EventStore.ConcurrencyConflict =>
  error instanceof EventStore.ConcurrencyConflict

/** @internal */
export const unitOfWork: {
  <R2 = never>(
    options?: Options<R2>
  ): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | EventStore.AppendError, R | R2 | EventStore.EventStore>
  <A, E, R, R2 = never>(
    self: Effect.Effect<A, E, R>,
    options?: Options<R2>
  ): Effect.Effect<A, E | EventStore.AppendError, R | R2 | EventStore.EventStore>
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E, R, R2>(
    self: Effect.Effect<A, E, R>,
    options?: Options<R2>
  ): Effect.Effect<A, E | EventStore.AppendError, R | R2 | EventStore.EventStore> =>
    Effect.flatMap(
      EventStore.EventStore,
      (store) =>
        withUnit(store, (outer): Effect.Effect<A, E | EventStore.AppendError, R | R2> => {
          // inside a unit of the same store: part of it (the outer unit commits)
          if (outer !== undefined) return self
          const once = Effect.suspend(() => {
            const unit: Unit = { store, entries: new Map(), open: true }
            return Effect.locally(self, currentUnit, unit).pipe(
              Effect.tap(() => commit(unit)),
              Effect.ensuring(Effect.sync(() => {
                unit.open = false
                unit.entries.clear()
              })),
              Effect.withSpan("Repository.unitOfWork", { captureStackTrace: false })
            )
          })
          return options?.retry === undefined ? once : retryOnly(once, isConcurrencyConflict, options.retry)
        })
    )
)
