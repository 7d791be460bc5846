import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, DateTime, Effect, Either, Option, Stream, TestClock } from "effect"
import { Deposit, Deposited, Open, Opened, Wallet, Withdraw } from "./fixtures.js"

const wallets = Repository.make(Wallet)
const handle = CommandHandler.make(Wallet)

describe("Repository", () => {
  it.effect("load fails with AggregateNotFound on an empty stream; loadOption gives None; exists is false", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(wallets.load("nobody"))
      assert(error instanceof Aggregate.AggregateNotFound)
      assert.strictEqual(error.streamId, "wallet-nobody")
      assert(Option.isNone(yield* wallets.loadOption("nobody")))
      assert.isFalse(yield* wallets.exists("nobody"))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("load folds the decoded events; loadMany loads several and fails on a missing one", () =>
    Effect.gen(function*() {
      yield* wallets.append("a", [new Opened({ owner: "A" }), new Deposited({ amount: 10 })], ExpectedVersion.NoStream)
      yield* wallets.append("b", [new Opened({ owner: "B" })], ExpectedVersion.NoStream)
      const a = yield* wallets.load("a")
      assert.deepStrictEqual(a.state, { open: true, owner: "A", balance: 10 })
      assert.strictEqual(a.version, 2)
      assert.isTrue(yield* wallets.exists("a"))
      const many = yield* wallets.loadMany(["a", "b"])
      assert.deepStrictEqual(many.map((l) => l.state.owner), ["A", "B"])
      const missing = yield* Effect.flip(wallets.loadMany(["a", "zzz"]))
      assert(missing instanceof Aggregate.AggregateNotFound)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("an invalid id is a typed InvalidStreamId, and nothing is written", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(wallets.append("", [new Opened({ owner: "A" })], ExpectedVersion.Any))
      assert(error instanceof StreamId.InvalidStreamId)
      const store = yield* EventStore.EventStore
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 0)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("an event that does not match the Schema is refused with EventEncodeError before anything is stored", () =>
    Effect.gen(function*() {
      const bad = yield* Effect.flip(
        wallets.append(
          "c",
          [new Opened({ owner: "C" }), Deposited.make({ amount: -5 }, { disableValidation: true })],
          ExpectedVersion.Any
        )
      )
      assert(bad instanceof Aggregate.EventEncodeError)
      assert.strictEqual(bad.type, "Deposited")
      assert.strictEqual(bad.streamId, "wallet-c")
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion(StreamId.unsafeMake("wallet", "c")), 0)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("an undecodable stored event is an EventDecodeError naming stream, version and type", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const streamId = StreamId.unsafeMake("wallet", "d")
      yield* store.append(streamId, [
        { type: "Opened", data: { owner: "D" } },
        { type: "Deposited", data: { amount: "lots" } }
      ], ExpectedVersion.NoStream)
      const error = yield* Effect.flip(wallets.load("d"))
      assert(error instanceof Aggregate.EventDecodeError)
      assert.deepStrictEqual([error.streamId, error.version, error.type], ["wallet-d", 2, "Deposited"])
      const unknownType = StreamId.unsafeMake("wallet", "e")
      yield* store.append(unknownType, [{ type: "Teleported", data: {} }], ExpectedVersion.NoStream)
      const unknown = yield* Effect.flip(wallets.load("e"))
      assert(unknown instanceof Aggregate.EventDecodeError)
      assert.strictEqual(unknown.type, "Teleported")
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("loadAt a version and at a time (TestClock) rebuilds the past", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(DateTime.unsafeMake("2030-01-01T00:00:00Z").epochMillis)
      yield* handle("t", new Open({ owner: "T" }))
      yield* handle("t", new Deposit({ amount: 10 }))
      const noon = DateTime.unsafeMake("2030-01-01T12:00:00Z")
      yield* TestClock.setTime(noon.epochMillis)
      yield* handle("t", new Deposit({ amount: 5 }))
      yield* TestClock.setTime(DateTime.unsafeMake("2030-01-02T00:00:00Z").epochMillis)
      yield* handle("t", new Withdraw({ amount: 15 }))

      assert.strictEqual((yield* wallets.loadAt("t", { version: 2 })).state.balance, 10)
      assert.strictEqual((yield* wallets.loadAt("t", { version: 3 })).state.balance, 15)
      assert.strictEqual((yield* wallets.loadAt("t", { version: 99 })).version, 4)
      const atNoon = yield* wallets.loadAt("t", { until: noon })
      assert.deepStrictEqual([atNoon.version, atNoon.state.balance], [3, 15])
      const before = yield* wallets.loadAt("t", { until: DateTime.unsafeMake("2029-12-31T00:00:00Z") }).pipe(
        Effect.flip
      )
      assert(before instanceof Aggregate.AggregateNotFound)
      assert.strictEqual((yield* wallets.load("t")).state.balance, 0)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("events streams the decoded events of one aggregate", () =>
    Effect.gen(function*() {
      yield* wallets.append("f", [new Opened({ owner: "F" }), new Deposited({ amount: 3 })], ExpectedVersion.NoStream)
      const events = Chunk.toArray(yield* Stream.runCollect(wallets.events("f")))
      assert.deepStrictEqual(events, [new Opened({ owner: "F" }), new Deposited({ amount: 3 })])
      const backward = Chunk.toArray(yield* Stream.runCollect(wallets.events("f", { direction: "backward", limit: 1 })))
      assert.deepStrictEqual(backward, [new Deposited({ amount: 3 })])
      assert(Either.isRight(wallets.streamId("f")))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("the aggregate errors live in Aggregate; EventStore re-exports the same classes (instanceof, catchTag)", () =>
    Effect.gen(function*() {
      assert.strictEqual(EventStore.AggregateNotFound, Aggregate.AggregateNotFound)
      assert.strictEqual(EventStore.EventDecodeError, Aggregate.EventDecodeError)
      assert.strictEqual(EventStore.EventEncodeError, Aggregate.EventEncodeError)
      const error = yield* Effect.flip(wallets.load("gone"))
      assert(error instanceof EventStore.AggregateNotFound)
      assert(error instanceof Aggregate.AggregateNotFound)
      // a handler written against the old home still catches the error by tag
      const caught = yield* wallets.load("gone").pipe(
        Effect.map(() => "loaded"),
        Effect.catchTag("AggregateNotFound", (e: EventStore.AggregateNotFound) => Effect.succeed(e.streamId))
      )
      assert.strictEqual(caught, "wallet-gone")
      const old = new EventStore.EventDecodeError({ streamId: "s-1", version: 1, type: "T", cause: "bad" })
      assert(old instanceof Aggregate.EventDecodeError)
      assert.strictEqual(old.message, "Cannot decode event T at s-1@1: bad")
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
