import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Metrics,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Metric, Option, Ref, Schedule, Schema } from "effect"

const s = (id: string) => StreamId.unsafeMake("metered", id)
const ev = (type: string): EventStore.EventData => ({ type, data: {} })

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

const byStore = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>) => Metric.tagged(metric, "store", "memory")
const bySubscription = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>, name: string) =>
  Metric.tagged(metric, "subscription", name)

// the registry is global: these tests read deltas, one at a time
describe.sequential("Metrics", () => {
  it.effect("appends record their duration, the events committed and the conflicts, tagged store", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const appended0 = (yield* Metric.value(byStore(Metrics.eventsAppended))).count
      const conflicts0 = (yield* Metric.value(byStore(Metrics.appendConflicts))).count
      const durations0 = (yield* Metric.value(byStore(Metrics.appendDuration))).count
      yield* store.append(s("1"), [ev("A"), ev("B")], ExpectedVersion.NoStream)
      yield* store.appendMany([{ streamId: s("2"), events: [ev("C")], expected: ExpectedVersion.NoStream }])
      yield* Effect.flip(store.append(s("1"), [ev("D")], ExpectedVersion.NoStream))
      assert.strictEqual((yield* Metric.value(byStore(Metrics.eventsAppended))).count - appended0, 3)
      assert.strictEqual((yield* Metric.value(byStore(Metrics.appendConflicts))).count - conflicts0, 1)
      assert.strictEqual((yield* Metric.value(byStore(Metrics.appendDuration))).count - durations0, 3)
    }))

  it.scoped("subscriptions record position, lag, entries handled, failures and batch durations, tagged subscription", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      let failures = 1
      const projection = Projection.make({
        name: "metered-subscription",
        handle: () => failures-- > 0 ? Effect.fail(new Boom()) : Effect.void
      })
      yield* store.append(s("1"), [ev("A"), ev("B")], ExpectedVersion.NoStream)
      const last = yield* store.append(s("2"), [ev("C")], ExpectedVersion.NoStream)
      const subscription = yield* Subscription.forkScoped(projection, { retry: Schedule.recurs(3) })
      yield* subscription.awaitPosition(last.position)
      const name = projection.name
      assert.strictEqual((yield* Metric.value(bySubscription(Metrics.subscriptionPosition, name))).value, 3)
      assert.strictEqual((yield* Metric.value(bySubscription(Metrics.eventsHandled, name))).count, 3)
      assert.strictEqual((yield* Metric.value(bySubscription(Metrics.handlerFailures, name))).count, 1)
      // one failed attempt and one committed batch
      assert.strictEqual((yield* Metric.value(bySubscription(Metrics.batchDuration, name))).count, 2)
      const lag = (yield* Metric.value(bySubscription(Metrics.subscriptionLag, name))).value
      assert.isTrue(lag >= 0 && lag < 60, `lag ${lag}`)
      assert.isTrue(Option.isSome(yield* (yield* CheckpointStore.CheckpointStore).load(name)))
    }).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory))))

  it.scoped("subscriptions record their lag in events (head - checkpoint), reading the head at most once a second", () =>
    Effect.gen(function*() {
      const inner = yield* InMemoryEventStore.make()
      const headReads = yield* Ref.make(0)
      const store = EventStore.make({
        ...inner,
        headPosition: Effect.zipRight(Ref.update(headReads, (n) => n + 1), inner.headPosition)
      })
      for (let i = 0; i < 10; i++) yield* store.append(s(`lag-${i}`), [ev("A")], ExpectedVersion.NoStream)
      const gate = yield* Deferred.make<void>()
      const projection = Projection.make({
        name: "metered-lag",
        handle: (event) => event.position > 3 ? Deferred.await(gate) : Effect.void
      })
      const subscription = yield* Subscription.forkScoped(projection, { batchSize: 3 }).pipe(
        Effect.provideService(EventStore.EventStore, store)
      )
      yield* subscription.awaitPosition(3)
      const lag = () =>
        Effect.map(Metric.value(bySubscription(Metrics.subscriptionLagEvents, projection.name)), (g) => g.value)
      // the head is 10, the checkpoint 3
      assert.strictEqual(yield* lag(), 7)
      yield* Deferred.succeed(gate, undefined)
      yield* subscription.awaitPosition(10)
      assert.strictEqual(yield* lag(), 0)
      // four batches, one read of the head (the first batch's; the others came within the second)
      assert.strictEqual(yield* Ref.get(headReads), 1)
    }).pipe(Effect.provide(CheckpointStore.layerMemory)))
})
