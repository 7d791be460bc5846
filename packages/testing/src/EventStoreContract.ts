/**
 * The conformance suite of the {@link EventStore.EventStore} port. `suite(name, layer)` registers every check with
 * `@effect/vitest` for one store Layer; each check is also exported as a plain `Effect` in {@link checks}, so a
 * test can run a single check (for instance against a deliberately broken store and assert that it fails).
 *
 * The store is built once and shared by every check: each check works in its own fresh categories and streams
 * (a counter plus a random suffix, so repeated runs against a persistent database do not collide) and deletes
 * the streams it created. The checks use the real clock, whatever services the caller provides. When the Layer
 * also provides {@link CommitHold}, the subscription gap check holds a commit in flight deterministically (without
 * it, `suite` reports that check as skipped); every store also gets a real-concurrency subscription and readAll
 * check.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 *
 * EventStoreContract.suite("InMemoryEventStore", InMemoryEventStore.layer)
 * ```
 *
 * @since 0.1.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import { describe, layer } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ContractViolation } from "./internal/contract.js"
import * as internal from "./internal/contract.js"
import * as inputChecks from "./internal/inputChecks.js"
import * as tombstoneChecks from "./internal/tombstoneChecks.js"
import { show } from "./internal/values.js"

const { describeError, ensure, ensureEqual, fail, ok, unique, withPatience } = internal

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

export {
  /**
   * A store did not behave as the port requires (shared by every contract of this package).
   *
   * @since 0.1.0
   * @category errors
   */
  ContractViolation,
  /**
   * How long a check waits for something that must happen before it reports a violation (default: 10 seconds;
   * shared by every contract of this package).
   *
   * @since 0.1.0
   * @category tags
   */
  Patience
} from "./internal/contract.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * A commit held "in flight" by {@link CommitHold}: its positions are reserved (or assigned, for a database) but it is
 * not visible until `release`. Later commits become durable meanwhile, yet global readers and subscribers must not
 * pass the hole.
 *
 * @since 0.2.0
 * @category models
 */
export interface HeldCommit {
  /** Waits until the held append has its positions, and returns them. */
  readonly reserved: Effect.Effect<ReadonlyArray<number>>
  /** Lets the held commit complete and become visible. */
  readonly release: Effect.Effect<void>
}

/**
 * The capability to hold a store's next commit in flight, which a store's test setup provides next to its
 * `EventStore` so that the `subscribeHeldCommit` check can open a hole in the global log deterministically. Without
 * it, {@link suite} reports that check as skipped (the real-concurrency check `subscribeConcurrentWriters` runs on
 * every store).
 *
 * The in-memory store provides it from its test hook:
 * `Layer.effect(EventStoreContract.CommitHold, InMemoryEventStore.Control)` over
 * `InMemoryEventStore.layerWithControl()`. A SQL store can provide it by wrapping its `EventStore` so that the next
 * append runs inside a transaction that is kept open until `release` (the store joins the caller's transaction).
 *
 * @since 0.2.0
 * @category tags
 */
export class CommitHold extends Context.Tag("@effect-eventsourcing/testing/EventStoreContract/CommitHold")<
  CommitHold,
  {
    /** The next `append` (or `appendMany`) gets its positions, then waits for `release` before it commits. */
    readonly holdNextCommit: Effect.Effect<HeldCommit>
    /**
     * The next `delete` of a stream with events gets its tombstone's position, then waits for `release` before it
     * commits (optional: without it, the `subscribeHeldTombstone` check is skipped).
     *
     * @since 0.3.0
     */
    readonly holdNextDelete?: Effect.Effect<HeldCommit>
  }
>() {}

/**
 * One conformance check: succeeds when the store behaves, fails with a {@link ContractViolation} otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export type Check = Effect.Effect<void, ContractViolation, EventStore.EventStore>

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Timeout of each test and of building the Layer (default: 60 seconds). */
  readonly timeout?: Duration.DurationInput
}

// -------------------------------------------------------------------------------------
// internal helpers
// -------------------------------------------------------------------------------------

type Fx<A> = Effect.Effect<A, ContractViolation, EventStore.EventStore | Scope.Scope>

const settle = Duration.millis(100)

const newId = (): string => globalThis.crypto.randomUUID()

interface Fixture {
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

const fixture = <A>(body: (fx: Fixture) => Fx<A>): Effect.Effect<A, ContractViolation, EventStore.EventStore> =>
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

const ev = (type: string, data: unknown, metadata?: EventStore.EventMetadata): EventStore.EventData =>
  metadata === undefined ? { type, data } : { type, data, metadata }

const numbered = (n: number, type = "Numbered"): ReadonlyArray<EventStore.EventData> =>
  Array.from({ length: n }, (_, i) => ev(type, { n: i + 1 }))

const readStream = (
  store: EventStore.EventStore.Service,
  streamId: StreamId.StreamId,
  options?: EventStore.ReadOptions
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation> =>
  ok(Effect.map(Stream.runCollect(store.read(streamId, options)), Chunk.toArray), `read(${show(options ?? {})})`)

const readAllOf = (
  store: EventStore.EventStore.Service,
  options: EventStore.ReadAllOptions
): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation> =>
  ok(Effect.map(Stream.runCollect(store.readAll(options)), Chunk.toArray), "readAll")

const positions = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.position)
const versions = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.version)
const ids = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.id)
const payloads = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.data)

const strictlyIncreasing = (values: ReadonlyArray<number>): boolean =>
  values.every((v, i) => i === 0 || v > values[i - 1]!)

const ensureIncreasingPositions = (events: ReadonlyArray<EventStore.RecordedEvent>, what: string) =>
  ensure(
    strictlyIncreasing(positions(events)) && events.every((e) => Number.isInteger(e.position) && e.position > 0),
    `${what}: positions must be positive integers in strictly increasing order, got ${show(positions(events))}`
  )

