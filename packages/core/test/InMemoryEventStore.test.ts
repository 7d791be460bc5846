import { EventStore, ExpectedVersion, InMemoryEventStore, StreamId } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream, Tracer } from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (n: number): EventStore.EventData => ({ type: "Deposited", data: { amount: n } })

describe("InMemoryEventStore", () => {
  it.effect("appends and reads back with versions and positions", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const r1 = yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      assert.deepStrictEqual(r1, { version: 2, position: 2 })
      const r2 = yield* store.append(s("2"), [ev(3)], ExpectedVersion.NoStream)
      assert.deepStrictEqual(r2, { version: 1, position: 3 })
      const events = yield* Stream.runCollect(store.read(s("1")))
      assert.deepStrictEqual(Chunk.toArray(events).map((e) => [e.version, e.position, e.data]), [
        [1, 1, { amount: 1 }],
        [2, 2, { amount: 2 }]
      ])
      assert.strictEqual(yield* store.streamVersion(s("1")), 2)
      assert.strictEqual(yield* store.streamVersion(s("nope")), 0)
    }))

  it.effect("enforces expected versions with the real actual version", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      yield* store.append(s("1"), [ev(1)], ExpectedVersion.NoStream)
      const conflict = yield* Effect.flip(store.append(s("1"), [ev(2)], ExpectedVersion.Exact(0)))
      assert(conflict instanceof EventStore.ConcurrencyConflict)
      assert.strictEqual(conflict._tag, "ConcurrencyConflict")
      assert.strictEqual(conflict.actual, 1)
      const missing = yield* Effect.flip(store.append(s("2"), [ev(2)], ExpectedVersion.StreamExists))
      assert(missing instanceof EventStore.ConcurrencyConflict)
      assert.strictEqual(missing.actual, 0)
    }))

  it.effect("exactly one of N concurrent writers with the same expected version wins", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const results = yield* Effect.all(
        Array.from({ length: 20 }, (_, i) => Effect.either(store.append(s("race"), [ev(i)], ExpectedVersion.NoStream))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Either.isRight).length, 1)
      assert.strictEqual(yield* store.streamVersion(s("race")), 1)
    }))

  it.effect("subscribers never pass a held commit", () =>
    Effect.gen(function*() {
      const { control, store } = yield* InMemoryEventStore.makeWithControl()
      const held = yield* control.holdNextCommit
      const slow = yield* Effect.fork(store.append(s("a"), [ev(1)], ExpectedVersion.Any))
      const positions = yield* held.reserved
      assert.deepStrictEqual(positions, [1])
      yield* store.append(s("b"), [ev(2)], ExpectedVersion.Any)
      // position 2 is committed but 1 is still in flight: readers see nothing yet
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 0)
      const sub = yield* Effect.fork(Stream.runCollect(Stream.take(store.subscribe(), 2)))
      yield* held.release
      yield* Fiber.join(slow)
      const seen = yield* Fiber.join(sub)
      assert.deepStrictEqual(Chunk.toArray(seen).map((e) => e.position), [1, 2])
    }))
})

describe("InMemoryEventStore held commits", () => {
  const positionsOf = (events: Chunk.Chunk<EventStore.RecordedEvent>) => Chunk.toArray(events).map((e) => e.position)

  it.effect("rollback: the held append fails, nothing of it becomes visible, readers skip its hole", () =>
    Effect.gen(function*() {
      const { control, store } = yield* InMemoryEventStore.makeWithControl()
      yield* store.append(s("a"), [ev(0)], ExpectedVersion.NoStream)
      const held = yield* control.holdNextCommit
      const doomed = yield* Effect.fork(store.append(s("a"), [ev(1), ev(2)], ExpectedVersion.Exact(1)))
      assert.deepStrictEqual(yield* held.reserved, [2, 3])
      yield* store.append(s("b"), [ev(3)], ExpectedVersion.NoStream)
      // a subscriber started while the commit is in flight must not pass the hole, then skip it
      const sub = yield* Effect.fork(Stream.runCollect(Stream.take(store.subscribe(), 2)))
      assert.deepStrictEqual(positionsOf(yield* Stream.runCollect(store.readAll())), [1])
      yield* held.rollback
      const error = yield* Effect.flip(Fiber.join(doomed))
      assert(error instanceof EventStore.EventStoreError)
      assert.strictEqual(error.method, "append")
      assert.deepStrictEqual(positionsOf(yield* Fiber.join(sub)), [1, 4])
      assert.deepStrictEqual(positionsOf(yield* Stream.runCollect(store.readAll())), [1, 4])
      assert.deepStrictEqual(Chunk.toArray(yield* Stream.runCollect(store.read(s("a")))).map((e) => e.version), [1])
      // the version was given back: the stream goes on from 1
      assert.strictEqual(yield* store.streamVersion(s("a")), 1)
      assert.deepStrictEqual(yield* store.append(s("a"), [ev(5)], ExpectedVersion.Exact(1)), {
        version: 2,
        position: 5
      })
      // a later release does nothing: the first decision wins
      yield* held.release
      assert.deepStrictEqual(positionsOf(yield* Stream.runCollect(store.readAll())), [1, 4, 5])
    }))

  it.effect("interrupting the held appender rolls it back like rollback", () =>
    Effect.gen(function*() {
      const { control, store } = yield* InMemoryEventStore.makeWithControl()
      const held = yield* control.holdNextCommit
      const appender = yield* Effect.fork(
        store.appendMany([{ streamId: s("x"), events: [ev(1)], expected: ExpectedVersion.NoStream }])
      )
      assert.deepStrictEqual(yield* held.reserved, [1])
      yield* store.append(s("y"), [ev(2)], ExpectedVersion.NoStream)
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 0)
      yield* Fiber.interrupt(appender)
      assert.deepStrictEqual(positionsOf(yield* Stream.runCollect(store.readAll())), [2])
      assert.strictEqual(yield* store.streamVersion(s("x")), 0)
      yield* store.append(s("x"), [ev(3)], ExpectedVersion.NoStream)
      assert.deepStrictEqual(positionsOf(yield* Stream.runCollect(store.readAll())), [2, 3])
    }))

  it.effect("rollback before the append: the next append fails when it reserves", () =>
    Effect.gen(function*() {
      const { control, store } = yield* InMemoryEventStore.makeWithControl()
      const held = yield* control.holdNextCommit
      yield* held.rollback
      const error = yield* Effect.flip(
        store.appendMany([{ streamId: s("p"), events: [ev(1)], expected: ExpectedVersion.Any }])
      )
      assert(error instanceof EventStore.EventStoreError)
      assert.strictEqual(error.method, "appendMany")
      assert.deepStrictEqual(yield* held.reserved, [1])
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 0)
      assert.deepStrictEqual(yield* store.append(s("p"), [ev(2)], ExpectedVersion.NoStream), {
        version: 1,
        position: 2
      })
    }))
})

