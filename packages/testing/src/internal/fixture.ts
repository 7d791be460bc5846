/**
 * The helpers shared by the checks of `EventStoreContract`: the per-check fixture (fresh categories, streams
 * deleted at the end), event builders, reads, and the assertions on conflicts and on what a subscription delivered.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ContractViolation } from "./contract.js"
import { describeError, ensure, ensureEqual, fail, ok, unique, withPatience } from "./contract.js"
import { show } from "./values.js"

export type Fx<A> = Effect.Effect<A, ContractViolation, EventStore.EventStore | Scope.Scope>

export const settle = Duration.millis(100)

export const newId = (): string => globalThis.crypto.randomUUID()

export interface Fixture {
  readonly store: EventStore.EventStore.Service
  /** a fresh category for this check */
  readonly category: string
  /** a stream of this check's category (deleted at the end of the check) */
  readonly stream: (id: string) => StreamId.StreamId
  /** another fresh category */
  readonly newCategory: Effect.Effect<string>
  /** registers a stream made elsewhere for deletion */
  readonly track: (streamId: StreamId.StreamId) => StreamId.StreamId
}

export const fixture = <A>(body: (fx: Fixture) => Fx<A>): Effect.Effect<A, ContractViolation, EventStore.EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const category = yield* unique("c")
    const created = new Set<StreamId.StreamId>()
    const track = (streamId: StreamId.StreamId) => {
      created.add(streamId)
      return streamId
    }
    const fx: Fixture = {
      store,
      category,
      stream: (id) => track(StreamId.unsafeMake(category, id)),
      newCategory: unique("c"),
      track
    }
    const cleanup = Effect.forEach(created, (streamId) => Effect.ignore(store.delete(streamId)), { discard: true })
    return yield* Effect.scoped(body(fx)).pipe(Effect.ensuring(cleanup))
  })

export const ev = (type: string, data: unknown, metadata?: EventStore.EventMetadata): EventStore.EventData =>
  metadata === undefined ? { type, data } : { type, data, metadata }

export const numbered = (n: number, type = "Numbered"): ReadonlyArray<EventStore.EventData> =>
  Array.from({ length: n }, (_, i) => ev(type, { n: i + 1 }))

export const readStream = (
  store: EventStore.EventStore.Service,
  streamId: StreamId.StreamId,
  options?: EventStore.ReadOptions
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation> =>
  ok(Effect.map(Stream.runCollect(store.read(streamId, options)), Chunk.toArray), `read(${show(options ?? {})})`)

export const readAllOf = (
  store: EventStore.EventStore.Service,
  options: EventStore.ReadAllOptions
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation> =>
  ok(Effect.map(Stream.runCollect(store.readAll(options)), Chunk.toArray), "readAll")

export const positions = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.position)
export const versions = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.version)
export const ids = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.id)
export const payloads = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.data)

export const strictlyIncreasing = (values: ReadonlyArray<number>): boolean =>
  values.every((v, i) => i === 0 || v > values[i - 1]!)

export const ensureIncreasingPositions = (events: ReadonlyArray<EventStore.RecordedEvent>, what: string) =>
  ensure(
    strictlyIncreasing(positions(events)) && events.every((e) => Number.isInteger(e.position) && e.position > 0),
    `${what}: positions must be positive integers in strictly increasing order, got ${show(positions(events))}`
  )

/** expects a ConcurrencyConflict carrying the real actual version */
export const expectConflict = <A, E>(
  effect: Effect.Effect<A, E>,
  streamId: StreamId.StreamId,
  expected: ExpectedVersion.ExpectedVersion,
  actual: number,
  what: string
): Effect.Effect<void, ContractViolation> =>
  Effect.flatMap(Effect.either(effect), (result) => {
    if (Either.isRight(result)) {
      return fail(`${what}: expected a ConcurrencyConflict (stream at ${actual}), but the append succeeded`, {
        expected: "ConcurrencyConflict",
        actual: result.right
      })
    }
    const error = result.left
    if (!(error instanceof EventStore.ConcurrencyConflict)) {
      return fail(`${what}: expected a ConcurrencyConflict, got ${describeError(error)}`, { actual: error })
    }
    return ensureEqual(
      { streamId: error.streamId, expected: error.expected, actual: error.actual },
      { streamId, expected, actual },
      `${what}: the ConcurrencyConflict must carry the stream, the expectation and the real actual version`
    )
  })

/** collects a subscription until `done` says so, reporting what arrived if it takes too long */
export const collect = (
  stream: Stream.Stream<EventStore.RecordedEvent, EventStore.ReadAllError>,
  done: (event: EventStore.RecordedEvent, seen: ReadonlyArray<EventStore.RecordedEvent>) => boolean,
  what: string,
  onEvent?: (seen: ReadonlyArray<EventStore.RecordedEvent>) => Effect.Effect<void>
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation> => {
  const seen: Array<EventStore.RecordedEvent> = []
  return stream.pipe(
    Stream.tap((event) =>
      Effect.suspend(() => {
        seen.push(event)
        return onEvent === undefined ? Effect.void : onEvent(seen)
      })
    ),
    Stream.takeUntil((event) => done(event, seen)),
    Stream.runDrain,
    (effect) => ok(effect, what),
    Effect.as(seen as ReadonlyArray<EventStore.RecordedEvent>),
    (effect) => withPatience(effect, what, () => `received ${seen.length} events at positions ${show(positions(seen))}`)
  )
}

/** delivered must be exactly `expected` (same ids, same order), once each, in strictly increasing positions */
export const ensureExactlyOnceInOrder = (
  delivered: ReadonlyArray<EventStore.RecordedEvent>,
  expected: ReadonlyArray<EventStore.RecordedEvent>,
  what: string
): Effect.Effect<void, ContractViolation> =>
  Effect.gen(function*() {
    const deliveredIds = ids(delivered)
    const duplicates = delivered.filter((e, i) => deliveredIds.indexOf(e.id) !== i)
    yield* ensure(
      duplicates.length === 0,
      `${what}: events delivered more than once, at positions ${show(positions(duplicates))}`
    )
    const wanted = new Set(ids(expected))
    const missing = expected.filter((e) => !deliveredIds.includes(e.id))
    yield* ensure(
      missing.length === 0,
      `${what}: events never delivered (positions ${show(positions(missing))}), delivered positions ${
        show(positions(delivered))
      }`
    )
    const extra = delivered.filter((e) => !wanted.has(e.id))
    yield* ensure(extra.length === 0, `${what}: unexpected events delivered at positions ${show(positions(extra))}`)
    yield* ensureIncreasingPositions(delivered, what)
    yield* ensureEqual(positions(delivered), positions(expected), `${what}: delivery order must be position order`)
  })