/** expects a ConcurrencyConflict carrying the real actual version */
const expectConflict = <A, E>(
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
const collect = (
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
const ensureExactlyOnceInOrder = (
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

const named = (name: string, check: Effect.Effect<void, ContractViolation, EventStore.EventStore>): Check =>
  internal.named("EventStoreContract", name, check)

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

const versionsCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("versions")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a new stream is at version 0")
    yield* ensureEqual(yield* readStream(store, s), [], "a new stream reads empty")
    const first = [
      { id: newId(), type: "Opened", data: { owner: "Ada", tags: ["a", "b"], nested: { n: 1, ok: true, none: null } } },
      {
        id: newId(),
        type: "Deposited",
        data: { amount: 10 },
        metadata: { correlationId: "corr-1", causationId: "cause-1", user: { name: "ops" } }
      }
    ]
    const r1 = yield* ok(store.append(s, first, ExpectedVersion.NoStream), "append")
    yield* ensureEqual(r1.version, 2, "the first batch of 2 events brings the stream to version 2")
    const r2 = yield* ok(store.append(s, [ev("Deposited", { amount: 5 })], ExpectedVersion.Exact(2)), "append")
    yield* ensureEqual(r2.version, 3, "the next event gets version 3")
    yield* ensure(r2.position > r1.position, `later appends get higher positions (${r1.position} then ${r2.position})`)
    const events = yield* readStream(store, s)
    yield* ensureEqual(versions(events), [1, 2, 3], "versions start at 1 and increase by one")
    yield* ensureIncreasingPositions(events, "read")
    yield* ensureEqual(positions(events)[1], r1.position, "AppendResult.position is the position of the last event")
    yield* ensureEqual(positions(events)[2], r2.position, "AppendResult.position is the position of the last event")
    yield* ensureEqual(
      events.map((e) => ({ type: e.type, data: e.data })),
      [
        { type: "Opened", data: first[0]!.data },
        { type: "Deposited", data: { amount: 10 } },
        { type: "Deposited", data: { amount: 5 } }
      ],
      "types and data round-trip"
    )
    yield* ensureEqual(events.slice(0, 2).map((e) => e.id), first.map((e) => e.id), "caller-given event ids are kept")
    yield* ensure(typeof events[2]!.id === "string" && events[2]!.id.length > 0, "the store generates missing ids")
    yield* ensure(events.every((e) => e.streamId === s), "every event carries its stream id")
    yield* ensure(events.every((e) => DateTime.isDateTime(e.recordedAt)), "recordedAt is a DateTime")
    yield* ensureEqual(
      { correlationId: events[1]!.metadata.correlationId, causationId: events[1]!.metadata.causationId },
      { correlationId: "corr-1", causationId: "cause-1" },
      "correlation and causation ids round-trip"
    )
    yield* ensureEqual(events[1]!.metadata.user, { name: "ops" }, "user metadata fields round-trip")
    yield* ensure(
      typeof events[0]!.metadata === "object" && events[0]!.metadata !== null,
      "an event appended without metadata has an empty metadata record"
    )
    const empty = yield* ok(store.append(s, [], ExpectedVersion.Any), "an empty append")
    yield* ensureEqual(empty, { version: 3, position: 0 }, "an empty append returns the current version, position 0")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 3, "an empty append writes nothing")
  })
)

const expectedVersionsCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const cases: ReadonlyArray<readonly [number, ExpectedVersion.ExpectedVersion, boolean]> = [
      [0, ExpectedVersion.Any, true],
      [2, ExpectedVersion.Any, true],
      [0, ExpectedVersion.NoStream, true],
      [2, ExpectedVersion.NoStream, false],
      [0, ExpectedVersion.StreamExists, false],
      [2, ExpectedVersion.StreamExists, true],
      [0, ExpectedVersion.Exact(0), true],
      [2, ExpectedVersion.Exact(0), false],
      [2, ExpectedVersion.Exact(2), true],
      [2, ExpectedVersion.Exact(1), false],
      [2, ExpectedVersion.Exact(3), false],
      [0, ExpectedVersion.Exact(1), false]
    ]
    for (let i = 0; i < cases.length; i++) {
      const [existing, expected, succeeds] = cases[i]!
      const s = stream(`ev${i}`)
      if (existing > 0) yield* ok(store.append(s, numbered(existing), ExpectedVersion.NoStream), "append")
      const what = `${ExpectedVersion.format(expected)} on a stream at version ${existing}`
      const attempt = store.append(s, [ev("Attempt", { i })], expected)
      if (succeeds) {
        const result = yield* ok(attempt, what)
        yield* ensureEqual(result.version, existing + 1, `${what}: the new version`)
        yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing + 1, `${what}: streamVersion`)
      } else {
        yield* expectConflict(attempt, s, expected, existing, what)
        yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing, `${what}: nothing written`)
        yield* ensureEqual((yield* readStream(store, s)).length, existing, `${what}: nothing written`)
      }
    }
  })
)

const batchAtomicityCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("batch")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.NoStream), "append")
    yield* expectConflict(
      store.append(s, numbered(5, "Rejected"), ExpectedVersion.Exact(1)),
      s,
      ExpectedVersion.Exact(1),
      2,
      "a batch of 5 with a stale expectation"
    )
    const bad = [ev("Good", { n: 1 }), ev("Bad", { n: 10n })]
    const refused = yield* Effect.either(store.append(s, bad, ExpectedVersion.Exact(2)))
    yield* ensure(Either.isLeft(refused), "a batch holding data that is not JSON (a bigint) must be refused")
    const fresh = stream("fresh")
    const refusedNew = yield* Effect.either(store.append(fresh, bad, ExpectedVersion.NoStream))
    yield* ensure(Either.isLeft(refusedNew), "a batch holding data that is not JSON (a bigint) must be refused")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 2, "a refused batch writes nothing")
    yield* ensureEqual(yield* ok(store.streamVersion(fresh), "streamVersion"), 0, "a refused batch writes nothing")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.map((e) => e.type), ["Numbered", "Numbered"], "refused batches leave no event behind")
  })
)

const appendManyAtomicityCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const a = stream("a")
    const b = stream("b")
    const results = yield* ok(
      store.appendMany([
        { streamId: a, events: numbered(2), expected: ExpectedVersion.NoStream },
        { streamId: b, events: numbered(3), expected: ExpectedVersion.NoStream }
      ]),
      "appendMany"
    )
    yield* ensureEqual(results.map((r) => r.version), [2, 3], "appendMany returns one result per request, in order")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 5, "appendMany writes every request")
    yield* ensureIncreasingPositions(all, "appendMany")
    yield* ensureEqual(
      results.map((r) => r.position),
      [all.filter((e) => e.streamId === a).at(-1)!.position, all.filter((e) => e.streamId === b).at(-1)!.position],
      "each AppendResult.position is the position of the request's last event"
    )

    const c = stream("c")
    for (const order of ["conflict last", "conflict first"] as const) {
      const requests: Array<EventStore.AppendRequest> = [
        { streamId: c, events: numbered(2, "MustNotExist"), expected: ExpectedVersion.NoStream },
        { streamId: a, events: numbered(1, "MustNotExist"), expected: ExpectedVersion.Exact(1) }
      ]
      if (order === "conflict first") requests.reverse()
      yield* expectConflict(
        store.appendMany(requests),
        a,
        ExpectedVersion.Exact(1),
        2,
        `appendMany with a stale request (${order})`
      )
      yield* ensureEqual(
        yield* ok(store.streamVersion(c), "streamVersion"),
        0,
        `appendMany (${order}): a conflict in one request writes nothing to the others`
      )
      const after = yield* readAllOf(store, { filter: { categories: [category] } })
      yield* ensureEqual(ids(after), ids(all), `appendMany (${order}): nothing at all is written`)
    }
  })
)

const readRangesCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("ranges")
    yield* ok(store.append(s, numbered(10), ExpectedVersion.NoStream), "append")
    const cases: ReadonlyArray<readonly [EventStore.ReadOptions, ReadonlyArray<number>]> = [
      [{}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ direction: "forward" }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ direction: "backward" }, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]],
      [{ from: 3, to: 6 }, [3, 4, 5, 6]],
      [{ from: 3, to: 6, direction: "backward" }, [6, 5, 4, 3]],
      [{ from: 8 }, [8, 9, 10]],
      [{ to: 2 }, [1, 2]],
      [{ limit: 3 }, [1, 2, 3]],
      [{ direction: "backward", limit: 3 }, [10, 9, 8]],
      [{ from: 3, to: 9, limit: 2 }, [3, 4]],
      [{ from: 3, to: 9, direction: "backward", limit: 2 }, [9, 8]],
      [{ from: 11 }, []],
      [{ from: 5, to: 4 }, []],
      [{ to: 100 }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ limit: 0 }, []]
    ]
    for (const [options, expected] of cases) {
      const events = yield* readStream(store, s, options)
      yield* ensureEqual(versions(events), expected, `read(${show(options)}) versions`)
      yield* ensureEqual(payloads(events), expected.map((n) => ({ n })), `read(${show(options)}) data`)
    }
    yield* ensureEqual(yield* readStream(store, stream("missing")), [], "reading a missing stream gives no events")
  })
)

const readForFoldCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("fold")
    const events = numbered(6).map((e, i) => i % 2 === 0 ? e : ev("Other", { n: i + 1 }, { correlationId: "c" }))
    yield* ok(store.append(s, events.slice(0, 4), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(s, events.slice(4), ExpectedVersion.Exact(4)), "append")
    const cases: ReadonlyArray<EventStore.FoldOptions> = [
      {},
      { from: 3 },
      { to: 2 },
      { from: 2, to: 5 },
      { from: 7 },
      { from: 4, to: 3 },
      { to: 100 },
      { from: 0 },
      { limit: 2 },
      { from: 2, limit: 3 },
      { from: 5, limit: 10 },
      { from: 2, to: 4, limit: 2 },
      { limit: 0 }
    ]
    for (const options of cases) {
      const recorded = yield* readStream(store, s, options)
      const folded = yield* ok(store.readForFold(s, options), `readForFold(${show(options)})`)
      yield* ensureEqual(
        folded.map(({ data, position, type, version }) => ({ version, position, type, data })),
        recorded.map(({ data, position, type, version }) => ({ version, position, type, data })),
        `readForFold(${show(options)}) gives read's versions, positions, types and data`
      )
    }
    // a read with more options than these is still read forward
    const widened: EventStore.ReadOptions = { from: 2, direction: "backward", limit: 2 }
    const forward = yield* ok(store.readForFold(s, widened), "readForFold(ReadOptions)")
    yield* ensureEqual(forward.map((e) => e.version), [2, 3], "readForFold reads forward from `from`")
    yield* ensureEqual(
      yield* ok(store.readForFold(stream("none")), "readForFold"),
      [],
      "readForFold of a missing stream gives no events"
    )
    // re-created after a delete: new positions (a cached state is checked by them)
    const before = yield* readStream(store, s)
    yield* ok(store.delete(s), "delete")
    yield* ok(store.append(s, events.slice(0, 2), ExpectedVersion.NoStream), "append")
    const after = yield* ok(store.readForFold(s), "readForFold")
    yield* ensureEqual(after.map((e) => e.version), [1, 2], "readForFold after a delete and a re-creation")
    yield* ensure(
      after.every((e) => !before.some((old) => old.position === e.position)),
      `a re-created stream's events get new positions, got ${show(positions(before))} then ${
        show(after.map((e) => e.position))
      }`
    )
  })
)

const streamVersionCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("sv")
    const other = stream("other")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a missing stream is at version 0")
    yield* ok(store.append(s, numbered(3), ExpectedVersion.Any), "append")
    yield* ok(store.append(other, numbered(4), ExpectedVersion.Any), "append")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.Any), "append")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 5, "streamVersion counts this stream only")
    yield* ensureEqual(yield* ok(store.streamVersion(other), "streamVersion"), 4, "streamVersion of another stream")
  })
)

