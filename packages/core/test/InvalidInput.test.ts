import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Projection,
  Repository,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Chunk, Effect, Exit, Layer, Stream } from "effect"
import { Wallet } from "./fixtures.js"

const Stores = Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory)

describe("invalid numeric input through the services built on the store", () => {
  it.effect("memory readAll({ from: NaN }) fails with InvalidArgument instead of spinning", () =>
    Effect.gen(function*() {
      const store = yield* InMemoryEventStore.make()
      yield* store.append(StreamId.unsafeMake("acc", "1"), [{ type: "T", data: {} }], ExpectedVersion.NoStream)
      for (const from of [Number.NaN, 1.5, -1, Number.POSITIVE_INFINITY]) {
        const error = yield* Effect.flip(Stream.runCollect(store.readAll({ from })).pipe(Effect.timeout("2 seconds")))
        assert(error instanceof EventStore.InvalidArgument, `from ${from}: ${String(error)}`)
        assert.deepStrictEqual([error.method, error.argument], ["readAll", "options.from"])
      }
      const limit = yield* Effect.flip(Stream.runCollect(store.readAll({ limit: Number.NaN })))
      assert(limit instanceof EventStore.InvalidArgument)
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll({ from: 0 }))), 1)
    }))

  it.scoped("a subscription started from NaN stops with a typed error instead of retrying or hanging", () =>
    Effect.gen(function*() {
      const projection = Projection.make({ name: "nan", handle: () => Effect.void })
      const exit = yield* Effect.exit(
        Subscription.run(projection, { from: Number.NaN }).pipe(Effect.timeout("5 seconds"))
      )
      assert(Exit.isFailure(exit))
      const error = Cause.failureOption(exit.cause)
      assert(error._tag === "Some" && error.value instanceof EventStore.EventStoreError, String(exit.cause))
      assert(error.value.cause instanceof EventStore.InvalidArgument)
    }).pipe(Effect.provide(Stores)))

  it.effect("Repository.loadAt with an invalid version is InvalidArgument", () =>
    Effect.gen(function*() {
      const repository = Repository.make(Wallet)
      for (const version of [-1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(repository.loadAt("1", { version }))
        assert.strictEqual(error._tag, "InvalidArgument", `version ${version}`)
      }
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
