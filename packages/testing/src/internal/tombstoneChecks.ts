/**
 * The deletion checks of `EventStoreContract`: `delete` leaves a tombstone in the global log at a new position
 * (after the stream's events, in commit order), yielded by `readAll` / `subscribe` only with `deletions: true`,
 * filtered by category, stream id and time but never by type; a tombstone in flight holds readers back like an
 * event in flight.
 *
 * `EventStoreContract` registers them (see `make`); the helpers it shares come in as `Tools`.
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import type * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ContractViolation } from "./contract.js"
import { ensure, ensureEqual, ok } from "./contract.js"
import { show } from "./values.js"

/** @internal */
export interface Fixture {
  readonly store: EventStore.EventStore.Service
  readonly category: string
  readonly stream: (id: string) => StreamId.StreamId
}

/** @internal */
export interface HeldDelete {
  readonly reserved: Effect.Effect<ReadonlyArray<number>>
  readonly release: Effect.Effect<void>
}

/** @internal */
export interface Tools {
  readonly fixture: (
    body: (fx: Fixture) => Effect.Effect<void, ContractViolation, EventStore.EventStore | Scope.Scope>
  ) => Effect.Effect<void, ContractViolation, EventStore.EventStore>
  readonly withPatience: <A, R>(
    effect: Effect.Effect<A, ContractViolation, R>,
    what: string
  ) => Effect.Effect<A, ContractViolation, R>
  /** the `holdNextDelete` of the caller's `CommitHold`, when it has one */
  readonly holdNextDelete: Effect.Effect<Option.Option<Effect.Effect<HeldDelete>>>
  readonly settle: Duration.Duration
}

/** @internal */
export const titles = {
  tombstones: "delete leaves a tombstone after the stream's events, read only with deletions: true, filtered by " +
    "category / stream id (never by type); none for a missing stream; again after re-creation",
  subscribeTombstones:
    "subscribe with deletions: true delivers the tombstone in position order with the events; without, never",
  subscribeHeldTombstone:
    "subscribe, readAll and headPosition never pass a tombstone in flight (needs CommitHold.holdNextDelete, else nothing)"
} as const

const ev = (type: string): EventStore.EventData => ({ type, data: {} })

const describeEntry = (entry: EventStore.LogEntry): string =>
  EventStore.isTombstone(entry)
    ? `tombstone ${entry.streamId} v${entry.version}`
    : `${entry.type} ${entry.streamId} v${entry.version}`

const strictlyIncreasing = (entries: ReadonlyArray<EventStore.LogEntry>): boolean =>
  entries.every((e, i) =>
    Number.isInteger(e.position) && e.position > 0 && (i === 0 || e.position > entries[i - 1]!.position)
  )