const readAllFiltersCheck = fixture(({ category, newCategory, store, stream, track }) =>
  Effect.gen(function*() {
    const otherCategory = yield* newCategory
    const a1 = stream("1")
    const a2 = stream("2")
    const b1 = track(StreamId.unsafeMake(otherCategory, "1"))
    yield* ok(store.append(a1, [ev("T1", { k: "a1-1" }), ev("T2", { k: "a1-2" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(b1, [ev("T1", { k: "b1-1" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(a2, [ev("T2", { k: "a2-1" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(a1, [ev("T1", { k: "a1-3" })], ExpectedVersion.Exact(2)), "append")
    yield* ok(store.append(b1, [ev("T2", { k: "b1-2" })], ExpectedVersion.Exact(1)), "append")
    const keys = (events: ReadonlyArray<EventStore.RecordedEvent>) =>
      events.map((e) => (e.data as { readonly k: string }).k)
    const both = [category, otherCategory]
    const all = yield* readAllOf(store, { filter: { categories: both } })
    yield* ensureEqual(keys(all), ["a1-1", "a1-2", "b1-1", "a2-1", "a1-3", "b1-2"], "readAll is in commit order")
    yield* ensureIncreasingPositions(all, "readAll")
    const cases: ReadonlyArray<readonly [string, EventStore.ReadAllOptions, ReadonlyArray<string>]> = [
      ["one category", { filter: { categories: [category] } }, ["a1-1", "a1-2", "a2-1", "a1-3"]],
      ["category and type", { filter: { categories: both, types: ["T1"] } }, ["a1-1", "b1-1", "a1-3"]],
      ["types (or)", { filter: { categories: [otherCategory], types: ["T1", "T2"] } }, ["b1-1", "b1-2"]],
      ["stream ids", { filter: { streamIds: [a2, b1] } }, ["b1-1", "a2-1", "b1-2"]],
      ["stream id and type", { filter: { streamIds: [a1], types: ["T2"] } }, ["a1-2"]],
      ["from a position (inclusive)", { from: all[2]!.position, filter: { categories: both } }, [
        "b1-1",
        "a2-1",
        "a1-3",
        "b1-2"
      ]],
      ["limit", { limit: 2, filter: { categories: both } }, ["a1-1", "a1-2"]],
      ["limit 0", { limit: 0, filter: { categories: both } }, []],
      ["from and limit", { from: all[1]!.position, limit: 3, filter: { categories: [category] } }, [
        "a1-2",
        "a2-1",
        "a1-3"
      ]],
      ["a category with no events", { filter: { categories: [`${category}zz`] } }, []],
      ["an unknown type", { filter: { categories: both, types: ["Nope"] } }, []],
      ["from beyond the end", { from: all[5]!.position + 1_000_000, filter: { categories: both } }, []]
    ]
    for (const [what, options, expected] of cases) {
      const events = yield* readAllOf(store, options)
      yield* ensureEqual(keys(events), expected, `readAll filter: ${what}`)
    }
  })
)

const readAllTimeRangeCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("time")
    const batches: Array<ReadonlyArray<EventStore.RecordedEvent>> = []
    for (let i = 0; i < 3; i++) {
      if (i > 0) yield* Effect.sleep("40 millis")
      yield* ok(store.append(s, numbered(2, `Batch${i}`), ExpectedVersion.Any), "append")
      batches.push((yield* readStream(store, s)).slice(2 * i))
    }
    const times = batches.map((batch) => batch.map((e) => e.recordedAt.epochMillis))
    for (let i = 1; i < 3; i++) {
      yield* ensure(
        Math.min(...times[i]!) > Math.max(...times[i - 1]!),
        `recordedAt must follow commit time: batches 40ms apart got ${show(times)}`
      )
    }
    const mid = (i: number) =>
      DateTime.unsafeMake(Math.floor((Math.max(...times[i]!) + Math.min(...times[i + 1]!)) / 2))
    const types = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.type)
    const cases: ReadonlyArray<readonly [string, EventStore.Filter, ReadonlyArray<string>]> = [
      ["after", { after: mid(0) }, ["Batch1", "Batch1", "Batch2", "Batch2"]],
      ["before", { before: mid(0) }, ["Batch0", "Batch0"]],
      ["after and before", { after: mid(0), before: mid(1) }, ["Batch1", "Batch1"]],
      ["before the first", { before: DateTime.unsafeMake(Math.min(...times[0]!) - 1000) }, []],
      ["after the last", { after: DateTime.unsafeMake(Math.max(...times[2]!) + 1000) }, []]
    ]
    for (const [what, filter, expected] of cases) {
      const events = yield* readAllOf(store, { filter: { ...filter, categories: [category] } })
      yield* ensureEqual(types(events), expected, `readAll time filter: ${what}`)
    }
  })
)

const deleteCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("deleted")
    const kept = stream("kept")
    yield* ok(store.append(s, numbered(3), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(kept, numbered(2), ExpectedVersion.NoStream), "append")
    yield* ok(store.delete(s), "delete")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a deleted stream is at version 0")
    yield* ensureEqual(yield* readStream(store, s), [], "a deleted stream reads empty")
    yield* ensureEqual(
      yield* readAllOf(store, { filter: { streamIds: [s] } }),
      [],
      "a deleted stream's events are gone from readAll"
    )
    const rest = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(rest.map((e) => e.streamId), [kept, kept], "deleting a stream leaves the others alone")
    yield* ensureEqual(yield* ok(store.streamVersion(kept), "streamVersion"), 2, "other streams keep their version")
    const again = yield* ok(store.append(s, [ev("Again", { n: 1 })], ExpectedVersion.NoStream), "re-creating")
    yield* ensureEqual(again.version, 1, "a deleted stream can be re-created from version 1")
    yield* ensureEqual((yield* readStream(store, s)).map((e) => e.type), ["Again"], "only the new events are read")
    const subscribed = yield* collect(
      store.subscribe({ filter: { categories: [category] } }),
      (event) => event.type === "Again",
      "subscribe over a deleted stream"
    )
    yield* ensureEqual(
      subscribed.map((e) => [e.streamId, e.type]),
      [[kept, "Numbered"], [kept, "Numbered"], [s, "Again"]],
      "a subscription skips deleted events and goes on"
    )
    yield* ok(store.delete(stream("never-existed")), "deleting a missing stream")
  })
)

const lockExclusiveCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("locked")
    let firstReleased = false
    const firstHeld = yield* Deferred.make<void>()
    const releaseFirst = yield* Deferred.make<void>()
    const first = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      // runs before the lock's own finalizer (finalizers run in reverse order)
      yield* Effect.addFinalizer(() => Effect.sync(() => firstReleased = true))
      yield* Deferred.succeed(firstHeld, undefined)
      yield* Deferred.await(releaseFirst)
    })))
    yield* withPatience(Deferred.await(firstHeld), "taking a free lock")
    const secondAcquired = yield* Deferred.make<boolean>()
    const second = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "second lock")
      yield* Deferred.succeed(secondAcquired, firstReleased)
    })))
    yield* Effect.sleep(settle)
    const early = yield* Deferred.poll(secondAcquired)
    yield* ensure(Option.isNone(early), "a second lock on the same stream was granted while the first was held")
    yield* Deferred.succeed(releaseFirst, undefined)
    const sawRelease = yield* withPatience(
      Deferred.await(secondAcquired),
      "the second lock after the first is released"
    )
    yield* ensure(sawRelease, "a second lock on the same stream was granted while the first was held")
    yield* Fiber.join(first)
    yield* Fiber.join(second)

    // a waiter that is interrupted does not keep (or later take) the lock
    const holder = yield* Deferred.make<void>()
    const stop = yield* Deferred.make<void>()
    const holding = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      yield* Deferred.succeed(holder, undefined)
      yield* Deferred.await(stop)
    })))
    yield* withPatience(Deferred.await(holder), "taking the lock again")
    const waiter = yield* Effect.forkScoped(Effect.scoped(ok(store.lock(s), "waiting lock")))
    yield* Effect.sleep(settle)
    yield* Fiber.interrupt(waiter)
    yield* Deferred.succeed(stop, undefined)
    yield* Fiber.join(holding)
    yield* withPatience(Effect.scoped(ok(store.lock(s), "lock")), "a lock after an interrupted waiter")

    // a holder that is interrupted releases the lock
    const held = yield* Deferred.make<void>()
    const forever = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      yield* Deferred.succeed(held, undefined)
      return yield* Effect.never
    })))
    yield* withPatience(Deferred.await(held), "taking the lock")
    yield* Fiber.interrupt(forever)
    yield* withPatience(Effect.scoped(ok(store.lock(s), "lock")), "a lock after its holder was interrupted")
  })
)

const lockDoesNotBlockCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("locked")
    const other = stream("other")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.NoStream), "append")
    yield* ok(store.lock(s), "lock")
    const events = yield* withPatience(readStream(store, s), "read of a locked stream")
    yield* ensureEqual(versions(events), [1, 2], "a locked stream can be read")
    yield* ensureEqual(
      yield* withPatience(ok(store.streamVersion(s), "streamVersion"), "streamVersion of a locked stream"),
      2,
      "streamVersion of a locked stream"
    )
    const all = yield* withPatience(readAllOf(store, { filter: { streamIds: [s] } }), "readAll of a locked stream")
    yield* ensureEqual(all.length, 2, "readAll of a locked stream")
    yield* withPatience(Effect.scoped(ok(store.lock(other), "lock")), "locking another stream while one is locked")
  })
)

const subscribeCatchUpThenLiveCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("sub")
    const other = stream("other")
    yield* ok(store.append(s, numbered(5), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(other, numbered(2, "Other"), ExpectedVersion.NoStream), "append")
    const caughtUp = yield* Deferred.make<void>()
    const subscriber = yield* Effect.forkScoped(
      collect(
        store.subscribe({ filter: { categories: [category] } }),
        (event) => event.type === "End",
        "subscribe (catch-up then live)",
        (seen) => seen.length === 7 ? Deferred.succeed(caughtUp, undefined) : Effect.void
      )
    )
    yield* withPatience(Deferred.await(caughtUp), "the subscription catching up with 7 stored events")
    yield* ok(store.append(s, numbered(3, "Live"), ExpectedVersion.Exact(5)), "append")
    yield* ok(store.append(other, [ev("End", {})], ExpectedVersion.Exact(2)), "append")
    const delivered = yield* Fiber.join(subscriber)
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 11, "readAll of the category")
    yield* ensureExactlyOnceInOrder(delivered, all, "subscribe")

    const fromFourth = yield* collect(
      store.subscribe({ from: all[3]!.position, filter: { categories: [category] } }),
      (event) => event.type === "End",
      "subscribe from a position"
    )
    yield* ensureExactlyOnceInOrder(fromFourth, all.slice(3), "subscribe from a position (inclusive)")

    const filtered = yield* collect(
      store.subscribe({ filter: { streamIds: [s], types: ["Live"] } }),
      (_, seen) => seen.length === 3,
      "subscribe with a stream and type filter"
    )
    yield* ensureExactlyOnceInOrder(filtered, all.filter((e) => e.type === "Live"), "subscribe with a filter")
  })
)

const headPositionCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("head")
    const first = yield* ok(store.append(s, numbered(3), ExpectedVersion.NoStream), "append")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      first.position,
      "headPosition is the position of the last committed event"
    )
    const second = yield* ok(store.append(stream("head2"), numbered(2), ExpectedVersion.NoStream), "append")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      second.position,
      "headPosition follows appends"
    )
    // a tombstone takes a position of the global log like an event: a log that ends with a deletion ends there
    yield* ok(store.delete(stream("head2")), "delete")
    const entries = yield* ok(
      Effect.map(
        Stream.runCollect(store.readAll({ filter: { streamIds: [stream("head2")] }, deletions: true })),
        Chunk.toArray
      ),
      "readAll({ deletions: true })"
    )
    const tombstone = entries.find(EventStore.isTombstone)
    yield* ensure(tombstone !== undefined, "delete leaves a tombstone")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      tombstone!.position,
      "headPosition counts tombstones: a log whose last entry is a deletion is at the tombstone's position"
    )
  })
)

const subscribeHeldCommitCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const hold = yield* Effect.serviceOption(CommitHold)
    // needs the CommitHold capability (suite() reports it as skipped); the real-concurrency check covers every store
    if (Option.isNone(hold)) return
    const a = stream("slow")
    const b = stream("fast")
    const held = yield* hold.value.holdNextCommit
    const slow = yield* Effect.forkScoped(ok(store.append(a, [ev("Slow", {})], ExpectedVersion.NoStream), "append"))
    const reserved = yield* withPatience(held.reserved, "the held commit reserving its position")
    yield* ok(store.append(b, [ev("Fast", {})], ExpectedVersion.NoStream), "append")
    const subscriber = yield* Effect.forkScoped(
      collect(
        store.subscribe({ filter: { categories: [category] } }),
        (_, seen) => seen.length === 2,
        "subscribe across a commit in flight"
      )
    )
    yield* Effect.sleep(settle) // let the subscriber poll while the hole is open
    const during = yield* readAllOf(store, { filter: { categories: [category] } })
    const headDuring = yield* ok(store.headPosition, "headPosition")
    yield* held.release
    yield* Fiber.join(slow)
    const delivered = yield* Fiber.join(subscriber)
    yield* ensureEqual(
      during.map((e) => e.type),
      [],
      `readAll must not pass a commit in flight (position ${show(reserved)} held, a later one committed)`
    )
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.map((e) => e.type), ["Slow", "Fast"], "after release, both events in position order")
    yield* ensureEqual(positions(all)[0], reserved[0], "the held commit keeps its reserved position")
    yield* ensureExactlyOnceInOrder(delivered, all, "subscribe across a commit in flight")
    yield* ensure(
      headDuring < reserved[0]!,
      `headPosition must not pass a commit in flight (position ${show(reserved)} held, headPosition ${headDuring})`
    )
    yield* ensure(
      (yield* ok(store.headPosition, "headPosition")) >= all[all.length - 1]!.position,
      "after release, headPosition reaches the later commit"
    )
  })
)

const subscribeConcurrentWritersCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const writers = 8
    const perWriter = 12
    const subscriber = yield* Effect.forkScoped(
      collect(
        store.subscribe({ filter: { categories: [category] } }),
        (event) => event.type === "End",
        "subscribe while concurrent writers commit"
      )
    )
    const late = yield* Deferred.make<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation>()
    // readAll while writers commit: every answer must be a prefix of the final log (holes are fine, reordering not)
    const snapshots: Array<ReadonlyArray<EventStore.RecordedEvent>> = []
    const reader = yield* Effect.forkScoped(
      readAllOf(store, { filter: { categories: [category] } }).pipe(
        Effect.tap((events) => Effect.sync(() => snapshots.push(events))),
        Effect.zipRight(Effect.sleep("1 millis")),
        Effect.forever
      )
    )
    yield* Effect.forEach(
      Array.from({ length: writers }, (_, w) => w),
      (w) =>
        Effect.gen(function*() {
          const s = stream(`w${w}`)
          for (let i = 0; i < perWriter; i++) {
            if (i % 4 === 3) {
              // a unit of work over two streams
              const pair = stream(`w${w}pair`)
              yield* ok(
                store.appendMany([
                  { streamId: s, events: [ev("Written", { w, i })], expected: ExpectedVersion.Exact(i) },
                  { streamId: pair, events: [ev("Paired", { w, i })], expected: ExpectedVersion.Any }
                ]),
                "appendMany"
              )
            } else {
              yield* ok(store.append(s, [ev("Written", { w, i })], ExpectedVersion.Exact(i)), "append")
            }
            if (w === 0 && i === perWriter / 2) {
              // a second subscriber that starts while writes are going on
              yield* Effect.forkScoped(
                Effect.flatMap(
                  collect(
                    store.subscribe({ filter: { categories: [category] } }),
                    (event) => event.type === "End",
                    "a subscriber started mid-way"
                  ),
                  (events) => Deferred.succeed(late, events)
                ).pipe(Effect.catchAll((error) => Deferred.fail(late, error)))
              )
            }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    yield* Fiber.interrupt(reader)
    yield* ok(store.append(stream("end"), [ev("End", {})], ExpectedVersion.NoStream), "append")
    const delivered = yield* Fiber.join(subscriber)
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, writers * perWriter + writers * (perWriter / 4) + 1, "readAll of every write")
    yield* ensureIncreasingPositions(all, "readAll after concurrent writers")
    yield* ensureExactlyOnceInOrder(delivered, all, "subscription during concurrent writes")
    yield* ensureExactlyOnceInOrder(yield* Deferred.await(late), all, "subscription started during concurrent writes")
    const allIds = ids(all)
    for (const snapshot of snapshots) {
      const prefix = snapshot.every((event, i) => allIds[i] === event.id)
      if (!prefix) {
        const seen = new Set(ids(snapshot))
        const passed = all.filter((e) => !seen.has(e.id) && e.position < snapshot.at(-1)!.position)
        return yield* fail(
          `readAll during concurrent writes returned positions ${show(positions(snapshot))}, but events at positions ${
            show(positions(passed))
          } were committed below them later: readAll must never pass a commit in flight`
        )
      }
    }
  })
)

const raceCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const contenders = 12
    for (const [existing, expected] of [[0, ExpectedVersion.NoStream], [3, ExpectedVersion.Exact(3)]] as const) {
      const s = stream(`race${existing}`)
      if (existing > 0) yield* ok(store.append(s, numbered(existing), ExpectedVersion.NoStream), "append")
      const results = yield* Effect.all(
        Array.from(
          { length: contenders },
          (_, i) => Effect.either(store.append(s, [ev("Contender", { i })], expected))
        ),
        { concurrency: "unbounded" }
      )
      const winners = results.filter(Either.isRight)
      yield* ensureEqual(
        winners.length,
        1,
        `${contenders} concurrent appends expecting ${ExpectedVersion.format(expected)}: winners`
      )
      for (const result of results) {
        if (Either.isLeft(result)) {
          yield* expectConflict(Effect.fail(result.left), s, expected, existing + 1, "a losing concurrent append")
        }
      }
      yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing + 1, "only the winner is written")
      const events = yield* readStream(store, s)
      yield* ensureEqual(events.filter((e) => e.type === "Contender").length, 1, "only the winner is written")
    }
  })
)

const idempotencyCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("idem")
    const batch: ReadonlyArray<EventStore.EventData> = [
      { id: newId(), type: "Deposited", data: { amount: 1 } },
      { id: newId(), type: "Deposited", data: { amount: 2 } }
    ]
    const first = yield* ok(store.append(s, batch, ExpectedVersion.NoStream), "append")
    yield* ok(store.append(stream("between"), numbered(1), ExpectedVersion.NoStream), "append")
    const again = yield* ok(
      store.append(s, batch, ExpectedVersion.NoStream),
      "re-sending a committed batch with the same ids"
    )
    yield* ensureEqual(again, first, "re-sending a committed batch returns the original AppendResult")
    yield* ensureEqual(
      yield* ok(store.streamVersion(s), "streamVersion"),
      2,
      "re-sending a committed batch writes nothing"
    )
    const idConflict = (
      effect: Effect.Effect<unknown, unknown>,
      what: string
    ): Effect.Effect<void, ContractViolation> =>
      Effect.flatMap(Effect.either(effect), (result) =>
        Either.isLeft(result) && result.left instanceof EventStore.EventIdConflict
          ? Effect.void
          : fail(
            `${what}: expected an EventIdConflict, got ${
              Either.isLeft(result) ? describeError(result.left) : `success ${show(result.right)}`
            }`
          ))
    yield* idConflict(
      store.append(s, [{ ...batch[0]!, data: { amount: 100 } }, batch[1]!], ExpectedVersion.NoStream),
      "the same id with other content"
    )
    const elsewhere = stream("elsewhere")
    yield* idConflict(store.append(elsewhere, batch, ExpectedVersion.Any), "the same ids in another stream")
    yield* ensureEqual(yield* ok(store.streamVersion(elsewhere), "streamVersion"), 0, "an id conflict writes nothing")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 3, "no duplicates were written")
  })
)

const unicodeCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("unicode")
    const texts = [
      "héllo wörld",
      "日本語のテキスト",
      "emoji 😀🎉👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
      "RTL: مرحبا بالعالم שלום",
      "combining: e\u0301 a\u030a",
      "line separators \u2028 \u2029 and\nnew\r\nlines\ttabs",
      "quotes \" ' ` and backslashes \\ \\\\ \\u0041",
      "json-ish {\"a\": [1, 2]} and sql-ish '); drop table events; --",
      "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱"
    ]
    const data = { texts, "ключ 🔑": "значение", nested: { "a\"b": texts[2] } }
    const metadata = { correlationId: "相关-😀", note: texts[5] }
    yield* ok(store.append(s, [ev("Ünïcødé😀", data, metadata)], ExpectedVersion.NoStream), "append")
    const [event] = yield* readStream(store, s)
    yield* ensureEqual(event?.data, data, "unicode data round-trips through read")
    yield* ensureEqual(event?.type, "Ünïcødé😀", "a unicode event type round-trips")
    yield* ensureEqual(
      { correlationId: event?.metadata.correlationId, note: event?.metadata.note },
      metadata,
      "unicode metadata round-trips"
    )
    const all = yield* readAllOf(store, { filter: { categories: [category], types: ["Ünïcødé😀"] } })
    yield* ensureEqual(payloads(all), [data], "unicode data round-trips through readAll and a unicode type filter")
  })
)

const largePayloadCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("large")
    const chunk = "0123456789abcdefghijklmnopqrstuvwxyzÀÉÎÕÜ€😀"
    const big = chunk.repeat(Math.ceil(1_100_000 / chunk.length))
    const data = { big, items: Array.from({ length: 2000 }, (_, i) => ({ i, label: `item ${i}` })) }
    yield* ok(store.append(s, [ev("Large", data)], ExpectedVersion.NoStream), "append of a payload over 1 MB")
    const [event] = yield* readStream(store, s)
    const read = event?.data as { readonly big?: unknown } | undefined
    yield* ensure(read?.big === big, `a payload of ${big.length} characters must round-trip unchanged`)
    yield* ensureEqual(event?.data, data, "a large payload round-trips")
    const many = yield* ok(store.append(s, numbered(1000), ExpectedVersion.Exact(1)), "append of 1000 events")
    yield* ensureEqual(many.version, 1001, "a batch of 1000 events")
    const events = yield* readStream(store, s, { from: 2 })
    yield* ensureEqual(payloads(events), Array.from({ length: 1000 }, (_, i) => ({ n: i + 1 })), "1000 events")
  })
)

const hostileStreamIdsCheck = fixture(({ category, store, track }) =>
  Effect.gen(function*() {
    const hostile = [
      "it's",
      "double\"quote",
      "semi;colon",
      "back\\slash\\\\",
      "'; DROP TABLE events; --",
      "\" OR 1=1 --",
      "$1 ? %s %_ *",
      "percent%like_",
      "new\nline\ttab",
      "ünïcødé-😀-日本",
      "dash-inside-id",
      "space and  spaces ",
      "x".repeat(StreamId.maxLength - category.length - 1)
    ]
    for (const id of hostile) {
      const parsed = StreamId.make(category, id)
      if (Either.isLeft(parsed)) {
        yield* ensure(
          parsed.left instanceof StreamId.InvalidStreamId,
          `StreamId.make refused ${show(id)} without a typed InvalidStreamId`
        )
        continue
      }
      const s = track(parsed.right)
      const what = `stream id ${show(id.length > 40 ? `${id.slice(0, 40)}… (${id.length} chars)` : id)}`
      yield* ok(store.append(s, [ev("Hostile", { id })], ExpectedVersion.NoStream), `append to ${what}`)
      const events = yield* readStream(store, s)
      yield* ensureEqual(events.map((e) => [e.streamId, e.data]), [[s, { id }]], `${what} round-trips through read`)
      yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 1, `${what}: streamVersion`)
      const viaFilter = yield* readAllOf(store, { filter: { streamIds: [s] } })
      yield* ensureEqual(viaFilter.map((e) => e.streamId), [s], `${what}: readAll by stream id`)
    }
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, hostile.length, "every hostile stream id is in its category")
    const tooLong = StreamId.make(category, "y".repeat(StreamId.maxLength))
    yield* ensure(
      Either.isLeft(tooLong) && tooLong.left instanceof StreamId.InvalidStreamId,
      "a stream id over the maximum length is refused with InvalidStreamId"
    )
    const nothing = yield* readAllOf(store, {
      filter: { categories: ["'; DROP TABLE events; --", "x\" OR \"1\"=\"1"], types: ["' OR 1=1 --"] }
    })
    yield* ensureEqual(nothing, [], "hostile filter values match nothing and break nothing")
    for (const event of all) yield* ok(store.delete(event.streamId), `delete ${show(event.streamId.slice(0, 40))}`)
    yield* ensureEqual(
      yield* readAllOf(store, { filter: { categories: [category] } }),
      [],
      "hostile stream ids can be deleted"
    )
  })
)

// the bad-input checks (stream ids, events, numbers, event id case, conflicts naming the stored id)
const input = inputChecks.make({ violation: internal.violation, withPatience })

// the deletion checks (tombstones in the global log)
const deletions = tombstoneChecks.make({
  fixture,
  withPatience,
  holdNextDelete: Effect.map(
    Effect.serviceOption(CommitHold),
    (hold) => Option.flatMap(hold, (h) => Option.fromNullable(h.holdNextDelete))
  ),
  settle
})

// -------------------------------------------------------------------------------------
// exports
// -------------------------------------------------------------------------------------