describe("InMemoryEventStore idempotency and tracing", () => {
  it.effect("re-sending a committed batch with the same ids returns the original result and writes nothing", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const batch: Array<EventStore.EventData> = [
        { id: "7f0c4d1e-0000-4000-8000-000000000001", type: "Deposited", data: { amount: 1 } },
        { id: "7f0c4d1e-0000-4000-8000-000000000002", type: "Deposited", data: { amount: 2 } }
      ]
      const first = yield* store.append(s("idem"), batch, ExpectedVersion.NoStream)
      yield* store.append(s("other"), [ev(9)], ExpectedVersion.NoStream)
      // the retry of a batch whose outcome the caller did not see: same ids, same expectation
      const again = yield* store.append(s("idem"), batch, ExpectedVersion.NoStream)
      assert.deepStrictEqual(again, first)
      assert.strictEqual(yield* store.streamVersion(s("idem")), 2)
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 3)

      const otherContent = yield* Effect.flip(
        store.append(s("idem"), [{ ...batch[0]!, data: { amount: 100 } }, batch[1]!], ExpectedVersion.NoStream)
      )
      assert(otherContent instanceof EventStore.EventIdConflict)
      const otherStream = yield* Effect.flip(store.append(s("elsewhere"), batch, ExpectedVersion.Any))
      assert(otherStream instanceof EventStore.EventIdConflict)
      assert.strictEqual(otherStream.eventId, batch[0]!.id)
      const partial = yield* Effect.flip(store.append(s("idem"), [batch[1]!, ev(3)], ExpectedVersion.Any))
      assert(partial instanceof EventStore.EventIdConflict)
      const fresh = "7f0c4d1e-0000-4000-8000-0000000000ff"
      // a new id before a stored one: the conflict names the stored id
      const mixed = yield* Effect.flip(
        store.append(s("idem"), [{ ...ev(3), id: fresh }, batch[0]!], ExpectedVersion.Any)
      )
      assert(mixed instanceof EventStore.EventIdConflict)
      assert.strictEqual(mixed.eventId, batch[0]!.id)
      assert.strictEqual(mixed.reason, "the batch mixes new events with stored ones")
      const twice = yield* Effect.flip(
        store.append(s("dup"), [{ ...ev(1), id: fresh }, { ...ev(2), id: fresh.toUpperCase() }], ExpectedVersion.Any)
      )
      assert(twice instanceof EventStore.EventIdConflict)
      assert.strictEqual(twice.reason, "the id appears twice in the same append")
      assert.strictEqual(yield* store.streamVersion(s("dup")), 0)
      assert.strictEqual(yield* store.streamVersion(s("elsewhere")), 0)
    }))

  it.effect("data that is not JSON is refused with InvalidArgument and nothing is written", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      const error = yield* Effect.flip(
        store.append(s("bad"), [ev(1), { type: "Deposited", data: { amount: 10n } }], ExpectedVersion.Any)
      )
      assert(error instanceof EventStore.InvalidArgument)
      assert.strictEqual(error.method, "append")
      assert.strictEqual(error.argument, "events[1].data")
      assert.strictEqual(yield* store.streamVersion(s("bad")), 0)
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 0)
    }))

  it.effect("every operation is traced with a span carrying the stream id", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const base = yield* Effect.tracer
      const tracer = Tracer.make({
        span: (...args) => {
          const span = base.span(...args)
          spans.push(span)
          return span
        },
        context: base.context
      })
      const store = yield* InMemoryEventStore.make()
      yield* Effect.gen(function*() {
        yield* store.append(s("traced"), [ev(1)], ExpectedVersion.NoStream)
        yield* store.streamVersion(s("traced"))
        yield* Stream.runDrain(store.read(s("traced")))
      }).pipe(Effect.withTracer(tracer))
      const append = spans.find((span) => span.name === "EventStore.append")
      assert(append !== undefined)
      assert.strictEqual(append.attributes.get("stream.id"), "acc-traced")
      assert.deepStrictEqual(spans.map((span) => span.name), [
        "EventStore.append",
        "EventStore.streamVersion",
        "EventStore.read"
      ])
    }))
})
