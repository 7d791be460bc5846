import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (type: string): EventStore.EventData => ({ type, data: {} })

const Stores = Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory)

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

/** The position of the last entry of the global log (tombstones included). */
const head = Effect.flatMap(EventStore.EventStore, (store) =>
  Effect.map(
    Stream.runCollect(store.readAll({ deletions: true })),
    (entries) => Option.getOrElse(Option.map(Chunk.last(entries), (e) => e.position), () => 0)
  ))

/** A projection writing what it sees into `log`. */
const recording = (name: string, log: Ref.Ref<ReadonlyArray<string>>, options?: { readonly failDeletes?: number }) => {
  let failures = options?.failDeletes ?? 0
  return Projection.make({
    name,
    handle: (event) => Ref.update(log, (all) => [...all, `${event.type} ${event.streamId}`]),
    onDelete: (streamId) =>
      failures-- > 0 ? Effect.fail(new Boom()) : Ref.update(log, (all) => [...all, `deleted ${streamId}`])
  })
}

describe("Tombstones", () => {
  it.effect("readAll and subscribe are typed by the deletions option", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      // without the option: RecordedEvent (a type error to ask for a tombstone's `_tag`); with it: LogEntry
      const events = yield* Stream.runCollect(store.readAll())
      const entries = yield* Stream.runCollect(EventStore.readAll({ deletions: true }))
      assert.deepStrictEqual(Chunk.toArray(events).map((e) => e.type), [])
      const [tombstone] = Chunk.toArray(entries)
      assert.isTrue(tombstone !== undefined && EventStore.isTombstone(tombstone))
      if (tombstone !== undefined && EventStore.isTombstone(tombstone)) {
        assert.deepStrictEqual([tombstone.streamId, tombstone.version, tombstone.position], [s("1"), 1, 2])
      }
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.scoped("a subscription runs onDelete at the tombstone, in order with the events, then moves its checkpoint", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const subscription = yield* Subscription.forkScoped(recording("live", log))
      yield* store.append(s("1"), [ev("A"), ev("B")], ExpectedVersion.NoStream)
      yield* subscription.awaitPosition(2)
      yield* store.delete(s("1"))
      const tombstone = yield* head
      yield* subscription.awaitPosition(tombstone)
      assert.deepStrictEqual(yield* Ref.get(log), ["A acc-1", "B acc-1", "deleted acc-1"])
      assert.deepStrictEqual(yield* checkpoints.load("live"), Option.some(3))
      const after = yield* store.append(s("2"), [ev("C")], ExpectedVersion.NoStream)
      yield* subscription.awaitPosition(after.position)
      assert.deepStrictEqual(yield* Ref.get(log), ["A acc-1", "B acc-1", "deleted acc-1", "C acc-2"])
    }).pipe(Effect.provide(Stores)))

  it.scoped("catching up, batches are split around a tombstone (handleBatch gets the runs of events)", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.append(s("2"), [ev("B"), ev("C")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      const last = yield* store.append(s("3"), [ev("D"), ev("E")], ExpectedVersion.NoStream)
      const calls: Array<string> = []
      const batched = Projection.makeBatched({
        name: "batched",
        handleBatch: (events) => Effect.sync(() => void calls.push(events.map((e) => e.type).join(""))),
        onDelete: (streamId) => Effect.sync(() => void calls.push(`deleted ${streamId}`))
      })
      const subscription = yield* Subscription.forkScoped(batched)
      yield* subscription.awaitPosition(last.position)
      // A (position 1) was deleted before the subscription read it: B C, the tombstone, D E
      assert.deepStrictEqual(calls, ["BC", "deleted acc-1", "DE"])
    }).pipe(Effect.provide(Stores)))

  it.scoped("a failing onDelete is retried and the checkpoint stays before the tombstone until it succeeds", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      const subscription = yield* Subscription.forkScoped(recording("retried", log, { failDeletes: 2 }), {
        retry: Schedule.recurs(5)
      })
      yield* subscription.awaitPosition(2)
      // position 1 was deleted; onDelete failed twice, then ran once
      assert.deepStrictEqual(yield* Ref.get(log), ["deleted acc-1"])
    }).pipe(Effect.provide(Stores)))

  it.scoped("when onDelete gives up, the subscription stops without passing the tombstone", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.append(s("2"), [ev("B")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      const subscription = yield* Subscription.forkScoped(recording("stuck", log, { failDeletes: 99 }), {
        retry: Schedule.recurs(1),
        batchSize: 1
      })
      const error = yield* Effect.flip(subscription.join)
      assert.instanceOf(error, Boom)
      assert.deepStrictEqual(yield* checkpoints.load("stuck"), Option.some(2))
      assert.deepStrictEqual(yield* Ref.get(log), ["B acc-2"])
    }).pipe(Effect.provide(Stores)))

  it.scoped("a projection without onDelete never sees tombstones", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const seen: Array<unknown> = []
      const plain = Projection.make({ name: "plain", handle: (event) => Effect.sync(() => void seen.push(event)) })
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      const last = yield* store.append(s("2"), [ev("B")], ExpectedVersion.NoStream)
      const subscription = yield* Subscription.forkScoped(plain)
      yield* subscription.awaitPosition(last.position)
      assert.deepStrictEqual(seen.map((e) => (e as EventStore.RecordedEvent).type), ["B"])
    }).pipe(Effect.provide(Stores)))

  it.effect("an inline projection's onDelete runs once per deletion (in the delete, not again for the tombstone)", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const store = yield* InMemoryEventStore.make({ inline: [recording("inline", log)] })
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      yield* store.delete(s("1"))
      yield* store.append(s("2"), [ev("B")], ExpectedVersion.NoStream)
      assert.deepStrictEqual(yield* Ref.get(log), ["A acc-1", "deleted acc-1", "B acc-2"])
    }))

  it.effect("a held delete: the stream stays readable and the tombstone invisible until release; rollback deletes nothing", () =>
    Effect.gen(function*() {
      const { control, store } = yield* InMemoryEventStore.makeWithControl()
      yield* store.append(s("1"), [ev("A")], ExpectedVersion.NoStream)
      const held = yield* control.holdNextDelete
      const deleting = yield* Effect.fork(Effect.either(store.delete(s("1"))))
      assert.deepStrictEqual(yield* held.reserved, [2])
      yield* store.append(s("2"), [ev("B")], ExpectedVersion.NoStream)
      const during = yield* Stream.runCollect(store.readAll({ deletions: true }))
      assert.deepStrictEqual(Chunk.toArray(during).map((e) => e.position), [1])
      yield* held.rollback
      const result = yield* deleting.await
      assert.isTrue(result._tag === "Success" && result.value._tag === "Left")
      assert.strictEqual(yield* store.streamVersion(s("1")), 1)
      const after = yield* Stream.runCollect(store.readAll({ deletions: true }))
      assert.deepStrictEqual(Chunk.toArray(after).map((e) => e.position), [1, 3])
    }))
})
