/**
 * The typed layer (Repository, CommandHandler, snapshots, metadata, schema evolution) on PostgreSQL: the same
 * behaviour as on the in-memory store (packages/core/test), with real rows.
 */
import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  Repository,
  SnapshotStore,
  StreamId
} from "@effect-eventsourcing/core"
import { PostgresEventStore, PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import { assert, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Option, Schedule, Schema, Stream } from "effect"
import { freshDatabase } from "./utils.js"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  // v1 rows stored the amount as a string
  amount: Schema.Union(Schema.Number, Schema.NumberFromString)
}) {}
// v1 called it MoneyAdded
const MoneyAdded = Schema.transform(
  Schema.TaggedStruct("MoneyAdded", { value: Schema.Number }),
  Schema.typeSchema(Deposited),
  {
    strict: true,
    decode: (old) => new Deposited({ amount: old.value }),
    encode: (deposited) => ({ _tag: "MoneyAdded" as const, value: deposited.amount })
  }
)

const Counter = Aggregate.make({
  name: "counter",
  events: Schema.Union(Deposited, MoneyAdded),
  state: Schema.Struct({ total: Schema.Number }),
  initialState: { total: 0 },
  retired: ["Audited"],
  snapshotEvery: 10,
  decide: (command: { readonly amount: number }, _state) => Either.right([new Deposited({ amount: command.amount })]),
  evolve: (state, event) => ({ total: state.total + event.amount })
})

const counters = Repository.make(Counter)
const handle = CommandHandler.make(Counter, { retry: Schedule.recurs(20) })
const streamOf = (id: string) => StreamId.unsafeMake("counter", id)

/** The store's reads, recorded (`from` of every stream read, `read` or `readForFold`). */
const reads: Array<number | undefined> = []
const SpiedStore = Layer.effect(
  EventStore.EventStore,
  Effect.map(PostgresEventStore.make(), (store): EventStore.EventStore["Type"] => ({
    ...store,
    read: (streamId, options) => {
      reads.push(options?.from)
      return store.read(streamId, options)
    },
    readForFold: (streamId, options) => {
      reads.push(options?.from)
      return store.readForFold(streamId, options)
    }
  }))
).pipe(Layer.provide(Layer.scope))

const Database = freshDatabase("repository")
const Stores = Layer.mergeAll(SpiedStore, PostgresSnapshotStore.layer()).pipe(Layer.provideMerge(Database.layer))

const awaitSnapshot = (id: string, version: number) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (snapshots) =>
    snapshots.load(streamOf(id)).pipe(
      Effect.filterOrFail((s) => Option.isSome(s) && s.value.version >= version),
      Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.intersect(Schedule.recurs(300))))
    ))

layer(Stores, { excludeTestServices: true, timeout: "60 seconds" })("Repository on PostgreSQL", (it) => {
  it.effect("snapshots are saved every N events and loads read only from the snapshot on", () =>
    Effect.gen(function*() {
      yield* Effect.repeatN(handle("a", { amount: 1 }), 24)
      yield* awaitSnapshot("a", 20)
      reads.length = 0
      const loaded = yield* counters.load("a")
      assert.deepStrictEqual([loaded.version, loaded.state.total], [25, 25])
      assert.deepStrictEqual(reads, [20])
      // time travel bypasses the snapshot
      reads.length = 0
      const past = yield* counters.loadAt("a", { version: 7 })
      assert.deepStrictEqual([past.version, past.state.total], [7, 7])
      assert.deepStrictEqual(reads, [1])
    }))

  it.effect("a deleted and re-created stream does not trust the old snapshot; Repository.delete removes it", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* Effect.repeatN(handle("b", { amount: 100 }), 11)
      yield* awaitSnapshot("b", 10)
      yield* store.delete(streamOf("b")) // the store's delete removes the snapshot in the same transaction
      const snapshots = yield* SnapshotStore.SnapshotStore
      assert(Option.isNone(yield* snapshots.load(streamOf("b"))))
      yield* Effect.repeatN(handle("b", { amount: 1 }), 11)
      assert.deepStrictEqual((yield* counters.load("b")).state.total, 12)
      yield* awaitSnapshot("b", 10)
      yield* counters.delete("b")
      assert.isFalse(yield* counters.exists("b"))
      assert(Option.isNone(yield* snapshots.load(streamOf("b"))))
    }))

  it.effect("ambient and per-handler metadata are stored with every event", () =>
    Effect.gen(function*() {
      const withMeta = CommandHandler.make(Counter, { metadata: { source: "test" } })
      yield* withMeta("c", { amount: 1 }).pipe(
        CommandHandler.withMetadata({ correlationId: "corr-1", causationId: "cause-1" })
      )
      const store = yield* EventStore.EventStore
      const [event] = Chunk.toArray(yield* Stream.runCollect(store.read(streamOf("c"))))
      assert(event !== undefined)
      assert.strictEqual(event.metadata.correlationId, "corr-1")
      assert.strictEqual(event.metadata.causationId, "cause-1")
      assert.strictEqual(event.metadata.source, "test")
      assert.isString(event.metadata.traceId)
    }))

  it.effect("rows written by an older schema decode into the new shape; retired types are skipped", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(streamOf("d"), [
        { type: "Deposited", data: { amount: "10" } },
        { type: "MoneyAdded", data: { value: 5 } },
        { type: "Audited", data: { by: "bot" } }
      ], ExpectedVersion.NoStream)
      const loaded = yield* counters.load("d")
      assert.deepStrictEqual([loaded.version, loaded.state.total], [3, 15])
      const stored = yield* Stream.runCollect(store.read(streamOf("d"), { from: 2, to: 2 }))
      assert.deepStrictEqual(Chunk.toArray(stored).map((e) => [e.type, e.data]), [["MoneyAdded", { value: 5 }]])
      yield* store.append(streamOf("e"), [{ type: "Deposited", data: { amount: "ten" } }], ExpectedVersion.NoStream)
      const error = yield* Effect.flip(counters.load("e"))
      assert(error instanceof EventStore.EventDecodeError)
      assert.deepStrictEqual([error.streamId, error.version, error.type], ["counter-e", 1, "Deposited"])
    }))
})
