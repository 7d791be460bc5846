import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  SnapshotStore,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Either, FastCheck, Layer, Schema } from "effect"

// A state that is the whole history: any event folded twice, missed or taken from another life of the stream shows.
class Added extends Schema.TaggedClass<Added>()("Added", { n: Schema.Int }) {}
class Add extends Schema.TaggedClass<Add>()("Add", { values: Schema.Array(Schema.Int) }) {}
const Tally = Aggregate.make({
  name: "tally",
  events: Added,
  commands: Add,
  initialState: [] as ReadonlyArray<number>,
  decide: (command: Add) => Either.right(command.values.map((n) => new Added({ n }))),
  evolve: (state: ReadonlyArray<number>, event: Added): ReadonlyArray<number> => [...state, event.n]
})
const SnapshottedTally = Aggregate.make({
  name: "tally",
  events: Added,
  commands: Add,
  state: Schema.Array(Schema.Int),
  initialState: [] as ReadonlyArray<number>,
  decide: (command: Add) => Either.right(command.values.map((n) => new Added({ n }))),
  evolve: (state: ReadonlyArray<number>, event: Added): ReadonlyArray<number> => [...state, event.n],
  snapshotEvery: 3
})

const plain = Repository.make(Tally)
const streamOf = (id: string) => StreamId.unsafeMake("tally", id)
const encoded = (values: ReadonlyArray<number>) => values.map((n) => ({ type: "Added", data: { n } }))

/** An append by "another process": straight to the store, past every repository and cache. */
const otherAppend = (id: string, values: ReadonlyArray<number>) =>
  EventStore.append(streamOf(id), encoded(values), ExpectedVersion.Any)
const otherDelete = (id: string) => Effect.flatMap(EventStore.EventStore, (store) => store.delete(streamOf(id)))

/** The cached load must give what a load without a cache gives. */
const same = <S, C, Ev, E>(cached: Repository.Repository<S, C, Ev, E>, id: string) =>
  Effect.gen(function*() {
    const expected = yield* plain.loadOrInitial(id)
    const actual = yield* cached.loadOrInitial(id)
    assert.deepStrictEqual(actual.state, expected.state as unknown as S)
    assert.strictEqual(actual.version, expected.version)
    return actual
  })

/** The in-memory store with every `readForFold` call's options recorded. */
const recording = Effect.map(InMemoryEventStore.make(), (inner) => {
  const calls: Array<{ readonly from?: number | undefined; readonly to?: number | undefined }> = []
  const store = EventStore.make({
    ...inner,
    readForFold: (streamId, options) => {
      // the bounds (every load asks for pages of the same size)
      calls.push(options?.to === undefined ? { from: options?.from } : { from: options.from, to: options.to })
      return inner.readForFold(streamId, options)
    }
  })
  return { store, calls }
})

