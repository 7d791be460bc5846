/**
 * The aggregate state cache of `Repository` / `CommandHandler` on PostgreSQL: cached loads give what uncached loads
 * give, whatever another process (a second store on the same database) does meanwhile: appends, deletes and
 * re-creations, and appends rolled back.
 */
import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { assert, layer } from "@effect/vitest"
import { Context, Effect, Either, FastCheck, Layer, Schema } from "effect"
import { freshDatabase } from "./utils.js"

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

/** Another process: a store of its own on the same database (never seen by the caches of this one). */
class Other extends Context.Tag("test/Other")<Other, EventStore.EventStore.Service>() {}

const Database = freshDatabase("aggregate_cache")
const Stores = Layer.mergeAll(
  PostgresEventStore.layer(),
  Layer.scoped(Other, PostgresEventStore.make())
).pipe(Layer.provideMerge(Database.layer))

const plain = Repository.make(Tally)
const streamOf = (id: string) => StreamId.unsafeMake("tally", id)
const encoded = (values: ReadonlyArray<number>) => values.map((n) => ({ type: "Added", data: { n } }))
const otherAppend = (id: string, values: ReadonlyArray<number>) =>
  Effect.flatMap(Other, (other) => other.append(streamOf(id), encoded(values), ExpectedVersion.Any))
const otherDelete = (id: string) => Effect.flatMap(Other, (other) => other.delete(streamOf(id)))

const same = <S, C, Ev, E>(cached: Repository.Repository<S, C, Ev, E>, id: string) =>
  Effect.gen(function*() {
    const expected = yield* plain.loadOrInitial(id)
    const actual = yield* cached.loadOrInitial(id)
    assert.deepStrictEqual(actual.state, expected.state as unknown as S)
    assert.strictEqual(actual.version, expected.version)
    return actual
  })

let runs = 0

layer(Stores, { excludeTestServices: true, timeout: "120 seconds" })("aggregate state cache on PostgreSQL", (it) => {
  it.effect("appends, deletes and re-creations by another process are seen", () =>
    Effect.gen(function*() {
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      for (const id of ["longer", "shorter", "same", "gone", "grows"]) {
        yield* otherAppend(id, [1, 2, 3])
        yield* same(cached, id)
      }
      yield* otherAppend("grows", [4])
      assert.deepStrictEqual((yield* same(cached, "grows")).state, [1, 2, 3, 4])
      for (const id of ["longer", "shorter", "same", "gone"]) yield* otherDelete(id)
      yield* otherAppend("longer", [7, 8, 9, 10, 11])
      yield* otherAppend("shorter", [7])
      yield* otherAppend("same", [7, 8, 9])
      assert.deepStrictEqual((yield* same(cached, "longer")).state, [7, 8, 9, 10, 11])
      assert.deepStrictEqual((yield* same(cached, "shorter")).state, [7])
      assert.deepStrictEqual((yield* same(cached, "same")).state, [7, 8, 9])
      assert.strictEqual((yield* same(cached, "gone")).version, 0)
      assert.deepStrictEqual((yield* cached.loadAt("longer", { version: 2 })).state, [7, 8])
    }))

  it.effect("a state cached inside a transaction that rolls back is not served afterwards", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const cached = Repository.make(Tally, { cache: { capacity: 10 } })
      yield* otherAppend("rb", [1])
      yield* same(cached, "rb")
      // appended and loaded (so cached at version 2) in the lock's transaction, which then fails: rolled back
      const failed = yield* Effect.flip(store.withLock(
        streamOf("rb"),
        Effect.gen(function*() {
          yield* cached.append("rb", [new Added({ n: 2 })], ExpectedVersion.Exact(1))
          assert.deepStrictEqual((yield* cached.load("rb")).state, [1, 2])
          return yield* Effect.fail("abort" as const)
        })
      ))
      assert.strictEqual(failed, "abort")
      // another version 2 (another event at another position) from another process, before any load
      yield* otherAppend("rb", [20, 30])
      assert.deepStrictEqual((yield* same(cached, "rb")).state, [1, 20, 30])
    }))

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
    FastCheck.record({ _tag: FastCheck.constant("load" as const), id: FastCheck.constantFrom("a", "b") })
  )

  it.effect.prop(
    "cached and uncached loads give the same states over any interleaving of appends, deletes and re-creations",
    [FastCheck.array(op, { maxLength: 20 }), FastCheck.constantFrom(1, 100)],
    ([ops, capacity]) =>
      Effect.gen(function*() {
        // streams of this run only (the database is shared by the runs)
        const run = ++runs
        const idOf = (id: string) => `${run}_${id}`
        const cached = Repository.make(Tally, { cache: { capacity } })
        const handle = CommandHandler.make(Tally, { cache: { capacity } })
        for (const o of ops) {
          const id = idOf(o.id)
          switch (o._tag) {
            case "append":
              if (o.by === "other") yield* otherAppend(id, o.values)
              else if (o.by === "repository") {
                yield* cached.append(id, o.values.map((n) => new Added({ n })), ExpectedVersion.Any)
              } else {
                const result = yield* handle(id, new Add({ values: o.values }))
                const expected = yield* plain.loadOrInitial(id)
                assert.deepStrictEqual([result.state, result.version], [expected.state, expected.version])
              }
              break
            case "delete":
              yield* o.by === "other" ? otherDelete(id) : cached.delete(id)
              break
            case "load":
              yield* same(cached, id)
          }
        }
        for (const id of ["a", "b"].map(idOf)) {
          yield* same(cached, id)
          const result = yield* handle(id, new Add({ values: [1] }))
          const expected = yield* plain.loadOrInitial(id)
          assert.deepStrictEqual([result.state, result.version], [expected.state, expected.version])
        }
      }),
    { fastCheck: { numRuns: 50 }, timeout: 120_000 }
  )
})
