import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  ParkedEvents,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Ref, Schedule, Schema } from "effect"

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

const Stores = Layer.mergeAll(
  InMemoryEventStore.layerWithControl(),
  CheckpointStore.layerMemory,
  ParkedEvents.layerMemory
)

class Poison extends Schema.TaggedError<Poison>()("Poison", { amount: Schema.Number }) {}

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const expectType = <T extends true>(_: T) => {}

/** A read model of handled positions that refuses the amounts in `poison` (while `poisoned` holds). */
const model = (name: string, poison: ReadonlyArray<number>, options?: { readonly onReset?: boolean }) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<number>>([])
    const poisoned = yield* Ref.make(true)
    const handle = (event: EventStore.RecordedEvent) =>
      Effect.flatMap(Ref.get(poisoned), (on) => {
        const amount = (event.data as { amount: number }).amount
        return on && poison.includes(amount)
          ? Effect.fail(new Poison({ amount }))
          : Ref.update(seen, (all) => [...all, event.position])
      })
    const projection = options?.onReset === false
      ? Projection.make({ name, handle })
      : Projection.make({
        name,
        handle,
        onReset: (position) => Ref.update(seen, (all) => all.filter((p) => p <= position))
      })
    return { seen, poisoned, projection }
  })

const quick = Schedule.recurs(2)

describe("EventStore.headPosition (in memory)", () => {
  it.scoped("is the last event a gap-safe reader can reach: never past a commit in flight", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const control = yield* InMemoryEventStore.Control
      assert.strictEqual(yield* store.headPosition, 0)
      yield* store.append(s("1"), [ev(1)], ExpectedVersion.NoStream)
      const held = yield* control.holdNextCommit
      const slow = yield* Effect.fork(store.append(s("2"), [ev(2)], ExpectedVersion.NoStream))
      assert.deepStrictEqual(yield* held.reserved, [2])
      const fast = yield* store.append(s("3"), [ev(3), ev(4)], ExpectedVersion.NoStream)
      assert.strictEqual(fast.position, 4)
      assert.strictEqual(yield* store.headPosition, 1)
      yield* held.release
      yield* Fiber.join(slow)
      assert.strictEqual(yield* EventStore.headPosition, 4)
      // a rolled-back commit at the top leaves a hole: the head is the last event below it
      const again = yield* control.holdNextCommit
      const failing = yield* Effect.fork(store.append(s("4"), [ev(5)], ExpectedVersion.NoStream))
      yield* again.reserved
      yield* again.rollback
      yield* Effect.flip(Fiber.join(failing))
      assert.strictEqual(yield* store.headPosition, 4)
    }).pipe(Effect.provide(Stores)))
})