/**
 * Every check of the contract, by name, as a plain Effect (see {@link suite} for what they cover).
 * `subscribeHeldCommit` needs {@link CommitHold} in the context and checks nothing without it; `subscribeHeldTombstone`
 * needs its `holdNextDelete`.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 *
 * // one check on its own (it fails with a ContractViolation naming the check when the store breaks the rule)
 * it.live("the expected-versions check", () =>
 *   EventStoreContract.checks.expectedVersions.pipe(Effect.provide(InMemoryEventStore.layer)))
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const checks = {
  versions: named("versions", versionsCheck),
  expectedVersions: named("expectedVersions", expectedVersionsCheck),
  batchAtomicity: named("batchAtomicity", batchAtomicityCheck),
  appendManyAtomicity: named("appendManyAtomicity", appendManyAtomicityCheck),
  readRanges: named("readRanges", readRangesCheck),
  streamVersion: named("streamVersion", streamVersionCheck),
  readForFold: named("readForFold", readForFoldCheck),
  headPosition: named("headPosition", headPositionCheck),
  readAllFilters: named("readAllFilters", readAllFiltersCheck),
  readAllTimeRange: named("readAllTimeRange", readAllTimeRangeCheck),
  delete: named("delete", deleteCheck),
  tombstones: named("tombstones", deletions.tombstones),
  subscribeTombstones: named("subscribeTombstones", deletions.subscribeTombstones),
  subscribeHeldTombstone: named("subscribeHeldTombstone", deletions.subscribeHeldTombstone),
  lockExclusive: named("lockExclusive", lockExclusiveCheck),
  lockDoesNotBlock: named("lockDoesNotBlock", lockDoesNotBlockCheck),
  subscribeCatchUpThenLive: named("subscribeCatchUpThenLive", subscribeCatchUpThenLiveCheck),
  subscribeHeldCommit: named("subscribeHeldCommit", subscribeHeldCommitCheck),
  subscribeConcurrentWriters: named("subscribeConcurrentWriters", subscribeConcurrentWritersCheck),
  race: named("race", raceCheck),
  idempotency: named("idempotency", idempotencyCheck),
  unicode: named("unicode", unicodeCheck),
  largePayload: named("largePayload", largePayloadCheck),
  hostileStreamIds: named("hostileStreamIds", hostileStreamIdsCheck),
  invalidStreamIds: named("invalidStreamIds", input.invalidStreamIds),
  invalidEvents: named("invalidEvents", input.invalidEvents),
  invalidNumbers: named("invalidNumbers", input.invalidNumbers),
  eventIdCase: named("eventIdCase", input.eventIdCase),
  eventIdConflictNamesStoredId: named("eventIdConflictNamesStoredId", input.eventIdConflictNamesStoredId)
} as const satisfies Record<string, Check>

/**
 * The names of the checks.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckName = keyof typeof checks

/**
 * The test title of each check.
 *
 * @since 0.1.0
 * @category testing
 */
export const titles: { readonly [K in CheckName]: string } = {
  versions: "versions start at 1, positions increase, data and metadata round-trip, empty appends write nothing",
  expectedVersions:
    "Any, NoStream, StreamExists and Exact on new and existing streams; conflicts carry the real version",
  batchAtomicity: "a refused batch (stale expectation, non-JSON data) writes nothing",
  appendManyAtomicity: "appendMany is atomic across streams: a conflict in one request writes nothing at all",
  readRanges: "read forward/backward with from, to and limit",
  streamVersion: "streamVersion is 0 for a missing stream and counts only its own stream",
  readForFold: "readForFold gives read's versions, positions, types and data; re-created streams get new positions",
  headPosition: "headPosition is the position of the last committed event or tombstone (never past a commit in flight)",
  readAllFilters: "readAll filters by categories, types, stream ids, from position and limit, in position order",
  readAllTimeRange: "readAll filters by recordedAt (after / before, exclusive)",
  delete: "delete: version 0 afterwards, gone from readAll, other streams untouched, can be re-created",
  ...tombstoneChecks.titles,
  lockExclusive: "a second lock on a stream waits for the first scope to close; interrupted waiters/holders let go",
  lockDoesNotBlock: "a locked stream can be read, and other streams can be locked",
  subscribeCatchUpThenLive: "subscribe: catch-up then live, from a position, with filters; once each, in order",
  subscribeHeldCommit: "subscribe and readAll never pass a commit in flight (needs CommitHold, else skipped)",
  subscribeConcurrentWriters: "subscribe while many writers commit concurrently: nothing missing, no duplicates",
  race: "concurrent appends with the same expected version: exactly one winner",
  idempotency: "re-sending a committed batch with the same ids returns the original result; id conflicts are typed",
  unicode: "unicode data, metadata and types round-trip",
  largePayload: "a payload over 1 MB and a batch of 1000 events round-trip",
  hostileStreamIds: "hostile stream ids round-trip (or are refused by StreamId.make with InvalidStreamId)",
  ...inputChecks.titles
}

/**
 * Registers the whole conformance suite for a store Layer with `@effect/vitest`: the Layer is built once (without
 * test services: the checks use the real clock) and every check in {@link checks} becomes a test.
 *
 * The suite covers: stream versions and global positions; all four expected versions with the real actual version
 * in conflicts; atomic batches and atomic `appendMany` across streams; `read` directions, ranges and limits; `readForFold`;
 * `streamVersion`; `readAll` filters (categories, types, stream ids, time range, from position, limit); deletion;
 * lock exclusivity (reads and other streams never wait); subscriptions delivering every event exactly once in
 * position order (catch-up, live, commits in flight, concurrent writers); races with exactly one winner;
 * idempotent appends by event id; unicode and large payloads; hostile stream ids.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 *
 * EventStoreContract.suite("InMemoryEventStore", InMemoryEventStore.layer)
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const suite = <E>(name: string, store: Layer.Layer<EventStore.EventStore, E>, options?: Options): void => {
  const timeout = Duration.decode(options?.timeout ?? Duration.seconds(60))
  // sequential even under `sequence.concurrent`: the held-commit check holds the store's next commit
  describe.sequential(`EventStoreContract: ${name}`, () => {
    layer(store, { excludeTestServices: true, timeout })((it) => {
      for (const key of Object.keys(checks) as Array<CheckName>) {
        it.effect(titles[key], (ctx) => {
          if (key !== "subscribeHeldCommit" && key !== "subscribeHeldTombstone") return checks[key]
          return Effect.flatMap(
            Effect.serviceOption(CommitHold),
            (hold) =>
              Option.isSome(hold) && (key === "subscribeHeldCommit" || hold.value.holdNextDelete !== undefined)
                ? checks[key]
                : Effect.sync(() => {
                  // report the check as skipped: `skip` marks the test, then throws to abort it, which we do not need
                  try {
                    ctx.skip(
                      key === "subscribeHeldCommit"
                        ? "the store's Layer provides no EventStoreContract.CommitHold"
                        : "the store's Layer provides no EventStoreContract.CommitHold with holdNextDelete"
                    )
                  } catch {
                    // the test is marked as skipped
                  }
                })
          )
        }, Duration.toMillis(timeout))
      }
    })
  })
}
