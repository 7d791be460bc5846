import {
  CommandHandler,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  SnapshotStore,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Effect, Layer, Logger, LogLevel, Metric, Option, Schedule } from "effect"
import { Deposit, Deposited, Open, Opened, SnapshottedWallet } from "./fixtures.js"

const streamOf = (id: string) => StreamId.unsafeMake("wallet", id)

/** An in-memory store that records the `from` of every stream read. */
const spying = Effect.gen(function*() {
  const store = yield* InMemoryEventStore.make()
  const reads: Array<number | undefined> = []
  const spy: EventStore.EventStore["Type"] = {
    ...store,
    read: (streamId, options) => {
      reads.push(options?.from)
      return store.read(streamId, options)
    }
  }
  return { store: spy, reads }
})

/** Waits until the background snapshot save of `version` has landed. */
const awaitSnapshot = (streamId: StreamId.StreamId, version: number) =>
  Effect.flatMap(SnapshotStore.SnapshotStore, (snapshots) =>
    snapshots.load(streamId).pipe(
      Effect.filterOrFail((s) => Option.isSome(s) && s.value.version >= version),
      Effect.retry(Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(200))))
    ))

const deposit = (
  handle: CommandHandler.CommandHandler<unknown, Deposit | Open, unknown, unknown>,
  id: string,
  n: number
) => Effect.repeatN(handle(id, new Deposit({ amount: 1 })), n - 1)