describe("Subscription failure policy park", () => {
  it.scoped("parks a poison event with its error, attempts and time, and moves on", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const parked = yield* ParkedEvents.ParkedEvents
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      yield* store.append(s("2"), [ev(4), ev(2), ev(6)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* model("park", [2])
      const sub = yield* Subscription.forkScoped(projection, { onFailure: "park", retry: quick })
      yield* sub.awaitPosition(6)
      const entries = yield* parked.list({ subscription: "park" })
      assert.deepStrictEqual(entries.map((e) => [e.position, e.streamId, e.version, e.state]), [
        [2, s("1"), 2, "parked"],
        [5, s("2"), 2, "parked"]
      ])
      assert.strictEqual(entries[0]!.attempts, 3) // the first try and the Schedule's 2 retries
      assert.match(entries[0]!.error, /Poison/)
      assert.ok(entries[0]!.parkedAt.epochMillis >= 0)
      // the read model and the parked events together cover the log, each event once
      const handled = new Set(yield* Ref.get(seen))
      for (const e of entries) assert.isFalse(handled.has(e.position))
      assert.deepStrictEqual([...handled, ...entries.map((e) => e.position)].sort(), [1, 2, 3, 4, 5, 6])
      assert.deepStrictEqual(yield* checkpoints.load("park"), Option.some(6))
      const report = yield* Subscription.status("park")
      assert.strictEqual(report.parked, 2)
      assert.match(Option.getOrThrow(report.lastError).message, /Poison/)
      assert.strictEqual((yield* sub.status).state, "running")
    }).pipe(Effect.provide(Stores)))

  it.scoped("stop (the default) stops with the typed error and parks nothing", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const { projection } = yield* model("stop", [2])
      const sub = yield* Subscription.forkScoped(projection, { retry: quick })
      const error = yield* Effect.flip(sub.join)
      assert.instanceOf(error, Poison)
      assert.deepStrictEqual(yield* ParkedEvents.list(), [])
      assert.match(Option.getOrThrow((yield* Subscription.status("stop")).lastError).message, /Poison/)
      assert.deepStrictEqual(
        yield* CheckpointStore.CheckpointStore.pipe(Effect.flatMap((c) => c.load("stop"))),
        Option.some(1)
      )
    }).pipe(Effect.provide(Stores)))

  it.live("retry re-delivers a parked event to the running subscription and removes it; skip keeps it, skipped", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3), ev(2)], ExpectedVersion.NoStream)
      const { poisoned, projection, seen } = yield* model("retry", [2])
      // one event per batch: the in-memory stores have no transactions, so a failed batch's earlier events would be
      // applied again when its events are tried one at a time (at-least-once)
      const sub = yield* Subscription.forkScoped(projection, {
        onFailure: "park",
        retry: quick,
        batchSize: 1,
        controlInterval: "10 millis"
      })
      yield* sub.awaitPosition(4)
      const [first, second] = yield* ParkedEvents.list({ subscription: "retry" })
      // a retry that fails again goes back to parked with one attempt more
      yield* ParkedEvents.retry(first!.id)
      yield* Effect.repeat(ParkedEvents.list({ subscription: "retry" }), {
        until: (all) => all[0]!.state === "parked" && all[0]!.attempts === first!.attempts + 1,
        schedule: Schedule.spaced("5 millis")
      })
      assert.strictEqual((yield* ParkedEvents.list({ subscription: "retry" })).length, 2)
      // fixed: the retry succeeds and the entry is gone
      yield* Ref.set(poisoned, false)
      yield* ParkedEvents.retry(first!.id)
      yield* Effect.repeat(ParkedEvents.list({ subscription: "retry" }), {
        until: (all) => all.length === 1,
        schedule: Schedule.spaced("5 millis")
      })
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 3, 2])
      yield* ParkedEvents.skip(second!.id)
      const [skipped] = yield* ParkedEvents.list({ subscription: "retry" })
      assert.strictEqual(skipped!.state, "skipped")
      assert.strictEqual((yield* Subscription.status("retry")).parked, 0)
      yield* Effect.sleep("50 millis")
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 3, 2])
      const missing = yield* Effect.flip(ParkedEvents.skip(999))
      assert.deepStrictEqual(missing, new ParkedEvents.ParkedEventNotFound({ id: 999 }))
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.effect("onFailure park needs the ParkedEvents service unless one is given", () =>
    Effect.gen(function*() {
      const parked = yield* ParkedEvents.makeMemory
      const projection = Projection.make({ name: "types", handle: () => Effect.void })
      const _park = Subscription.run(projection, { onFailure: "park" })
      expectType<
        Equals<
          Effect.Effect.Context<typeof _park>,
          EventStore.EventStore | CheckpointStore.CheckpointStore | ParkedEvents.ParkedEvents
        >
      >(true)
      const _given = Subscription.run(projection, { onFailure: "park", parked })
      expectType<Equals<Effect.Effect.Context<typeof _given>, EventStore.EventStore | CheckpointStore.CheckpointStore>>(
        true
      )
      const _stop = Subscription.run(projection, { onFailure: "stop" })
      expectType<Equals<Effect.Effect.Context<typeof _stop>, EventStore.EventStore | CheckpointStore.CheckpointStore>>(
        true
      )
    }))
})

