import {
  Aggregate,
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Layer, Ref, Schedule, Schema, Stream } from "effect"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Number }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Number }) {}

const Account = Aggregate.make({
  name: "account",
  events: Schema.Union(Deposited, Withdrawn),
  initialState: 0,
  decide: (command: { readonly amount: number }) => Either.right([new Deposited({ amount: command.amount })]),
  evolve: (state, event) => event._tag === "Deposited" ? state + event.amount : state - event.amount,
  retired: ["Audited"]
})

const acc = (id: string) => StreamId.unsafeMake("account", id)

class Rejected extends Schema.TaggedError<Rejected>()("Rejected", { reason: Schema.String }) {}

describe("Projection", () => {
  it.effect("fromAggregate decodes through the aggregate's Schema and skips other categories", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<ReadonlyArray<string>>([])
      const projection = Projection.fromAggregate(Account, {
        name: "balances",
        handle: (event, recorded) =>
          Ref.update(seen, (all) => [...all, `${recorded.streamId}:${event._tag}:${event.amount}`])
      })
      const store = yield* InMemoryEventStore.make()
      yield* store.append(acc("1"), [{ type: "Deposited", data: { amount: 5 } }], ExpectedVersion.NoStream)
      yield* store.append(
        StreamId.unsafeMake("other", "1"),
        [{ type: "Deposited", data: { x: 1 } }],
        ExpectedVersion.Any
      )
      yield* store.append(
        acc("1"),
        [{ type: "Audited", data: {} }, { type: "Withdrawn", data: { amount: 2 } }],
        ExpectedVersion.Exact(1)
      )
      const events = yield* Stream.runCollect(store.readAll())
      yield* Effect.forEach(events, projection.handle)
      assert.deepStrictEqual(yield* Ref.get(seen), ["account-1:Deposited:5", "account-1:Withdrawn:2"])
    }))

  it.effect("fromAggregate fails with EventDecodeError on an undecodable event instead of skipping it", () =>
    Effect.gen(function*() {
      const projection = Projection.fromAggregate(Account, { name: "strict", handle: () => Effect.void })
      const store = yield* InMemoryEventStore.make()
      yield* store.append(acc("1"), [{ type: "Deposited", data: { amount: "lots" } }], ExpectedVersion.NoStream)
      const [event] = Chunk.toArray(yield* Stream.runCollect(store.readAll()))
      const error = yield* Effect.flip(projection.handle(event!))
      assert(error instanceof EventStore.EventDecodeError)
      assert.strictEqual(error.version, 1)
      assert.strictEqual(error.type, "Deposited")
    }))

  it.effect("an inline projection runs in the commit; its failure rejects the append and stores nothing", () =>
    Effect.gen(function*() {
      const balances = new Map<string, number>()
      const inline = Projection.fromAggregate(Account, {
        name: "inline-balances",
        handle: (event, recorded) => {
          const next = (balances.get(recorded.streamId) ?? 0) +
            (event._tag === "Deposited" ? event.amount : -event.amount)
          return next < 0
            ? Effect.fail(new Rejected({ reason: "negative balance" }))
            : Effect.sync(() => void balances.set(recorded.streamId, next))
        }
      })
      const store = yield* InMemoryEventStore.make({ inline: [inline] })
      yield* store.append(acc("1"), [{ type: "Deposited", data: { amount: 10 } }], ExpectedVersion.NoStream)
      assert.strictEqual(balances.get("account-1"), 10)
      const error = yield* Effect.flip(
        store.append(acc("1"), [{ type: "Withdrawn", data: { amount: 30 } }], ExpectedVersion.Exact(1))
      )
      assert.strictEqual(error._tag, "EventStoreError")
      assert.strictEqual(yield* store.streamVersion(acc("1")), 1)
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 1)
      // the same version is free again after the rejected append
      yield* store.append(acc("1"), [{ type: "Withdrawn", data: { amount: 3 } }], ExpectedVersion.Exact(1))
      assert.strictEqual(balances.get("account-1"), 7)
      // an undecodable event is rejected by the inline projection too
      const bad = yield* Effect.flip(
        store.append(acc("2"), [{ type: "Deposited", data: { amount: "x" } }], ExpectedVersion.NoStream)
      )
      assert.strictEqual(bad._tag, "EventStoreError")
      assert.strictEqual(yield* store.streamVersion(acc("2")), 0)
    }))

  it.effect("onDelete propagates a stream deletion to the read side", () =>
    Effect.gen(function*() {
      const balances = new Map<string, number>()
      const inline = Projection.make({
        name: "deletable",
        handle: (event) =>
          Effect.sync(() =>
            void balances.set(
              event.streamId,
              (balances.get(event.streamId) ?? 0) + (event.data as { amount: number }).amount
            )
          ),
        onDelete: (streamId) => Effect.sync(() => void balances.delete(streamId))
      })
      const store = yield* InMemoryEventStore.make({ inline: [inline] })
      yield* store.append(acc("1"), [{ type: "Deposited", data: { amount: 1 } }], ExpectedVersion.NoStream)
      yield* store.append(acc("2"), [{ type: "Deposited", data: { amount: 2 } }], ExpectedVersion.NoStream)
      yield* store.delete(acc("1"))
      assert.deepStrictEqual([...balances.entries()], [["account-2", 2]])
      assert.strictEqual(yield* store.streamVersion(acc("1")), 0)
    }))

  it.scoped("a projection of an aggregate runs as a subscription, stopping on an undecodable event", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const total = yield* Ref.make(0)
      const projection = Projection.fromAggregate(Account, {
        name: "total",
        handle: (event) => Ref.update(total, (n) => n + (event._tag === "Deposited" ? event.amount : -event.amount))
      })
      yield* store.append(acc("1"), [{ type: "Deposited", data: { amount: 4 } }], ExpectedVersion.NoStream)
      const r = yield* store.append(acc("2"), [{ type: "Withdrawn", data: { amount: 1 } }], ExpectedVersion.NoStream)
      const sub = yield* Subscription.forkScoped(projection, {
        filter: { categories: [Account.name] },
        retry: Schedule.recurs(1)
      })
      yield* sub.awaitPosition(r.position)
      assert.strictEqual(yield* Ref.get(total), 3)
      yield* store.append(acc("3"), [{ type: "Withdrawn", data: {} }], ExpectedVersion.NoStream)
      const error = yield* Effect.flip(sub.join)
      assert.strictEqual(error._tag, "EventDecodeError")
      assert.strictEqual(yield* sub.processed, r.position)
    }).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory))))

  it.scoped("a batched projection receives whole batches from a subscription, one-event batches inline", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const batches = yield* Ref.make<ReadonlyArray<ReadonlyArray<number>>>([])
      const projection = Projection.makeBatched({
        name: "batched",
        handleBatch: (events) => Ref.update(batches, (all) => [...all, events.map((e) => e.position)])
      })
      yield* store.append(
        acc("1"),
        Array.from({ length: 5 }, (_, i) => ({ type: "Deposited", data: { amount: i } })),
        ExpectedVersion.NoStream
      )
      const sub = yield* Subscription.forkScoped(projection, { batchSize: 2 })
      yield* sub.awaitPosition(5)
      assert.deepStrictEqual(yield* Ref.get(batches), [[1, 2], [3, 4], [5]])

      const inline = yield* InMemoryEventStore.make({ inline: [projection] })
      yield* Ref.set(batches, [])
      yield* inline.append(acc("2"), [{ type: "Deposited", data: { amount: 1 } }, {
        type: "Deposited",
        data: { amount: 2 }
      }], ExpectedVersion.NoStream)
      assert.deepStrictEqual(yield* Ref.get(batches), [[1], [2]])
    }).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory))))
})
