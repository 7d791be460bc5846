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
import { Effect, Exit, Layer, Option, Schedule, Schema, Scope } from "effect"

const Stores = Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory)
const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (n: number): EventStore.EventData => ({ type: "Counted", data: { n } })

class Boom extends Schema.TaggedError<Boom>()("Boom", {}) {}

/** Every handled event by stream, and every handled position (to tell duplicates). */
const recorder = () => {
  const byStream = new Map<string, Array<number>>()
  const positions: Array<number> = []
  const projection = Projection.make({
    name: "unused",
    handle: (event) =>
      Effect.sync(() => {
        positions.push(event.position)
        const seen = byStream.get(event.streamId) ?? []
        seen.push((event.data as { readonly n: number }).n)
        byStream.set(event.streamId, seen)
      })
  })
  return { byStream, positions, projection }
}

/** Rounds `from` to `to - 1` of one event for each of `streams` streams (the event's `n` is its round). */
const appendRounds = (streams: number, from: number, to: number) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.forEach(Array.from({ length: to - from }, (_, i) => from + i), (round) =>
        Effect.forEach(
          Array.from({ length: streams }, (_, i) => i),
          (i) =>
            store.append(
              s(String(i)),
              [ev(round)],
              round === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(round)
            ),
          { discard: true }
        ), { discard: true }).pipe(Effect.orDie)
  )

/** Polls `self` every 10 ms until `done` holds (at most 5 s) and gives the value that satisfied it. */
const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, done: (a: A) => boolean): Effect.Effect<A, never, R> =>
  Effect.flatMap(self, (a) => done(a) ? Effect.succeed(a) : Effect.fail("not yet" as const)).pipe(
    Effect.retry(Schedule.spaced("10 millis")),
    Effect.timeout("5 seconds"),
    Effect.orDie
  )

/** Per-stream order: an event is never handled before the stream's previous event was handled at least once. */
const inOrder = (seen: ReadonlyArray<number>) => seen.every((n, k) => n <= Math.max(-1, ...seen.slice(0, k)) + 1)