describe("aggregate state cache", () => {
  it.effect("a warm load reads only the tail after the cached version, and sees appends of other processes", () =>
    Effect.gen(function*() {
      const { calls, store } = yield* recording
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      yield* Effect.gen(function*() {
        yield* otherAppend("a", [1, 2, 3])
        assert.deepStrictEqual((yield* cached.load("a")).state, [1, 2, 3])
        yield* otherAppend("a", [4])
        const warm = yield* cached.load("a")
        assert.deepStrictEqual(warm.state, [1, 2, 3, 4])
        assert.strictEqual(warm.version, 4)
        const again = yield* cached.load("a")
        assert.strictEqual(again.state, warm.state, "served from the cache: the same state value")
      }).pipe(Effect.provideService(EventStore.EventStore, store))
      // cold: the whole stream; warm: from the cached version (its event checks the stream's identity)
      assert.deepStrictEqual(calls, [{ from: 1 }, { from: 3 }, { from: 4 }])
    }))

  it.effect("a stream deleted and re-created by another process is folded again from the start", () =>
    Effect.gen(function*() {
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      yield* otherAppend("longer", [1, 2, 3])
      yield* otherAppend("shorter", [1, 2, 3])
      yield* otherAppend("same", [1, 2, 3])
      yield* otherAppend("gone", [1, 2, 3])
      for (const id of ["longer", "shorter", "same", "gone"]) yield* same(cached, id)
      for (const id of ["longer", "shorter", "same", "gone"]) yield* otherDelete(id)
      yield* otherAppend("longer", [7, 8, 9, 10, 11]) // past the cached version: the tail alone would be 10, 11
      yield* otherAppend("shorter", [7])
      yield* otherAppend("same", [7, 8, 9]) // the same version, another history
      assert.deepStrictEqual((yield* same(cached, "longer")).state, [7, 8, 9, 10, 11])
      assert.deepStrictEqual((yield* same(cached, "shorter")).state, [7])
      assert.deepStrictEqual((yield* same(cached, "same")).state, [7, 8, 9])
      assert.strictEqual((yield* same(cached, "gone")).version, 0)
      const error = yield* Effect.flip(cached.load("gone"))
      assert.instanceOf(error, Aggregate.AggregateNotFound)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("Repository.delete forgets the cached state", () =>
    Effect.gen(function*() {
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      yield* otherAppend("a", [1, 2])
      yield* same(cached, "a")
      yield* cached.delete("a")
      yield* otherAppend("a", [5, 6, 7])
      assert.deepStrictEqual((yield* same(cached, "a")).state, [5, 6, 7])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("loadAt bypasses the cache", () =>
    Effect.gen(function*() {
      const { calls, store } = yield* recording
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      yield* Effect.gen(function*() {
        yield* otherAppend("a", [1, 2, 3, 4])
        yield* cached.load("a")
        const past = yield* cached.loadAt("a", { version: 2 })
        assert.deepStrictEqual(past.state, [1, 2])
        assert.strictEqual(past.version, 2)
        assert.deepStrictEqual((yield* cached.load("a")).state, [1, 2, 3, 4])
      }).pipe(Effect.provideService(EventStore.EventStore, store))
      assert.deepStrictEqual(calls, [{ from: 1 }, { from: 1, to: 2 }, { from: 4 }])
    }))

  it.effect("one cache per store: a repository used with two stores never serves one's state for the other", () =>
    Effect.gen(function*() {
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      const first = yield* InMemoryEventStore.make()
      const second = yield* InMemoryEventStore.make()
      yield* otherAppend("a", [1]).pipe(Effect.provideService(EventStore.EventStore, first))
      yield* otherAppend("a", [2]).pipe(Effect.provideService(EventStore.EventStore, second))
      const a1 = yield* cached.load("a").pipe(Effect.provideService(EventStore.EventStore, first))
      const a2 = yield* cached.load("a").pipe(Effect.provideService(EventStore.EventStore, second))
      assert.deepStrictEqual([a1.state, a2.state], [[1], [2]])
    }))

  it.effect("the cache keeps `capacity` streams, the least recently used go first", () =>
    Effect.gen(function*() {
      const { calls, store } = yield* recording
      const cached = Repository.make(Tally, { cache: { capacity: 2 } })
      yield* Effect.gen(function*() {
        for (const id of ["a", "b", "c"]) yield* otherAppend(id, [1, 2])
        yield* cached.load("a")
        yield* cached.load("b")
        yield* cached.load("a") // a is now the most recent
        yield* cached.load("c") // evicts b
        calls.length = 0
        yield* cached.load("a")
        yield* cached.load("c")
        yield* cached.load("b")
      }).pipe(Effect.provideService(EventStore.EventStore, store))
      // cached: from the cached version 2; forgotten: from 1
      assert.deepStrictEqual(calls, [{ from: 2 }, { from: 2 }, { from: 1 }])
    }))

  it.effect("an invalid capacity fails every load with InvalidArgument", () =>
    Effect.gen(function*() {
      for (const capacity of [0, -1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(Repository.make(Tally, { cache: { capacity } }).load("a"))
        assert.instanceOf(error, EventStore.InvalidArgument)
        const handled = yield* Effect.flip(
          CommandHandler.make(Tally, { cache: { capacity } })("a", new Add({ values: [1] }))
        )
        assert.instanceOf(handled, EventStore.InvalidArgument)
      }
      assert.strictEqual(yield* EventStore.EventStore.pipe(Effect.flatMap((s) => s.streamVersion(streamOf("a")))), 0)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("CommandHandler with a cache: a conflict reloads only the tail", () =>
    Effect.gen(function*() {
      const { calls, store: inner } = yield* recording
      let intrude = false
      // another writer comes in between the handler's load and its append, once
      const store = EventStore.make({
        ...inner,
        append: (streamId, events, expected) =>
          intrude
            ? Effect.zipRight(
              Effect.sync(() => intrude = false).pipe(
                Effect.zipRight(inner.append(streamId, encoded([100]), ExpectedVersion.Any))
              ),
              inner.append(streamId, events, expected)
            )
            : inner.append(streamId, events, expected)
      })
      const handle = CommandHandler.make(Tally, { cache: { capacity: 10 } })
      yield* Effect.gen(function*() {
        yield* handle("a", new Add({ values: [1, 2] }))
        yield* handle("a", new Add({ values: [3] })) // its load (at version 2) is cached
        intrude = true
        calls.length = 0
        const result = yield* handle("a", new Add({ values: [4] }))
        assert.deepStrictEqual(result.state, [1, 2, 3, 100, 4])
        assert.strictEqual(result.version, 5)
      }).pipe(Effect.provideService(EventStore.EventStore, store))
      const seen = [...calls]
      assert.deepStrictEqual((yield* plain.load("a").pipe(Effect.provideService(EventStore.EventStore, inner))).state, [
        1,
        2,
        3,
        100,
        4
      ])
      // the load before the append reads from the version the last command loaded, the load after the conflict
      // from the version that load cached: only tails
      assert.deepStrictEqual(seen, [{ from: 2 }, { from: 3 }])
    }))

  it.effect("snapshots still work with the cache", () =>
    Effect.gen(function*() {
      const cached = Repository.make(SnapshottedTally, { cache: { capacity: 10 } })
      const plainSnapshotted = Repository.make(SnapshottedTally)
      const handle = CommandHandler.make(SnapshottedTally, { cache: { capacity: 10 } })
      for (let i = 1; i <= 7; i++) {
        yield* handle("a", new Add({ values: [i] }))
        const a = yield* cached.load("a")
        const b = yield* plainSnapshotted.load("a")
        assert.deepStrictEqual([a.state, a.version], [b.state, b.version])
      }
      const snapshots = yield* SnapshotStore.SnapshotStore
      // the snapshot policy still saves (from the handler's appends and the cached loads)
      yield* Effect.yieldNow()
      const latest = yield* snapshots.load(streamOf("a"))
      assert.isTrue(latest._tag === "Some" && latest.value.version >= 6)
      yield* otherDelete("a")
      yield* otherAppend("a", [9])
      assert.deepStrictEqual((yield* cached.load("a")).state, [9])
    }).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  const op = FastCheck.oneof(
    FastCheck.record({
      _tag: FastCheck.constant("append" as const),
      id: FastCheck.constantFrom("a", "b"),
      by: FastCheck.constantFrom("repository" as const, "handler" as const, "other" as const),
      values: FastCheck.array(FastCheck.integer({ min: 0, max: 99 }), { minLength: 1, maxLength: 3 })
    }),
    FastCheck.record({
      _tag: FastCheck.constant("delete" as const),
      id: FastCheck.constantFrom("a", "b"),
      by: FastCheck.constantFrom("repository" as const, "other" as const)
    }),
    FastCheck.record({ _tag: FastCheck.constant("load" as const), id: FastCheck.constantFrom("a", "b") }),
    FastCheck.record({
      _tag: FastCheck.constant("loadAt" as const),
      id: FastCheck.constantFrom("a", "b"),
      version: FastCheck.integer({ min: 1, max: 8 })
    })
  )

  it.effect.prop(
    "cached and uncached loads give the same states over any interleaving of appends, deletes and re-creations",
    [FastCheck.array(op, { maxLength: 40 }), FastCheck.constantFrom(1, 2, 100)],
    ([ops, capacity]) =>
      Effect.gen(function*() {
        const cached = Repository.make(Tally, { cache: { capacity } })
        const handle = CommandHandler.make(Tally, { cache: { capacity } })
        for (const o of ops) {
          switch (o._tag) {
            case "append":
              if (o.by === "other") yield* otherAppend(o.id, o.values)
              else if (o.by === "repository") {
                yield* cached.append(o.id, o.values.map((n) => new Added({ n })), ExpectedVersion.Any)
              } else {
                const result = yield* handle(o.id, new Add({ values: o.values }))
                const expected = yield* plain.loadOrInitial(o.id)
                assert.deepStrictEqual([result.state, result.version], [expected.state, expected.version])
              }
              break
            case "delete":
              yield* o.by === "other" ? otherDelete(o.id) : cached.delete(o.id)
              break
            case "load":
              yield* same(cached, o.id)
              break
            case "loadAt": {
              const expected = yield* Effect.either(plain.loadAt(o.id, { version: o.version }))
              const actual = yield* Effect.either(cached.loadAt(o.id, { version: o.version }))
              assert.deepStrictEqual(
                Either.map(actual, (l) => [l.state, l.version]),
                Either.map(expected, (l) => [l.state, l.version])
              )
            }
          }
        }
        yield* same(cached, "a")
        yield* same(cached, "b")
        // the handler's cache too: one more command on each stream folds from what it cached
        for (const id of ["a", "b"]) {
          const result = yield* handle(id, new Add({ values: [1] }))
          const expected = yield* plain.loadOrInitial(id)
          assert.deepStrictEqual([result.state, result.version], [expected.state, expected.version])
        }
      }).pipe(Effect.provide(InMemoryEventStore.layer)),
    { fastCheck: { numRuns: 200 } }
  )
})
