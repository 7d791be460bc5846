import {
  CheckpointStore,
  EventStore,
  InMemoryEventStore,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { JetStreamRelay, JetStreamSource, NatsConnection } from "@effect-eventsourcing/nats"
import { assert, describe, it } from "@effect/vitest"
import * as Js from "@nats-io/jetstream"
import { Data, DateTime, Duration, Effect, Exit, Layer, Scope } from "effect"
import { appendEvents, awkwardStreams, Connection, deleteStreamAfter, natsOrWarn, readLog, unique } from "./utils.js"

const nats = await natsOrWarn("JetStreamSource.test.ts")

const withNats = <A, E>(
  self: Effect.Effect<A, E, Scope.Scope | EventStore.EventStore | NatsConnection.NatsConnection>
) => Effect.scoped(self).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, Connection)))

class Flaky extends Data.TaggedError("Flaky")<{ readonly position: number }> {}

interface Row {
  readonly id: string
  readonly version: number
  readonly position: number
  readonly type: string
  readonly data: unknown
  readonly metadata: unknown
  readonly recordedAt: number
}

/**
 * A read model: every event of every stream, as the projection received it (idempotent by event id, as a handler of
 * an at-least-once feed must be). `fails` makes the first deliveries of some events fail.
 */
const readModel = (
  name: string,
  fails: (event: EventStore.RecordedEvent, attempt: number) => boolean = () => false
) => {
  const streams = new Map<string, Array<Row>>()
  const handled: Array<number> = []
  const attempts = new Map<string, number>()
  const projection = Projection.make<Flaky>({
    name,
    handle: (event) =>
      Effect.suspend(() => {
        const attempt = (attempts.get(event.id) ?? 0) + 1
        attempts.set(event.id, attempt)
        if (fails(event, attempt)) return Effect.fail(new Flaky({ position: event.position }))
        const rows = streams.get(event.streamId) ?? []
        if (rows.some((row) => row.id === event.id)) return Effect.void
        rows.push({
          id: event.id,
          version: event.version,
          position: event.position,
          type: event.type,
          data: event.data,
          metadata: event.metadata,
          recordedAt: DateTime.toEpochMillis(event.recordedAt)
        })
        streams.set(event.streamId, rows)
        handled.push(event.position)
        return Effect.void
      })
  })
  const snapshot = () => Object.fromEntries([...streams.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
  const retried = () => [...attempts.values()].filter((n) => n > 1).length
  return { projection, snapshot, handled, retried }
}

describe("JetStreamSource", () => {
  it.live.skipIf(!nats)(
    "a projection fed from JetStream (handler failures, a killed source) equals one fed from the log",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("source")
        yield* deleteStreamAfter(stream)
        yield* appendEvents(awkwardStreams, 120)
        const relay = yield* JetStreamRelay.forkScoped({
          stream,
          prefix,
          checkpoints: yield* CheckpointStore.makeMemory
        })

        const fromLog = readModel("from-log")
        const log = yield* Subscription.forkScoped(fromLog.projection, {
          checkpoints: yield* CheckpointStore.makeMemory
        })
        // every 13th event fails twice before it is handled
        const fromJetStream = readModel("from-jetstream", (event, attempt) => event.position % 13 === 0 && attempt <= 2)
        const options = {
          stream,
          consumer: `c-${stream}`,
          nakDelay: Duration.millis(20),
          // a message in flight when the first source is killed comes again after ackWait
          ackWait: Duration.seconds(2)
        }

        // the first source is killed half-way
        const first = yield* Scope.make()
        const source1 = yield* Scope.extend(JetStreamSource.forkScoped(fromJetStream.projection, options), first)
        yield* source1.awaitPosition(60)
        yield* Scope.close(first, Exit.void)

        yield* appendEvents(awkwardStreams, 80, 120)
        const head = (yield* readLog).at(-1)!.position
        const source = yield* JetStreamSource.forkScoped(fromJetStream.projection, options)
        yield* relay.awaitPosition(head)
        yield* log.awaitPosition(head)
        yield* source.awaitPosition(head)

        assert.deepStrictEqual(fromJetStream.snapshot(), fromLog.snapshot())
        assert.strictEqual(Object.values(fromLog.snapshot()).flat().length, 200)
        for (const rows of Object.values(fromJetStream.snapshot())) {
          assert.deepStrictEqual(rows.map((row) => row.version), rows.map((_, i) => i + 1), "per-stream order")
        }
        // the failed events were delivered again, and nothing overtook them (maxAckPending 1)
        assert.isAbove(fromJetStream.retried(), 10)
        assert.deepStrictEqual(fromJetStream.handled, [...fromJetStream.handled].sort((a, b) => a - b))
        assert.deepStrictEqual(fromJetStream.handled, fromLog.handled)
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "a consumer filtered on a category equals a subscription filtered on it",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("category")
        yield* deleteStreamAfter(stream)
        yield* appendEvents(awkwardStreams, 96)
        const relay = yield* JetStreamRelay.forkScoped({
          stream,
          prefix,
          checkpoints: yield* CheckpointStore.makeMemory
        })
        const fromLog = readModel("orders-log")
        const fromJetStream = readModel("orders-jetstream")
        const log = yield* Subscription.forkScoped(fromLog.projection, {
          checkpoints: yield* CheckpointStore.makeMemory,
          filter: { categories: ["order.v2"] }
        })
        const source = yield* JetStreamSource.forkScoped(fromJetStream.projection, {
          stream,
          filterSubject: JetStreamRelay.categorySubject(prefix, "order.v2"),
          maxAckPending: 20
        })
        assert.strictEqual(source.consumer, "orders-jetstream")
        const last = (yield* readLog).filter((e) => StreamId.category(e.streamId) === "order.v2").at(-1)!.position
        yield* relay.awaitPosition(last)
        yield* log.awaitPosition(last)
        yield* source.awaitPosition(last)
        assert.deepStrictEqual(Object.keys(fromJetStream.snapshot()), [
          StreamId.unsafeMake("order.v2", "a b.*>"),
          StreamId.unsafeMake("order.v2", "x-y")
        ])
        assert.deepStrictEqual(fromJetStream.snapshot(), fromLog.snapshot())
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "refuses an existing consumer with another filter (ConsumerConfigMismatch)",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("mismatch")
        yield* deleteStreamAfter(stream)
        yield* JetStreamRelay.ensureStream({ stream, prefix })
        const model = readModel("mismatch")
        yield* JetStreamSource.forkScoped(model.projection, { stream, filterSubject: `${prefix}.a.>` })
        const error = yield* Effect.flip(
          JetStreamSource.forkScoped(model.projection, { stream, filterSubject: `${prefix}.b.>` })
        )
        assert.strictEqual(error._tag, "ConsumerConfigMismatch")
        assert.strictEqual(error._tag === "ConsumerConfigMismatch" && error.setting, "filter_subject")
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "stops with MessageDecodeError on a message that is not a relayed event",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("decode")
        yield* deleteStreamAfter(stream)
        yield* JetStreamRelay.ensureStream({ stream, prefix })
        const connection = yield* NatsConnection.NatsConnection
        yield* Effect.promise(() => Js.jetstream(connection).publish(`${prefix}.x.y`, "not an event"))
        const model = readModel("decode")
        const source = yield* JetStreamSource.forkScoped(model.projection, { stream })
        const error = yield* Effect.flip(source.join)
        assert.strictEqual(error._tag, "MessageDecodeError")
        assert.strictEqual(error._tag === "MessageDecodeError" && error.sequence, 1)
        assert.deepStrictEqual(model.handled, [])
      }).pipe(withNats)
  )
})