describe("Subscription reset guard and reset requests", () => {
  it.scoped("reset() of a projection without onReset fails with NotResettable naming it, and changes nothing", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* model("plain", [], { onReset: false })
      const sub = yield* Subscription.forkScoped(projection)
      yield* sub.awaitPosition(2)
      const error = yield* Effect.flip(sub.reset())
      assert.deepStrictEqual(error, new Subscription.NotResettable({ projection: "plain" }))
      assert.match(error.message, /plain/)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2])
      assert.deepStrictEqual(yield* sub.processed, 2)
      // explicitly allowed: replays (and counts twice)
      yield* sub.reset(undefined, { allowDuplicates: true })
      yield* sub.awaitPosition(2)
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 1, 2])
    }).pipe(Effect.provide(Stores)))

  it.live("a reset requested from outside is applied by the lease holder: onReset, then replay", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* model("requested", [])
      const sub = yield* Subscription.forkScoped(projection, { controlInterval: "10 millis" })
      yield* sub.awaitPosition(3)
      const request = yield* Subscription.requestReset("requested", { position: 1 })
      assert.strictEqual(request.position, 1)
      yield* Effect.repeat(Subscription.status("requested"), {
        until: (report) => Option.isNone(report.resetRequest),
        schedule: Schedule.spaced("5 millis")
      })
      yield* sub.awaitPosition(3)
      // onReset dropped 2 and 3, the replay handled them once more: the read model counts each event once
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 3])
      const report = yield* Subscription.status("requested")
      assert.deepStrictEqual([report.checkpoint, report.head, report.lag], [Option.some(3), 3, 0])
      const invalid = yield* Effect.flip(Subscription.requestReset("requested", { position: -1 }))
      assert.strictEqual(invalid._tag, "InvalidArgument")
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a reset requested for a projection without onReset is refused and recorded as its last error", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      const { projection, seen } = yield* model("refusing", [], { onReset: false })
      const sub = yield* Subscription.forkScoped(projection, { controlInterval: "10 millis" })
      yield* sub.awaitPosition(2)
      yield* Subscription.requestReset("refusing")
      yield* Effect.repeat(Subscription.status("refusing"), {
        until: (report) => Option.isNone(report.resetRequest),
        schedule: Schedule.spaced("5 millis")
      })
      const report = yield* Subscription.status("refusing")
      assert.match(Option.getOrThrow(report.lastError).message, /refusing has no onReset/)
      assert.deepStrictEqual(report.checkpoint, Option.some(2))
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2])
      // allowDuplicates: applied
      yield* Subscription.requestReset("refusing", { allowDuplicates: true })
      yield* Effect.repeat(Ref.get(seen), { until: (all) => all.length === 4, schedule: Schedule.spaced("5 millis") })
      assert.deepStrictEqual(yield* Ref.get(seen), [1, 2, 1, 2])
    }).pipe(Effect.scoped, Effect.provide(Stores)))
})

describe("Subscription.status", () => {
  it.scoped("reports checkpoint, head, lag (head - checkpoint), holder and parked count", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(s("1"), [ev(1), ev(2), ev(3), ev(4), ev(5)], ExpectedVersion.NoStream)
      const checkpoints = yield* CheckpointStore.CheckpointStore
      yield* checkpoints.save("behind", 2)
      const idle = yield* Subscription.status("behind")
      assert.deepStrictEqual(
        [idle.name, idle.checkpoint, idle.head, idle.lag, idle.holder, idle.parked],
        ["behind", Option.some(2), 5, 3, Option.none(), 0]
      )
      const unknown = yield* Subscription.status("never-ran")
      assert.deepStrictEqual([unknown.checkpoint, unknown.lag], [Option.none(), 5])
      const { projection } = yield* model("running", [4])
      const sub = yield* Subscription.forkScoped(projection, { onFailure: "park", retry: quick })
      yield* sub.awaitPosition(5)
      const running = yield* Subscription.status("running")
      assert.deepStrictEqual(
        [running.checkpoint, running.head, running.lag, Option.isSome(running.holder), running.parked],
        [Option.some(5), 5, 0, true, 1]
      )
      const all = yield* Subscription.statusAll
      assert.deepStrictEqual(all.map((r) => r.name), ["behind", "running"])
    }).pipe(Effect.provide(Stores)))
})