describe("Subscription.runGroup", () => {
  it("partitionOf is a stable hash of the stream id (FNV-1a of its UTF-8 bytes)", () => {
    // pinned: a change of the hash would move streams between partitions of running groups
    assert.strictEqual(Subscription.partitionOf("", 1 << 30), 0x811c9dc5 % (1 << 30))
    assert.strictEqual(Subscription.partitionOf("a", 2 ** 32 - 1), 0xe40c292c % (2 ** 32 - 1))
    assert.strictEqual(Subscription.partitionOf("foobar", 2 ** 32 - 1), 0xbf9cf968 % (2 ** 32 - 1))
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) counts[Subscription.partitionOf(`acc-${i}`, 4)]!++
    for (const count of counts) assert.isTrue(count > 850 && count < 1150, `spread ${counts.join(",")}`)
  })

  it.scoped("the memory store's tryAcquire: None at once while the name is held or waited for, the lease after", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      const held = yield* Scope.make()
      const lease = yield* Scope.extend(store.acquire("a"), held)
      yield* lease.save(4)
      assert.isTrue(Option.isNone(yield* store.tryAcquire!("a")))
      assert.isTrue(Option.isSome(yield* Effect.scoped(store.tryAcquire!("b"))))
      yield* Scope.close(held, Exit.void)
      const taken = yield* store.tryAcquire!("a")
      assert.isTrue(Option.isSome(taken) && Option.getOrNull(taken.value.position) === 4)
      // the old lease is fenced off
      assert.strictEqual((yield* Effect.flip(lease.save(5)))._tag, "LeaseLost")
    }))

  it.scoped("refuses bad options before anything runs", () =>
    Effect.gen(function*() {
      const { projection } = recorder()
      for (
        const bad of [{ group: "", partitions: 2 }, { group: "g", partitions: 0 }, { group: "g", partitions: 1.5 }, {
          group: "g",
          partitions: 2,
          members: 0
        }]
      ) {
        const exit = yield* Effect.exit(Subscription.forkGroupScoped(projection, bad))
        assert.isTrue(Exit.isFailure(exit) && String(exit.cause).includes("InvalidArgument"), JSON.stringify(bad))
      }
      const checkpoints = yield* CheckpointStore.CheckpointStore
      assert.isTrue(Option.isNone(yield* checkpoints.load("[0/0]")))
    }).pipe(Effect.provide(Stores)))

  it.live("three members split the partitions, rebalance on leave and join, keep per-stream order", () =>
    Effect.gen(function*() {
      const { byStream, positions, projection } = recorder()
      const options = { group: "g", partitions: 8, rebalanceEvery: "20 millis" } as const
      yield* appendRounds(40, 0, 5)
      const scopes = yield* Effect.forEach([0, 1, 2], () => Scope.make())
      const members = yield* Effect.forEach(
        scopes,
        (scope) => Scope.extend(Subscription.forkGroupScoped(projection, options), scope)
      )
      // until every member has its share: 3, 3 and 2 partitions, disjoint, covering all 8
      const split = Effect.map(Effect.forEach(members, (m) => m.owned), (owned) => owned.map((o) => [...o]))
      const settled = (count: number) =>
        eventually(split, (owned) =>
          owned.flat().length === 8 && new Set(owned.flat()).size === 8 &&
          owned.filter((o) => o.length > 0).length === count)
      const three = yield* settled(3)
      assert.deepStrictEqual(three.map((o) => o.length).sort(), [2, 3, 3])

      // one leaves: the other two take its partitions over
      yield* Scope.close(scopes[1]!, Exit.void)
      const two = yield* Effect.map(
        eventually(
          Effect.forEach([members[0]!, members[2]!], (m) => m.owned),
          (owned) => owned.flat().length === 8 && owned.every((o) => o.length === 4)
        ),
        (owned) => owned.flat().sort()
      )
      assert.deepStrictEqual(two, [0, 1, 2, 3, 4, 5, 6, 7])
      yield* appendRounds(40, 5, 10)

      // another joins
      const late = yield* Scope.make()
      members[1] = yield* Scope.extend(Subscription.forkGroupScoped(projection, options), late)
      yield* settled(3)

      // every partition's checkpoint reaches the head; every stream's events came in order
      const last = 400
      const status = yield* eventually(
        Subscription.groupStatus(options),
        (rows) => rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) === last && row.lag === 0)
      )
      assert.strictEqual(status.length, 8)
      assert.isTrue(status.every((row) => Option.isSome(row.member)))
      for (let i = 0; i < 40; i++) {
        // at-least-once (memory checkpoints): a handed-over batch may be handled again, never out of order
        const seen = byStream.get(s(String(i)))!
        assert.isTrue(inOrder(seen), `stream ${i}: ${seen.join(",")}`)
        assert.deepStrictEqual([...new Set(seen)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      }
      assert.strictEqual(new Set(positions).size, last)
    }).pipe(Effect.provide(Stores)))

  it.live("a batched projection gets the events of its partition only; a clean leave forgets the holders", () =>
    Effect.gen(function*() {
      const batches: Array<ReadonlyArray<string>> = []
      const batched = Projection.makeBatched({
        name: "unused",
        handleBatch: (events) => Effect.sync(() => void batches.push(events.map((event) => event.streamId)))
      })
      yield* appendRounds(30, 0, 2)
      const options = { group: "b", partitions: 3, rebalanceEvery: "20 millis" } as const
      const scope = yield* Scope.make()
      yield* Scope.extend(Subscription.forkGroupScoped(batched, options), scope)
      yield* eventually(
        Subscription.groupStatus(options),
        (rows) => rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) === 60)
      )
      assert.isTrue(batches.length > 0)
      for (const batch of batches) {
        assert.isTrue(batch.length > 0, "no empty batch")
        const partitions = new Set(batch.map((streamId) => Subscription.partitionOf(streamId, 3)))
        assert.strictEqual(partitions.size, 1, `one partition per batch: ${batch.join(",")}`)
      }
      assert.strictEqual(batches.flat().length, 60)
      const before = yield* Subscription.groupStatus(options)
      assert.isTrue(before.every((row) => Option.isSome(row.member)))
      yield* Scope.close(scope, Exit.void)
      const after = yield* Subscription.groupStatus(options)
      assert.isTrue(after.every((row) => Option.isNone(row.member)), JSON.stringify(after))
    }).pipe(Effect.provide(Stores)))

  it.live("a deletion runs onDelete once, in the partition owning the stream, in order with its events", () =>
    Effect.gen(function*() {
      const partitions = 3
      const log: Array<{ readonly entry: string; readonly streamId: string; readonly partition: unknown }> = []
      /** the partition handling the entry: the name on the subscription's batch span */
      const record = (entry: string, streamId: string) =>
        Effect.flatMap(Effect.option(Effect.currentSpan), (span) =>
          Effect.sync(() =>
            void log.push({
              entry,
              streamId,
              partition: Option.getOrUndefined(span)?.attributes.get("subscription.name")
            })
          ))
      const projection = Projection.make({
        name: "unused",
        handle: (event) => record(String((event.data as { readonly n: number }).n), event.streamId),
        onDelete: (streamId) => record("deleted", streamId)
      })
      const store = yield* EventStore.EventStore
      const options = { group: "d", partitions, rebalanceEvery: "20 millis" } as const
      yield* Subscription.forkGroupScoped(projection, options)
      yield* appendRounds(8, 0, 2)
      // the partitions handle the events before the deletions remove them from the log
      yield* eventually(
        Subscription.groupStatus(options),
        (rows) => rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) === 16)
      )
      const deleted = [0, 1, 2, 3].map((i) => s(String(i)))
      yield* Effect.forEach(deleted, (streamId) => store.delete(streamId), { discard: true })
      let last = 0
      for (const streamId of deleted) {
        last = (yield* store.append(streamId, [ev(9)], ExpectedVersion.NoStream)).position
      }
      yield* eventually(
        Subscription.groupStatus(options),
        (rows) => rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) === last)
      )
      for (let i = 0; i < 8; i++) {
        const streamId = s(String(i))
        const owner = `d[${Subscription.partitionOf(streamId, partitions)}/${partitions}]`
        const mine = log.filter((row) => row.streamId === streamId)
        assert.deepStrictEqual(
          mine.map((row) => row.entry),
          i < 4 ? ["0", "1", "deleted", "9"] : ["0", "1"],
          `stream ${streamId}: its events and deletion once each, in order`
        )
        for (const row of mine) assert.strictEqual(row.partition, owner, `${streamId} ${row.entry} in its partition`)
      }
    }).pipe(Effect.scoped, Effect.provide(Stores)))

  it.live("a handler that fails for good stops the group with its error", () =>
    Effect.gen(function*() {
      yield* appendRounds(4, 0, 1)
      const failing = Projection.make({ name: "unused", handle: () => Effect.fail(new Boom()) })
      const exit = yield* Effect.exit(
        Subscription.runGroup(failing, {
          group: "f",
          partitions: 2,
          rebalanceEvery: "20 millis",
          retry: Schedule.recurs(1)
        }).pipe(Effect.timeout("5 seconds"))
      )
      assert.isTrue(Exit.isFailure(exit) && String(exit.cause).includes("Boom"), String(exit))
    }).pipe(Effect.provide(Stores)))
})
