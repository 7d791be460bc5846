import {
  CommandHandler,
  EventStore,
  InMemoryEventStore,
  Projection,
  Repository,
  SnapshotStore,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Layer, Option, Schedule } from "effect"
import { Deposit, Open, SnapshottedWallet, Wallet, Withdraw } from "./fixtures.js"
import { unitOfWorkSuite } from "./unitOfWorkSuite.js"

unitOfWorkSuite("Repository.unitOfWork (in memory)", InMemoryEventStore.layer)

const streamOf = (id: string) => StreamId.unsafeMake("wallet", id)
const wallets = Repository.make(Wallet)
const handle = CommandHandler.make(Wallet)

describe("Repository.unitOfWork (in memory only)", () => {
  it.live("snapshots are taken after the commit, by the aggregate's policy", () =>
    Effect.gen(function*() {
      const snapshotted = CommandHandler.make(SnapshottedWallet)
      yield* Repository.unitOfWork(Effect.gen(function*() {
        yield* snapshotted("s", new Open({ owner: "Ada" }))
        yield* Effect.repeatN(snapshotted("s", new Deposit({ amount: 1 })), 4)
      }))
      const snapshots = yield* SnapshotStore.SnapshotStore
      const saved = yield* snapshots.load(streamOf("s")).pipe(
        Effect.filterOrFail(Option.isSome),
        Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(200))))
      )
      assert.deepStrictEqual([saved.value.version, (saved.value.state as { balance: number }).balance], [6, 5])
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  it.effect("inline projections run in the commit: one that fails rejects the whole unit", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const exit = yield* Effect.exit(Repository.unitOfWork(Effect.gen(function*() {
        yield* handle("p-a", new Open({ owner: "Ada" }))
        yield* handle("p-b", new Open({ owner: "refused" }))
      })))
      assert(Exit.isFailure(exit))
      assert.strictEqual((yield* Effect.flip(exit))._tag, "EventStoreError")
      assert.deepStrictEqual(
        [yield* store.streamVersion(streamOf("p-a")), yield* store.streamVersion(streamOf("p-b"))],
        [
          0,
          0
        ]
      )
    }).pipe(Effect.provide(InMemoryEventStore.layerWith({
      inline: [Projection.make({
        name: "refuses",
        handle: (event) => (event.data as { owner?: string }).owner === "refused" ? Effect.fail("refused") : Effect.void
      })]
    }))))

  it.effect("fibers forked in a unit share it; a nested unit joins it; a locked handler works inside", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const locked = CommandHandler.make(Wallet, { lock: true })
      yield* handle("f-a", new Open({ owner: "Ada" }))
      yield* Repository.unitOfWork(Effect.gen(function*() {
        yield* Effect.all([handle("f-a", new Deposit({ amount: 5 })), handle("f-a", new Deposit({ amount: 7 }))], {
          concurrency: "unbounded"
        })
        yield* Repository.unitOfWork(locked("f-a", new Withdraw({ amount: 2 })))
        assert.deepStrictEqual(yield* store.streamVersion(streamOf("f-a")), 1)
        const loaded = yield* wallets.load("f-a")
        assert.deepStrictEqual([loaded.version, loaded.state.balance], [4, 10])
      }))
      assert.deepStrictEqual(yield* store.streamVersion(streamOf("f-a")), 4)
      assert.deepStrictEqual((yield* wallets.load("f-a")).state.balance, 10)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
