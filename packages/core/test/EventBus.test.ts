import {
  CheckpointStore,
  EventBus,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Queue, Scope, Stream } from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

describe("EventBus", () => {
  it.scoped("publishes committed events in global order, never before their commit is visible", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const control = yield* InMemoryEventStore.Control
      const checkpoints = yield* CheckpointStore.makeMemory
      const context = yield* Layer.build(EventBus.layer({ checkpoints }))
      const bus = yield* Effect.provide(EventBus.EventBus, context)
      const inbox = yield* bus.subscribe
      const held = yield* control.holdNextCommit
      const slow = yield* Effect.fork(store.append(s("slow"), [ev(1)], ExpectedVersion.NoStream))
      yield* held.reserved
      yield* store.append(s("fast"), [ev(2), ev(3)], ExpectedVersion.NoStream)
      yield* Effect.yieldNow()
      assert.strictEqual(yield* Queue.size(inbox), 0)
      yield* held.release
      yield* Fiber.join(slow)
      const received = yield* Queue.takeBetween(inbox, 3, 3)
      assert.deepStrictEqual(Chunk.toArray(received).map((e) => e.position), [1, 2, 3])
    }).pipe(Effect.provide(InMemoryEventStore.layerWithControl())))

  it.scoped("resumes publishing from its checkpoint: events appended while it was down are not lost", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.makeMemory
      const busLayer = EventBus.layer({ checkpoints, filter: { categories: ["acc"] } })

      const scope1 = yield* Scope.make()
      const bus1 = yield* Effect.provide(EventBus.EventBus, yield* Layer.buildWithScope(busLayer, scope1))
      const inbox1 = yield* bus1.subscribe.pipe(Scope.extend(scope1))
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      yield* store.append(StreamId.unsafeMake("other", "1"), [ev(9)], ExpectedVersion.NoStream)
      const first = yield* Queue.takeBetween(inbox1, 2, 2)
      assert.deepStrictEqual(Chunk.toArray(first).map((e) => e.position), [1, 2])
      yield* Effect.repeat(checkpoints.load("event-bus"), { until: (p) => p._tag === "Some" && p.value === 2 })
      yield* Scope.close(scope1, Exit.void) // the publisher goes down

      yield* store.append(s("1"), [ev(3)], ExpectedVersion.Exact(2))
      yield* store.append(s("2"), [ev(4)], ExpectedVersion.NoStream)

      const received = yield* Effect.gen(function*() {
        const bus2 = yield* EventBus.EventBus
        return yield* bus2.stream.pipe(Stream.take(2), Stream.runCollect)
      }).pipe(Effect.provide(busLayer))
      // publishing resumes (once the new bus has a subscriber) after the last acknowledged event
      assert.deepStrictEqual(Chunk.toArray(received).map((e) => e.position), [4, 5])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
