import {
  Aggregate,
  CheckpointStore,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  ParkedEvents,
  ProcessManager,
  StreamId,
  TimerStore
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Layer, Option, Ref, Schedule, Schema, Stream } from "effect"

// a counter that refuses to go above 10, and an order whose placement makes the process add its quantity
class Added extends Schema.TaggedClass<Added>()("Added", { n: Schema.Int }) {}
class Add extends Schema.TaggedClass<Add>()("Add", { n: Schema.Int }) {}
class TooMany extends Schema.TaggedError<TooMany>()("TooMany", { max: Schema.Int }) {}
const Counter = Aggregate.make({
  name: "counter",
  events: Added,
  initialState: 0,
  decide: (command: Add, state: number) =>
    state + command.n > 10 ? Either.left(new TooMany({ max: 10 })) : Either.right([new Added({ n: command.n })]),
  evolve: (state, event) => state + event.n
})

class Placed extends Schema.TaggedClass<Placed>()("Placed", { counter: Schema.String, n: Schema.Int }) {}

interface State {
  readonly placed: number
  readonly rejected: ReadonlyArray<string>
  readonly fired: ReadonlyArray<string>
}

const Orders = ProcessManager.make({
  name: "orders",
  events: Schema.Union(Placed, Added),
  correlate: (event, recorded) =>
    event._tag === "Placed"
      ? StreamId.id(recorded.streamId)
      : typeof recorded.metadata.correlationId === "string"
      ? recorded.metadata.correlationId
      : undefined,
  initialState: { placed: 0, rejected: [], fired: [] } as State,
  evolve: (state, input): State => {
    switch (input._tag) {
      case "Placed":
        return { ...state, placed: state.placed + 1 }
      case "CommandRejected":
        return { ...state, rejected: [...state.rejected, `${input.reason} ${JSON.stringify(input.error)}`] }
      case "TimerFired":
        return { ...state, fired: [...state.fired, input.name] }
      default:
        return state
    }
  },
  react: (_state, input) =>
    input._tag === "Placed"
      ? [
        ProcessManager.send(Counter, input.counter, new Add({ n: input.n })),
        ProcessManager.schedule("remind", "1 minute")
      ]
      : []
})

const Stores = Layer.mergeAll(InMemoryEventStore.layer, CheckpointStore.layerMemory, TimerStore.layerMemory)

const place = (order: string, counter: string, n: number) =>
  Effect.flatMap(EventStore.EventStore, (store) =>
    store.append(
      StreamId.unsafeMake("order", order),
      [{ type: "Placed", data: { counter, n } }],
      ExpectedVersion.Any
    ))

/** Runs `self` every 5 ms until `until` holds of its result (at most 5 s). */
const settle = <A, E, R>(self: Effect.Effect<A, E, R>, until: (a: A) => boolean) => {
  const loop: Effect.Effect<A, E, R> = Effect.flatMap(
    self,
    (a) => until(a) ? Effect.succeed(a) : Effect.zipRight(Effect.sleep("5 millis"), loop)
  )
  return Effect.timeout(loop, "5 seconds")
}

