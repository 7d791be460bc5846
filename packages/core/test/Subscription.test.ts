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
import {
  Chunk,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Ref,
  Schedule,
  Schema,
  Scope,
  Stream,
  TestClock
} from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

const Stores = Layer.merge(InMemoryEventStore.layerWithControl(), CheckpointStore.layerMemory)

class Boom extends Schema.TaggedError<Boom>()("Boom", { position: Schema.Number }) {}

/** A projection recording every position it handles. */
const recorder = (name: string) =>
  Effect.map(Ref.make<ReadonlyArray<number>>([]), (seen) => ({
    seen,
    projection: Projection.make({
      name,
      handle: (event) => Ref.update(seen, (all) => [...all, event.position])
    })
  }))

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const expectType = <T extends true>(_: T) => {}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe("Subscription", () => {
  it.scoped("catches up, then follows live appends, checkpointing after handling", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* recorder("live")
      const sub = yield* Subscription.forkScoped(projection)
      yield* sub.awaitPosition(2)
      const r = yield* store.append(s("2"), [ev(3), ev(4), ev(5)], ExpectedVersion.NoStream)
      yield* sub.awaitPosition(r.position)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3, 4, 5])
      assert.strictEqual(yield* sub.processed, 5)
      assert.deepStrictEqual(yield* checkpoints.load("live"), Option.some(5))
    }).pipe(Effect.provide(Stores)))

  it.scoped("resumes after its checkpoint and honours `from` and `filter`", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      yield* store.append(StreamId.unsafeMake("other", "1"), [ev(4)], ExpectedVersion.NoStream)
      yield* store.append(s("1"), [ev(5)], ExpectedVersion.Exact(3))
      yield* checkpoints.save("resume", 1)
      const { projection, seen } = yield* recorder("resume")
      const sub = yield* Subscription.forkScoped(projection, { filter: { categories: ["acc"] } })
      yield* sub.awaitPosition(5)
      assert.deepStrictEqual(yield* Ref.get(seen), [2, 3, 5])

      const late = yield* recorder("late")
      const sub2 = yield* Subscription.forkScoped(late.projection, { from: 4 })
      yield* sub2.awaitPosition(5)
      assert.deepStrictEqual(yield* Ref.get(late.seen), [4, 5])
    }).pipe(Effect.provide(Stores)))

  it.scoped("delivers gap-free in position order while writers commit out of order", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const control = yield* InMemoryEventStore.Control
      const { projection, seen } = yield* recorder("gaps")
      const sub = yield* Subscription.forkScoped(projection, { batchSize: 3 })
      // 5 commits held in flight, each with 2 events, interleaved with 20 commits that complete at once
      const held: Array<InMemoryEventStore.HeldCommit> = []
      const writers: Array<Fiber.RuntimeFiber<EventStore.AppendResult, EventStore.AppendError>> = []
      for (let i = 0; i < 5; i++) {
        const hold = yield* control.holdNextCommit
        writers.push(yield* Effect.fork(store.append(s(`held-${i}`), [ev(i), ev(i)], ExpectedVersion.NoStream)))
        yield* hold.reserved
        held.push(hold)
        for (let j = 0; j < 4; j++) {
          yield* store.append(s(`fast-${i}-${j}`), [ev(j)], ExpectedVersion.NoStream)
        }
      }
      // positions 1-2 are in flight: nothing after them may be handled yet
      yield* Effect.yieldNow()
      assert.deepStrictEqual(yield* Ref.get(seen), [])
      assert.strictEqual(yield* sub.processed, 0)
      // release the held commits newest first
      for (const hold of held.reverse()) {
        yield* hold.release
        yield* Effect.yieldNow()
      }
      yield* Fiber.joinAll(writers)
      yield* sub.awaitPosition(30)
      assert.deepStrictEqual(yield* Ref.get(seen), range(1, 30))
    }).pipe(Effect.provide(Stores)))

  it.scoped("is at-least-once: a crash between handler and checkpoint redelivers, never loses", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3), ev(4)], ExpectedVersion.NoStream)
      const seen = yield* Ref.make<ReadonlyArray<number>>([])
      const inHandler = yield* Deferred.make<void>()
      const crashing = Projection.make({
        name: "crash",
        handle: (event) =>
          Effect.zipRight(
            Ref.update(seen, (all) => [...all, event.position]),
            event.position === 3 ? Effect.zipRight(Deferred.succeed(inHandler, undefined), Effect.never) : Effect.void
          )
      })
      const scope = yield* Scope.make()
      yield* Subscription.forkScoped(crashing, { batchSize: 1 }).pipe(Scope.extend(scope))
      yield* Deferred.await(inHandler)
      yield* Scope.close(scope, Exit.void) // the "process" dies after handling 3, before its checkpoint
      assert.deepStrictEqual(yield* checkpoints.load("crash"), Option.some(2))

      const restarted = Projection.make({
        name: "crash",
        handle: (event) => Ref.update(seen, (all) => [...all, event.position])
      })
      const sub = yield* Subscription.forkScoped(restarted, { batchSize: 1 })
      yield* sub.awaitPosition(4)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3, 3, 4])
    }).pipe(Effect.provide(Stores)))

  it.scoped("retries a failing batch by the Schedule and does not skip the event", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const attempts = yield* Ref.make(0)
      const seen = yield* Ref.make<ReadonlyArray<number>>([])
      const flaky = Projection.make({
        name: "flaky",
        handle: (event) =>
          event.position === 2
            ? Effect.flatMap(
              Ref.updateAndGet(attempts, (n) => n + 1),
              (n) => n < 3 ? Effect.fail(new Boom({ position: 2 })) : Ref.update(seen, (all) => [...all, 2])
            )
            : Ref.update(seen, (all) => [...all, event.position])
      })
      const sub = yield* Subscription.forkScoped(flaky, { batchSize: 1, retry: Schedule.recurs(5) })
      yield* sub.awaitPosition(3)
      assert.strictEqual(yield* Ref.get(attempts), 3)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3])
    }).pipe(Effect.provide(Stores)))

  it.scoped("rides out infrastructure failures far beyond its retry Schedule: counted, in its status, never stopped", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const memory = yield* CheckpointStore.makeMemory
      // the checkpoint store is "unreachable" for 12 acquisitions, then the first 3 saves of a batch fail too
      const failures = yield* Ref.make({ acquire: 12, save: 3 })
      const down = (method: string) =>
        new CheckpointStore.CheckpointStoreError({ method, cause: new Error("ECONNREFUSED") })
      const checkpoints: CheckpointStore.CheckpointStore.Service = {
        ...memory,
        acquire: (name) =>
          Effect.flatMap(
            Ref.modify(failures, (f) => [f.acquire > 0, { ...f, acquire: f.acquire - 1 }]),
            (fail) =>
              fail ? Effect.fail(down("acquire")) : Effect.map(memory.acquire(name), (lease) => ({
                ...lease,
                save: (position: number) =>
                  Effect.flatMap(
                    Ref.modify(failures, (f) => [f.save > 0, { ...f, save: f.save - 1 }]),
                    (fail) => fail ? Effect.fail(down("save")) : lease.save(position)
                  )
              }))
          )
      }
      const { projection, seen } = yield* recorder("infra")
      // a handler failure would stop it at once: only infrastructure failures may be retried here
      const sub = yield* Subscription.forkScoped(projection, { checkpoints, retry: Schedule.recurs(0) })
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      const waiting = yield* Effect.fork(sub.awaitPosition(2))
      for (let i = 0; i < 120 && (yield* sub.processed) < 2; i++) {
        yield* TestClock.adjust("1 second")
        if (i === 5) {
          const status = yield* sub.status
          assert.strictEqual(status.state, "retrying")
          assert.isAbove(status.retries, 3)
          assert.isTrue(Option.isSome(status.lastError))
        }
      }
      yield* Fiber.join(waiting)
      const status = yield* sub.status
      assert.strictEqual(status.state, "running")
      assert.strictEqual(status.retries, 15)
      const counted = yield* Metric.value(Metric.tagged(Subscription.infrastructureRetries, "subscription", "infra"))
      assert.strictEqual(counted.count, 15)
      // at-least-once with in-memory checkpoints: every event delivered, none skipped, in order
      const positions = yield* Ref.get(seen)
      assert.deepStrictEqual([...new Set(positions)], [1, 2])
      assert.deepStrictEqual(yield* memory.load("infra"), Option.some(2))
    }).pipe(Effect.provide(Stores)))

  it.scoped("stops with the typed handler error when the Schedule gives up", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const attempts = yield* Ref.make(0)
      const broken = Projection.make({
        name: "broken",
        handle: (event) =>
          event.position === 2
            ? Effect.zipRight(Ref.update(attempts, (n) => n + 1), Effect.fail(new Boom({ position: 2 })))
            : Effect.void
      })
      const sub = yield* Subscription.forkScoped(broken, { batchSize: 1, retry: Schedule.recurs(2) })
      const error = yield* Effect.flip(sub.join)
      assert(error instanceof Boom)
      assert.strictEqual(error.position, 2)
      assert.strictEqual(yield* Ref.get(attempts), 3)
      // nothing was skipped: the checkpoint stays before the failing event
      assert.deepStrictEqual(yield* checkpoints.load("broken"), Option.some(1))
      assert.strictEqual(yield* sub.processed, 1)
      // waiting on a stopped subscription fails instead of hanging
      assert.strictEqual((yield* Effect.flip(sub.awaitPosition(3)))._tag, "Boom")
      const status = yield* sub.status
      assert.strictEqual(status.state, "stopped")
      assert.strictEqual(status.retries, 0)
      assert.strictEqual(Option.getOrThrow(status.lastError)._tag, "Boom")
      // and `run` reports the same error
      const again = yield* Effect.flip(Subscription.run(broken, { retry: Schedule.recurs(0) }))
      assert.strictEqual(again._tag, "Boom")
    }).pipe(Effect.provide(Stores)))

  it.scoped("runs one consumer per name; a second one takes over when the first stops", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const first = yield* recorder("single")
      const second = yield* recorder("single")
      const scope1 = yield* Scope.make()
      const sub1 = yield* Subscription.forkScoped(first.projection).pipe(Scope.extend(scope1))
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      yield* sub1.awaitPosition(2)
      const sub2 = yield* Subscription.forkScoped(second.projection)
      yield* store.append(s("1"), [ev(3)], ExpectedVersion.Exact(2))
      yield* sub1.awaitPosition(3)
      yield* Effect.yieldNow()
      assert.deepStrictEqual(yield* Ref.get(second.seen), [])
      assert.strictEqual(yield* sub2.processed, 0)

      yield* Scope.close(scope1, Exit.void)
      yield* store.append(s("1"), [ev(4)], ExpectedVersion.Exact(3))
      yield* sub2.awaitPosition(4)
      assert.deepStrictEqual(yield* Ref.get(first.seen), [1, 2, 3])
      assert.deepStrictEqual(yield* Ref.get(second.seen), [4])
    }).pipe(Effect.provide(Stores)))

  it.scoped("rebuilds with reset while writers keep appending", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const balances = new Map<string, number>()
      const resets = yield* Ref.make<ReadonlyArray<number>>([])
      const handled = yield* Ref.make(0)
      const projection = Projection.make({
        name: "balances",
        handle: (event) =>
          Effect.zipRight(
            Ref.update(handled, (n) => n + 1),
            Effect.sync(() => {
              const amount = (event.data as { amount: number }).amount
              balances.set(event.streamId, (balances.get(event.streamId) ?? 0) + amount)
            })
          ),
        onReset: (position) =>
          Effect.zipRight(Ref.update(resets, (all) => [...all, position]), Effect.sync(() => balances.clear()))
      })
      const sub = yield* Subscription.forkScoped(projection, { batchSize: 7 })
      const writer = (w: number) =>
        Effect.forEach(range(1, 40), (i) =>
          Effect.zipRight(
            store.append(s(`w${w}`), [ev(i)], ExpectedVersion.Exact(i - 1)),
            Effect.yieldNow()
          ), { discard: true })
      const writers = yield* Effect.fork(Effect.all(range(1, 4).map(writer), { concurrency: "unbounded" }))
      yield* sub.awaitPosition(30)
      yield* sub.reset()
      yield* Fiber.join(writers)
      yield* sub.awaitPosition(160)

      const expected = new Map<string, number>()
      for (const e of Chunk.toArray(yield* Stream.runCollect(store.readAll()))) {
        expected.set(e.streamId, (expected.get(e.streamId) ?? 0) + (e.data as { amount: number }).amount)
      }
      assert.deepStrictEqual(balances, expected)
      assert.deepStrictEqual(yield* Ref.get(resets), [0])
      // events handled before the reset were handled again
      assert.isTrue((yield* Ref.get(handled)) >= 160 + 30)
    }).pipe(Effect.provide(Stores)))

  it.scoped("reset to a position replays only what follows it", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3), ev(4)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* recorder("partial")
      const sub = yield* Subscription.forkScoped(projection)
      yield* sub.awaitPosition(4)
      // the recorder has no onReset: its replay is asked for explicitly
      yield* sub.reset(2, { allowDuplicates: true })
      yield* sub.awaitPosition(4)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3, 4, 3, 4])
      const invalid = yield* Effect.flip(sub.reset(-1, { allowDuplicates: true }))
      assert.strictEqual(invalid._tag, "InvalidArgument")
      assert.strictEqual((yield* Effect.flip(sub.reset(1.5, { allowDuplicates: true })))._tag, "InvalidArgument")
    }).pipe(Effect.provide(Stores)))

  it.scoped("a checkpoint reset from outside makes the running consumer replay", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* recorder("external")
      const sub = yield* Subscription.forkScoped(projection)
      yield* sub.awaitPosition(3)
      yield* checkpoints.reset("external", 1)
      // the next save is fenced off: the consumer re-acquires its lease and replays from the new checkpoint
      yield* store.append(s("1"), [ev(4)], ExpectedVersion.Exact(3))
      yield* sub.awaitPosition(4)
      const all = yield* Ref.get(seen)
      assert.deepStrictEqual(all.slice(0, 3), [1, 2, 3])
      // 4 was handled before the fenced save failed (at-least-once), then 2, 3, 4 again
      assert.deepStrictEqual(all.slice(-3), [2, 3, 4])
      assert.deepStrictEqual(yield* checkpoints.load("external"), Option.some(4))
    }).pipe(Effect.provide(Stores)))

  it.scoped("runs as a Layer with an explicit checkpoint store", () =>
    Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore.makeMemory
      const { projection, seen } = yield* recorder("layered")
      const store = yield* EventStore.EventStore
      yield* Layer.launch(Subscription.layer(projection, { checkpoints })).pipe(Effect.forkScoped)
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      yield* Effect.repeat(checkpoints.load("layered"), { until: Option.exists((p) => p >= 2) })
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.live("awaitCheckpoint waits for the durable checkpoint (by name, from anywhere)", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const { projection } = yield* recorder("by-name")
      yield* Subscription.forkScoped(projection)
      const r = yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      yield* Subscription.awaitCheckpoint("by-name", r.position, { schedule: Schedule.spaced("5 millis") })
      const checkpoints = yield* CheckpointStore.CheckpointStore
      assert.deepStrictEqual(yield* checkpoints.load("by-name"), Option.some(3))
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.effect("awaitCheckpoint with options.checkpoints runs without a CheckpointStore service", () =>
    Effect.gen(function*() {
      const checkpoints = yield* CheckpointStore.makeMemory
      // the type needs no service when the store is given, and the service otherwise
      const given = Subscription.awaitCheckpoint("given", 5, { checkpoints })
      expectType<Equals<Effect.Effect.Context<typeof given>, never>>(true)
      expectType<Equals<Effect.Effect.Error<typeof given>, CheckpointStore.CheckpointStoreError>>(true)
      const _fromService = Subscription.awaitCheckpoint("given", 5)
      expectType<Equals<Effect.Effect.Context<typeof _fromService>, CheckpointStore.CheckpointStore>>(true)
      const _withSchedule = Subscription.awaitCheckpoint("given", 5, { schedule: Schedule.spaced("1 second") })
      expectType<Equals<Effect.Effect.Context<typeof _withSchedule>, CheckpointStore.CheckpointStore>>(true)
      // ...and it runs with no CheckpointStore in the environment (it.effect provides none)
      yield* checkpoints.save("given", 3)
      const waiting = yield* Effect.fork(given)
      yield* TestClock.adjust("100 millis")
      assert(Option.isNone(yield* Fiber.poll(waiting)))
      yield* checkpoints.save("given", 5)
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(waiting)
      assert(Option.isNone(yield* Effect.serviceOption(CheckpointStore.CheckpointStore)))
    }))
})