/** @internal */
export const make = (tools: Tools) => {
  const { fixture, withPatience } = tools

  const log = (
    store: EventStore.EventStore.Service,
    options: EventStore.ReadAllOptions
  ): Effect.Effect<ReadonlyArray<EventStore.LogEntry>, ContractViolation> =>
    ok(
      Effect.map(Stream.runCollect(store.readAll({ ...options, deletions: true })), Chunk.toArray),
      "readAll({ deletions: true })"
    )

  /** collects the subscription until `done`, calling `onEntry` after each entry */
  const collect = (
    stream: Stream.Stream<EventStore.LogEntry, EventStore.ReadAllError>,
    done: (entry: EventStore.LogEntry) => boolean,
    what: string,
    onEntry: (seen: ReadonlyArray<EventStore.LogEntry>) => Effect.Effect<void> = () => Effect.void
  ) => {
    const seen: Array<EventStore.LogEntry> = []
    return stream.pipe(
      Stream.tap((entry) => Effect.suspend(() => (seen.push(entry), onEntry(seen)))),
      Stream.takeUntil(done),
      Stream.runDrain,
      (effect) => ok(effect, what),
      Effect.as(seen as ReadonlyArray<EventStore.LogEntry>),
      (effect) => withPatience(effect, what)
    )
  }

  const tombstones = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const gone = stream("gone")
      const kept = stream("kept")
      const first = yield* ok(store.append(gone, [ev("A"), ev("B"), ev("C")], ExpectedVersion.NoStream), "append")
      const other = yield* ok(store.append(kept, [ev("K")], ExpectedVersion.NoStream), "append")
      yield* ok(store.delete(gone), "delete")
      const filter = { categories: [category] }
      const entries = yield* log(store, { filter })
      yield* ensureEqual(
        entries.map(describeEntry),
        [`K ${kept} v1`, `tombstone ${gone} v3`],
        "readAll with deletions: the stream's events are gone, its tombstone (with its last version) stays"
      )
      yield* ensure(strictlyIncreasing(entries), `positions must increase, got ${show(entries.map((e) => e.position))}`)
      const tombstone = entries[1]!
      yield* ensure(
        tombstone.position > Math.max(first.position, other.position),
        `the tombstone takes a new global position after every earlier commit: got ${tombstone.position}, ` +
          `earlier commits ended at ${Math.max(first.position, other.position)}`
      )
      yield* ensure(
        EventStore.isTombstone(tombstone) && tombstone.recordedAt.epochMillis > 0,
        "a tombstone carries its recordedAt"
      )
      const plain = yield* ok(
        Effect.map(Stream.runCollect(store.readAll({ filter })), Chunk.toArray),
        "readAll"
      )
      yield* ensureEqual(
        plain.map(describeEntry),
        [`K ${kept} v1`],
        "readAll without deletions never yields a tombstone"
      )
      yield* ensureEqual(
        (yield* log(store, { filter: { categories: [category], types: ["NoSuchType"] } })).map(describeEntry),
        [`tombstone ${gone} v3`],
        "a types filter never excludes tombstones (they have no type)"
      )
      yield* ensureEqual(
        (yield* log(store, { filter: { streamIds: [kept] } })).map(describeEntry),
        [`K ${kept} v1`],
        "a streamIds filter excludes other streams' tombstones"
      )
      yield* ensureEqual(
        (yield* log(store, { filter: { streamIds: [gone] } })).map(describeEntry),
        [`tombstone ${gone} v3`],
        "a streamIds filter keeps the stream's tombstone"
      )
      yield* ensureEqual(
        (yield* log(store, { filter, from: tombstone.position })).map(describeEntry),
        [`tombstone ${gone} v3`],
        "readAll from the tombstone's position starts with it"
      )
      yield* ensureEqual(
        (yield* log(store, { filter, limit: 1 })).map(describeEntry),
        [`K ${kept} v1`],
        "limit counts tombstones and events together"
      )
      yield* ok(store.delete(stream("never-existed")), "deleting a missing stream")
      yield* ensureEqual(
        (yield* log(store, { filter })).length,
        2,
        "deleting a stream without events writes no tombstone"
      )
      yield* ensureEqual(yield* ok(store.streamVersion(gone), "streamVersion"), 0, "a deleted stream is at version 0")
      const again = yield* ok(store.append(gone, [ev("Again")], ExpectedVersion.NoStream), "re-creating")
      yield* ensureEqual(again.version, 1, "a deleted stream is re-created from version 1")
      yield* ok(store.delete(gone), "deleting again")
      const after = yield* log(store, { filter })
      yield* ensureEqual(
        after.map(describeEntry),
        [`K ${kept} v1`, `tombstone ${gone} v3`, `tombstone ${gone} v1`],
        "each deletion leaves its own tombstone"
      )
      yield* ensure(strictlyIncreasing(after), `positions must increase, got ${show(after.map((e) => e.position))}`)
      yield* ensureEqual(
        Chunk.toArray(yield* ok(Stream.runCollect(store.read(gone)), "read")),
        [],
        "a deleted stream reads empty"
      )
    })
  )

  const subscribeTombstones = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const gone = stream("gone")
      const later = stream("later")
      const filter = { categories: [category] }
      const sawBoth = yield* Deferred.make<void>()
      const subscriber = yield* Effect.forkScoped(
        collect(
          store.subscribe({ filter, deletions: true }),
          (entry) => !EventStore.isTombstone(entry) && entry.type === "After",
          "subscribe({ deletions: true }) over a deletion",
          (seen) => seen.length === 2 ? Deferred.succeed(sawBoth, undefined) : Effect.void
        )
      )
      yield* ok(store.append(gone, [ev("A"), ev("B")], ExpectedVersion.NoStream), "append")
      yield* withPatience(Deferred.await(sawBoth), "the subscription delivering the stream's events")
      yield* ok(store.delete(gone), "delete")
      yield* ok(store.append(later, [ev("After")], ExpectedVersion.NoStream), "append")
      const delivered = yield* Fiber.join(subscriber)
      yield* ensureEqual(
        delivered.map(describeEntry),
        [`A ${gone} v1`, `B ${gone} v2`, `tombstone ${gone} v2`, `After ${later} v1`],
        "the tombstone is delivered live, once, in position order with the events"
      )
      yield* ensure(
        strictlyIncreasing(delivered),
        `positions must increase, got ${show(delivered.map((e) => e.position))}`
      )
      const plain = yield* collect(
        store.subscribe({ filter }),
        (entry) => !EventStore.isTombstone(entry) && entry.type === "After",
        "subscribe without deletions"
      )
      yield* ensureEqual(plain.map(describeEntry), [`After ${later} v1`], "subscribe without deletions: no tombstone")
      const caughtUp = yield* collect(
        store.subscribe({ filter, deletions: true }),
        (entry) => !EventStore.isTombstone(entry) && entry.type === "After",
        "subscribe({ deletions: true }) catching up"
      )
      yield* ensureEqual(
        caughtUp.map(describeEntry),
        [`tombstone ${gone} v2`, `After ${later} v1`],
        "catching up, the tombstone is delivered where the deletion happened"
      )
    })
  )

  const subscribeHeldTombstone = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const holdNextDelete = yield* tools.holdNextDelete
      if (Option.isNone(holdNextDelete)) return
      const gone = stream("gone")
      const fast = stream("fast")
      const filter = { categories: [category] }
      yield* ok(store.append(gone, [ev("A")], ExpectedVersion.NoStream), "append")
      const held = yield* holdNextDelete.value
      const deleting = yield* Effect.forkScoped(ok(store.delete(gone), "delete"))
      const reserved = yield* withPatience(held.reserved, "the held delete reserving its tombstone's position")
      yield* ok(store.append(fast, [ev("Fast")], ExpectedVersion.NoStream), "append")
      const subscriber = yield* Effect.forkScoped(
        collect(
          store.subscribe({ filter, deletions: true }),
          (entry) => !EventStore.isTombstone(entry) && entry.type === "Fast",
          "subscribe across a tombstone in flight"
        )
      )
      yield* Effect.sleep(tools.settle) // let the subscriber poll while the tombstone is in flight
      const during = yield* log(store, { filter })
      const headDuring = yield* ok(store.headPosition, "headPosition")
      yield* held.release
      yield* Fiber.join(deleting)
      const delivered = yield* Fiber.join(subscriber)
      yield* ensure(
        during.every((e) => EventStore.isTombstone(e) || e.type !== "Fast"),
        `readAll must not pass a tombstone in flight (position ${show(reserved)} held, a later event committed): ` +
          `got ${show(during.map(describeEntry))}`
      )
      yield* ensure(
        headDuring < reserved[0]!,
        `headPosition must not pass a tombstone in flight (position ${show(reserved)} held, headPosition ${headDuring})`
      )
      const all = yield* log(store, { filter })
      yield* ensureEqual(
        all.map(describeEntry),
        [`tombstone ${gone} v1`, `Fast ${fast} v1`],
        "after release: the tombstone, then the later event"
      )
      yield* ensureEqual(all[0]!.position, reserved[0], "the tombstone keeps its reserved position")
      yield* ensureEqual(
        delivered.filter((e) => EventStore.isTombstone(e) || e.type === "Fast").map(describeEntry),
        [`tombstone ${gone} v1`, `Fast ${fast} v1`],
        "subscribe delivers the tombstone in flight before the later event"
      )
    })
  )

  return { tombstones, subscribeTombstones, subscribeHeldTombstone }
}