describe("snapshots", () => {
  it.live("are taken every N events and used on load: only the events after the snapshot are read", () =>
    Effect.gen(function*() {
      const { reads, store } = yield* spying
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      yield* Effect.gen(function*() {
        yield* handle("s1", new Open({ owner: "A" }))
        yield* deposit(handle, "s1", 11) // versions 2..12: crosses 5 and 10
        yield* awaitSnapshot(streamOf("s1"), 10)
        const snapshot = yield* Effect.flatMap(SnapshotStore.SnapshotStore, (s) => s.load(streamOf("s1")))
        assert(Option.isSome(snapshot))
        assert.strictEqual(snapshot.value.version, 10)
        assert.deepStrictEqual(snapshot.value.state, { open: true, owner: "A", balance: 9 })
        reads.length = 0
        const loaded = yield* wallets.load("s1")
        assert.deepStrictEqual([loaded.version, loaded.state.balance], [12, 11])
        assert.deepStrictEqual(reads, [10], "reads from the snapshot's own event (to verify it), not from 1")
      }).pipe(Effect.provide(Layer.mergeAll(Layer.succeed(EventStore.EventStore, store), SnapshotStore.layerMemory)))
    }))

  it.live("a snapshot with another fingerprint, or that does not decode, is ignored and replaced", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      const snapshots = yield* SnapshotStore.SnapshotStore
      yield* handle("s2", new Open({ owner: "A" }))
      yield* deposit(handle, "s2", 6)
      yield* awaitSnapshot(streamOf("s2"), 5)
      const takenAt = yield* DateTime.now
      const good = Option.getOrThrow(yield* snapshots.load(streamOf("s2")))
      // a lying snapshot with another schema fingerprint
      yield* snapshots.save({
        ...good,
        version: 6,
        fingerprint: "other",
        state: { open: true, owner: "X", balance: 1e6 },
        takenAt
      })
      assert.strictEqual((yield* wallets.load("s2")).state.balance, 6)
      // an undecodable one with the right fingerprint
      yield* snapshots.save({ ...good, version: 7, state: { nonsense: true }, takenAt })
      assert.strictEqual((yield* wallets.load("s2")).state.balance, 6)
      // ...and it is replaced by a good one on load
      const replaced = Option.getOrThrow(yield* snapshots.load(streamOf("s2")))
      assert.deepStrictEqual(replaced.state, { open: true, owner: "A", balance: 6 })
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  it.live("a snapshot of a stream that was deleted and re-created is not trusted", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      const store = yield* EventStore.EventStore
      yield* handle("s3", new Open({ owner: "Old" }))
      yield* deposit(handle, "s3", 5)
      yield* awaitSnapshot(streamOf("s3"), 5)
      yield* store.delete(streamOf("s3"))
      yield* Effect.sleep("5 millis")
      yield* handle("s3", new Open({ owner: "New" }))
      yield* deposit(handle, "s3", 6)
      const loaded = yield* wallets.load("s3")
      assert.deepStrictEqual([loaded.state.owner, loaded.state.balance, loaded.version], ["New", 6, 7])
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  it.live("a failing snapshot store never fails a command or a load", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      yield* handle("s4", new Open({ owner: "A" }))
      const before = yield* Metric.value(SnapshotStore.saveFailures)
      yield* deposit(handle, "s4", 12)
      assert.strictEqual((yield* wallets.load("s4")).state.balance, 12)
      yield* Effect.sleep("20 millis") // saves run in the background
      const after = yield* Metric.value(SnapshotStore.saveFailures)
      assert.isAbove(after.count, before.count)
    }).pipe(
      Logger.withMinimumLogLevel(LogLevel.None),
      Effect.provide(Layer.mergeAll(
        InMemoryEventStore.layer,
        Layer.succeed(SnapshotStore.SnapshotStore, {
          load: () => Effect.fail(new SnapshotStore.SnapshotStoreError({ method: "load", cause: "down" })),
          save: () => Effect.fail(new SnapshotStore.SnapshotStoreError({ method: "save", cause: "down" })),
          delete: () => Effect.void
        })
      ))
    ))

  it.live("Repository.delete removes the stream and its snapshots", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      yield* handle("s6", new Open({ owner: "A" }))
      yield* deposit(handle, "s6", 5)
      yield* awaitSnapshot(streamOf("s6"), 5)
      yield* wallets.delete("s6")
      assert.isFalse(yield* wallets.exists("s6"))
      const snapshots = yield* SnapshotStore.SnapshotStore
      assert(Option.isNone(yield* snapshots.load(streamOf("s6"))))
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  it.live("time travel bypasses newer snapshots", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      yield* handle("s5", new Open({ owner: "A" }))
      yield* deposit(handle, "s5", 10)
      yield* awaitSnapshot(streamOf("s5"), 10)
      const past = yield* wallets.loadAt("s5", { version: 3 })
      assert.deepStrictEqual([past.version, past.state.balance], [3, 2])
    }).pipe(Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory))))

  it.live("a command snapshots by the real number of events since the latest snapshot, also one taken on load", () =>
    Effect.gen(function*() {
      const saved: Array<number> = []
      const memory = yield* SnapshotStore.makeMemory
      const recording: SnapshotStore.SnapshotStore["Type"] = {
        ...memory,
        save: (snapshot) => Effect.zipRight(Effect.sync(() => saved.push(snapshot.version)), memory.save(snapshot))
      }
      const handle = CommandHandler.make(SnapshottedWallet)
      const wallets = Repository.make(SnapshottedWallet)
      yield* Effect.gen(function*() {
        // 7 events written without snapshots, then a load: the load takes the snapshot at 7
        yield* wallets.append(
          "s7",
          [new Opened({ owner: "A" }), ...Array.from({ length: 6 }, () => new Deposited({ amount: 1 }))],
          ExpectedVersion.NoStream
        )
        assert.strictEqual((yield* wallets.load("s7")).version, 7)
        yield* awaitSnapshot(streamOf("s7"), 7)
        // versions 8..11 are fewer than 5 events past it (crossing 10 is no reason); 12 is 5 past it
        yield* deposit(handle, "s7", 5)
        yield* awaitSnapshot(streamOf("s7"), 12)
        assert.deepStrictEqual(saved, [7, 12])
      }).pipe(
        Effect.provide(Layer.mergeAll(InMemoryEventStore.layer, Layer.succeed(SnapshotStore.SnapshotStore, recording)))
      )
    }))
})
