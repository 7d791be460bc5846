import { CheckpointStore, CommandHandler, EventStore, InMemoryEventStore, View } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import { Deposit, Open, Wallet, Withdraw } from "./fixtures.js"

const Summary = Schema.Struct({ owner: Schema.String, balance: Schema.Int, movements: Schema.Int })

const Summaries = View.fromAggregate(Wallet, {
  name: "wallet-summaries",
  schema: Summary,
  initial: { owner: "", balance: 0, movements: 0 },
  evolve: (view, event) => {
    switch (event._tag) {
      case "Opened":
        return { ...view, owner: event.owner }
      case "Deposited":
        return { ...view, balance: view.balance + event.amount, movements: view.movements + 1 }
      case "Withdrawn":
        return { ...view, balance: view.balance - event.amount, movements: view.movements + 1 }
    }
  }
})

const handle = CommandHandler.make(Wallet)
const Stores = Layer.mergeAll(InMemoryEventStore.layer, CheckpointStore.layerMemory, View.layerMemory)

const seed = Effect.gen(function*() {
  yield* handle("a", new Open({ owner: "Ada" }))
  yield* handle("b", new Open({ owner: "Bob" }))
  yield* handle("a", new Deposit({ amount: 100 }))
  yield* handle("b", new Deposit({ amount: 5 }))
  return yield* handle("a", new Withdraw({ amount: 30 }))
})

describe("View", () => {
  it.scoped("a subscription keeps one typed document per aggregate, read back by key and listed", () =>
    Effect.gen(function*() {
      const subscription = yield* View.forkScoped(Summaries)
      const { position } = yield* seed
      yield* subscription.awaitPosition(position)
      assert.deepStrictEqual(
        yield* View.get(Summaries, "a"),
        Option.some({ owner: "Ada", balance: 70, movements: 2 })
      )
      assert.deepStrictEqual(yield* View.get(Summaries, "missing"), Option.none())
      const all = yield* View.list(Summaries)
      assert.deepStrictEqual(all.map(({ key, value }) => [key, value.balance]), [["a", 70], ["b", 5]])
      // each document carries the position of the last event that changed it
      assert.strictEqual(all[0]!.position, position)
    }).pipe(Effect.provide(Stores)))

  it.effect("events delivered again (at-least-once) change nothing: a document skips positions it has seen", () =>
    Effect.gen(function*() {
      yield* seed
      const events = yield* Stream.runCollect(EventStore.readAll())
      const batch = [...events]
      yield* View.apply(Summaries, batch)
      const once = yield* View.list(Summaries)
      yield* View.apply(Summaries, batch)
      yield* View.apply(Summaries, batch.slice(2))
      assert.deepStrictEqual(yield* View.list(Summaries), once)
      assert.deepStrictEqual(once.find((d) => d.key === "a")?.value, { owner: "Ada", balance: 70, movements: 2 })
    }).pipe(Effect.provide(Stores)))

  it.scoped("is rebuilt from the start by Subscription.reset(); a reset to a later position is refused", () =>
    Effect.gen(function*() {
      const subscription = yield* View.forkScoped(Summaries)
      const { position } = yield* seed
      yield* subscription.awaitPosition(position)
      const before = yield* View.list(Summaries)
      // damage a document: the rebuild must restore it from the events
      const store = yield* View.ViewStore
      yield* store.save(Summaries.name, [{ key: "a", document: { owner: "?", balance: 0, movements: 0 }, position }])
      yield* subscription.reset()
      yield* subscription.awaitPosition(position)
      assert.deepStrictEqual(yield* View.list(Summaries), before)

      const refused = yield* Effect.flip(subscription.reset(2))
      assert.strictEqual(refused._tag, "InvalidArgument")
    }).pipe(Effect.provide(Stores)))

  it.effect("a stored document that no longer matches the schema fails with ViewDocumentError", () =>
    Effect.gen(function*() {
      const store = yield* View.ViewStore
      yield* store.save(Summaries.name, [{ key: "x", document: { owner: 1 }, position: 1 }])
      const error = yield* Effect.flip(View.get(Summaries, "x"))
      assert.instanceOf(error, View.ViewDocumentError)
      assert.strictEqual(error.key, "x")
    }).pipe(Effect.provide(Stores)))

  it.effect("View.make works on recorded events; events without a key change nothing", () =>
    Effect.gen(function*() {
      const Types = View.make({
        name: "types",
        schema: Schema.Struct({ count: Schema.Int }),
        key: (event) => event.type === "Opened" ? undefined : event.type,
        initial: { count: 0 },
        evolve: (view) => ({ count: view.count + 1 })
      })
      yield* seed
      yield* View.apply(Types, [...(yield* Stream.runCollect(EventStore.readAll()))])
      const all = yield* View.list(Types)
      assert.deepStrictEqual(all.map((d) => [d.key, d.value.count]), [["Deposited", 2], ["Withdrawn", 1]])
    }).pipe(Effect.provide(Stores)))

  it.scoped("a failing store stops the subscription with ViewStoreError (never skips the batch)", () =>
    Effect.gen(function*() {
      const failing = Layer.succeed(View.ViewStore, {
        load: () => Effect.fail(new View.ViewStoreError({ method: "load", cause: "down" })),
        save: () => Effect.void,
        list: () => Effect.succeed([]),
        clear: () => Effect.void
      })
      const subscription = yield* View.forkScoped(Summaries, { retry: Schedule.stop }).pipe(Effect.provide(failing))
      yield* seed
      const error = yield* Effect.flip(subscription.join)
      assert.instanceOf(error, View.ViewStoreError)
      assert.strictEqual(yield* subscription.processed, 0)
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, CheckpointStore.layerMemory))))
})