describe("ProcessManager", () => {
  it.live("sent commands carry causation, correlation and the process manager's name; the instance is inspectable", () =>
    Effect.gen(function*() {
      yield* ProcessManager.forkScoped(Orders, { timerInterval: "10 millis" })
      const { position } = yield* place("o1", "c1", 3)
      const store = yield* EventStore.EventStore
      const placed = Chunk.unsafeHead(yield* Stream.runCollect(store.readAll({ from: position })))
      const events = yield* settle(
        Stream.runCollect(store.read(StreamId.unsafeMake("counter", "c1"))),
        (chunk) => chunk.length === 1
      )
      const added = Chunk.unsafeHead(events)
      assert.strictEqual(added.metadata.causationId, placed.id)
      assert.strictEqual(added.metadata.correlationId, "o1")
      assert.strictEqual(added.metadata.processManager, "orders")
      const instance = yield* settle(ProcessManager.load(Orders, "o1"), (i) => i.pending === 0 && i.version > 0)
      assert.strictEqual(instance.state.placed, 1)
      // the same event delivered again (a replay from the start) changes nothing
      const handle = CommandHandler.make(Counter)
      assert.strictEqual((yield* handle("c1", new Add({ n: 0 }))).state, 3)
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a domain error reaches react as CommandRejected; nothing is written", () =>
    Effect.gen(function*() {
      yield* ProcessManager.forkScoped(Orders, { timerInterval: "10 millis" })
      yield* place("o2", "c2", 11)
      const instance = yield* settle(ProcessManager.load(Orders, "o2"), (i) => i.state.rejected.length > 0)
      assert.deepStrictEqual(instance.state.rejected, [`TooMany {"max":10,"_tag":"TooMany"}`])
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion(StreamId.unsafeMake("counter", "c2")), 0)
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a scheduled timer fires once, when due", () =>
    Effect.gen(function*() {
      const timers = yield* TimerStore.TimerStore
      yield* ProcessManager.forkScoped(Orders, { timerInterval: "10 millis" })
      yield* place("o3", "c3", 1)
      const scheduled = yield* settle(timers.pending("orders", "o3"), (pending) => pending.length === 1)
      // bring it forward: due now
      yield* timers.markFired(scheduled[0]!.id)
      yield* timers.schedule({ ...scheduled[0]!, id: "00000000-0000-4000-8000-000000000001", dueAt: 0 })
      const instance = yield* settle(ProcessManager.load(Orders, "o3"), (i) => i.state.fired.length > 0)
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual((yield* ProcessManager.load(Orders, "o3")).state.fired, ["remind"])
      assert.deepStrictEqual(instance.state.fired, ["remind"])
      assert.deepStrictEqual(yield* timers.pending("orders", "o3"), [])
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a command that fails with something else than a domain error stops it after the retries", () =>
    Effect.gen(function*() {
      // "" is no aggregate id: InvalidStreamId, a handler failure
      const running = yield* ProcessManager.forkScoped(Orders, {
        timerInterval: "10 millis",
        retry: Schedule.recurs(2)
      })
      yield* place("o4", "", 1)
      const exit = yield* Effect.exit(running.join)
      assert(Exit.isFailure(exit))
      assert.include(String(exit.cause), "InvalidStreamId")
      assert.strictEqual(yield* running.subscription.processed, 0)
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("onFailure park: a dispatch that keeps failing is parked and the process manager moves on", () =>
    Effect.gen(function*() {
      const parked = yield* ParkedEvents.makeMemory
      const running = yield* ProcessManager.forkScoped(Orders, {
        timerInterval: "10 millis",
        retry: Schedule.recurs(1),
        onFailure: "park",
        parked
      })
      // "" is no aggregate id: InvalidStreamId, a handler failure, parked after the retry
      const failing = yield* place("o7", "", 1)
      const { position } = yield* place("o8", "c8", 2)
      yield* running.subscription.awaitPosition(position)
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion(StreamId.unsafeMake("counter", "c8")), 1)
      const list = yield* parked.list({ subscription: "orders" })
      assert.deepStrictEqual(list.map((p) => p.position), [failing.position])
      assert.include(list[0]!.error, "InvalidStreamId")
      assert.strictEqual((yield* running.subscription.status).state, "running")
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a store that is down is retried (not a handler failure): the process manager resumes when it is back", () =>
    Effect.gen(function*() {
      const down = yield* Ref.make(true)
      const inner = yield* InMemoryEventStore.make()
      // the instances' streams cannot be written while the store is "down"
      const flaky = EventStore.make({
        ...inner,
        append: (streamId, events, expected) =>
          Effect.flatMap(Ref.get(down), (isDown) =>
            isDown && StreamId.category(streamId) === "orders"
              ? Effect.fail(new EventStore.EventStoreError({ method: "append", cause: "connection refused" }))
              : inner.append(streamId, events, expected))
      })
      return yield* Effect.gen(function*() {
        const running = yield* ProcessManager.forkScoped(Orders, {
          timerInterval: "10 millis",
          retry: Schedule.recurs(1)
        })
        const { position } = yield* place("o9", "c9", 1)
        yield* settle(running.subscription.status, (status) => status.retries >= 3)
        const during = yield* running.subscription.status
        assert.strictEqual(during.state, "retrying")
        assert.include(String(Option.getOrUndefined(during.lastError)), "connection refused")
        yield* Ref.set(down, false)
        yield* running.subscription.awaitPosition(position)
        assert.strictEqual(yield* inner.streamVersion(StreamId.unsafeMake("counter", "c9")), 1)
        assert.strictEqual((yield* running.subscription.status).state, "running")
      }).pipe(Effect.provideService(EventStore.EventStore, flaky))
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("events it does not react to are skipped; one of its types that does not decode stops it", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const running = yield* ProcessManager.forkScoped(Orders, {
        timerInterval: "10 millis",
        retry: Schedule.recurs(1)
      })
      const { position } = yield* store.append(
        StreamId.unsafeMake("order", "o5"),
        [{ type: "Shipped", data: {} }],
        ExpectedVersion.Any
      )
      yield* running.subscription.awaitPosition(position)
      yield* store.append(
        StreamId.unsafeMake("order", "o6"),
        [{ type: "Placed", data: { n: "x" } }],
        ExpectedVersion.Any
      )
      const error = yield* Effect.flip(running.join)
      assert.strictEqual(error._tag, "EventDecodeError")
    }).pipe(Effect.scoped, Effect.provide(Stores)))
})

describe("TimerStore.makeMemory", () => {
  it.effect("schedule keeps the first of an id; due is ordered and bounded; markFired and pending", () =>
    Effect.gen(function*() {
      const timers = yield* TimerStore.makeMemory
      const timer = (id: string, dueAt: number, correlationId = "x") => ({
        id,
        processManager: "p",
        correlationId,
        name: id,
        dueAt
      })
      yield* timers.schedule(timer("b", 20))
      yield* timers.schedule(timer("a", 10))
      yield* timers.schedule(timer("a", 5))
      yield* timers.schedule(timer("c", 30, "y"))
      assert.deepStrictEqual((yield* timers.due("p", 25, 10)).map((t) => [t.id, t.dueAt]), [["a", 10], ["b", 20]])
      assert.deepStrictEqual((yield* timers.due("p", 25, 1)).map((t) => t.id), ["a"])
      assert.deepStrictEqual(yield* timers.due("q", 100, 10), [])
      yield* timers.markFired("a")
      assert.deepStrictEqual((yield* timers.due("p", 100, 10)).map((t) => t.id), ["b", "c"])
      assert.deepStrictEqual((yield* timers.pending("p", "x")).map((t) => t.id), ["b"])
      yield* timers.schedule(timer("a", 1))
      assert.deepStrictEqual((yield* timers.due("p", 100, 10)).map((t) => t.id), ["b", "c"])
    }))
})
