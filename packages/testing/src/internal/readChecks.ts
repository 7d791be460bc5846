/**
 * The read checks of `EventStoreContract`: `read` ranges, `readForFold`, `streamVersion`, `headPosition`, the
 * `readAll` filters and time range, and `delete` as readers see it.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as Chunk from "effect/Chunk"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { ensure, ensureEqual, ok } from "./contract.js"
import {
  collect,
  ensureIncreasingPositions,
  ev,
  fixture,
  numbered,
  payloads,
  positions,
  readAllOf,
  readStream,
  versions
} from "./fixture.js"
import { show } from "./values.js"

export const readRangesCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("ranges")
    yield* ok(store.append(s, numbered(10), ExpectedVersion.NoStream), "append")
    const cases: ReadonlyArray<readonly [EventStore.ReadOptions, ReadonlyArray<number>]> = [
      [{}, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ direction: "forward" }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ direction: "backward" }, [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]],
      [{ from: 3, to: 6 }, [3, 4, 5, 6]],
      [{ from: 3, to: 6, direction: "backward" }, [6, 5, 4, 3]],
      [{ from: 8 }, [8, 9, 10]],
      [{ to: 2 }, [1, 2]],
      [{ limit: 3 }, [1, 2, 3]],
      [{ direction: "backward", limit: 3 }, [10, 9, 8]],
      [{ from: 3, to: 9, limit: 2 }, [3, 4]],
      [{ from: 3, to: 9, direction: "backward", limit: 2 }, [9, 8]],
      [{ from: 11 }, []],
      [{ from: 5, to: 4 }, []],
      [{ to: 100 }, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
      [{ limit: 0 }, []]
    ]
    for (const [options, expected] of cases) {
      const events = yield* readStream(store, s, options)
      yield* ensureEqual(versions(events), expected, `read(${show(options)}) versions`)
      yield* ensureEqual(payloads(events), expected.map((n) => ({ n })), `read(${show(options)}) data`)
    }
    yield* ensureEqual(yield* readStream(store, stream("missing")), [], "reading a missing stream gives no events")
  })
)

export const readForFoldCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("fold")
    const events = numbered(6).map((e, i) => i % 2 === 0 ? e : ev("Other", { n: i + 1 }, { correlationId: "c" }))
    yield* ok(store.append(s, events.slice(0, 4), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(s, events.slice(4), ExpectedVersion.Exact(4)), "append")
    const cases: ReadonlyArray<EventStore.FoldOptions> = [
      {},
      { from: 3 },
      { to: 2 },
      { from: 2, to: 5 },
      { from: 7 },
      { from: 4, to: 3 },
      { to: 100 },
      { from: 0 },
      { limit: 2 },
      { from: 2, limit: 3 },
      { from: 5, limit: 10 },
      { from: 2, to: 4, limit: 2 },
      { limit: 0 }
    ]
    for (const options of cases) {
      const recorded = yield* readStream(store, s, options)
      const folded = yield* ok(store.readForFold(s, options), `readForFold(${show(options)})`)
      yield* ensureEqual(
        folded.map(({ data, position, type, version }) => ({ version, position, type, data })),
        recorded.map(({ data, position, type, version }) => ({ version, position, type, data })),
        `readForFold(${show(options)}) gives read's versions, positions, types and data`
      )
    }
    // a read with more options than these is still read forward
    const widened: EventStore.ReadOptions = { from: 2, direction: "backward", limit: 2 }
    const forward = yield* ok(store.readForFold(s, widened), "readForFold(ReadOptions)")
    yield* ensureEqual(forward.map((e) => e.version), [2, 3], "readForFold reads forward from `from`")
    yield* ensureEqual(
      yield* ok(store.readForFold(stream("none")), "readForFold"),
      [],
      "readForFold of a missing stream gives no events"
    )
    // re-created after a delete: new positions (a cached state is checked by them)
    const before = yield* readStream(store, s)
    yield* ok(store.delete(s), "delete")
    yield* ok(store.append(s, events.slice(0, 2), ExpectedVersion.NoStream), "append")
    const after = yield* ok(store.readForFold(s), "readForFold")
    yield* ensureEqual(after.map((e) => e.version), [1, 2], "readForFold after a delete and a re-creation")
    yield* ensure(
      after.every((e) => !before.some((old) => old.position === e.position)),
      `a re-created stream's events get new positions, got ${show(positions(before))} then ${
        show(after.map((e) => e.position))
      }`
    )
  })
)

export const streamVersionCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("sv")
    const other = stream("other")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a missing stream is at version 0")
    yield* ok(store.append(s, numbered(3), ExpectedVersion.Any), "append")
    yield* ok(store.append(other, numbered(4), ExpectedVersion.Any), "append")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.Any), "append")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 5, "streamVersion counts this stream only")
    yield* ensureEqual(yield* ok(store.streamVersion(other), "streamVersion"), 4, "streamVersion of another stream")
  })
)

export const headPositionCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("head")
    const first = yield* ok(store.append(s, numbered(3), ExpectedVersion.NoStream), "append")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      first.position,
      "headPosition is the position of the last committed event"
    )
    const second = yield* ok(store.append(stream("head2"), numbered(2), ExpectedVersion.NoStream), "append")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      second.position,
      "headPosition follows appends"
    )
    // a tombstone takes a position of the global log like an event: a log that ends with a deletion ends there
    yield* ok(store.delete(stream("head2")), "delete")
    const entries = yield* ok(
      Effect.map(
        Stream.runCollect(store.readAll({ filter: { streamIds: [stream("head2")] }, deletions: true })),
        Chunk.toArray
      ),
      "readAll({ deletions: true })"
    )
    const tombstone = entries.find(EventStore.isTombstone)
    yield* ensure(tombstone !== undefined, "delete leaves a tombstone")
    yield* ensureEqual(
      yield* ok(store.headPosition, "headPosition"),
      tombstone!.position,
      "headPosition counts tombstones: a log whose last entry is a deletion is at the tombstone's position"
    )
  })
)

export const readAllFiltersCheck = fixture(({ category, newCategory, store, stream, track }) =>
  Effect.gen(function*() {
    const otherCategory = yield* newCategory
    const a1 = stream("1")
    const a2 = stream("2")
    const b1 = track(StreamId.unsafeMake(otherCategory, "1"))
    yield* ok(store.append(a1, [ev("T1", { k: "a1-1" }), ev("T2", { k: "a1-2" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(b1, [ev("T1", { k: "b1-1" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(a2, [ev("T2", { k: "a2-1" })], ExpectedVersion.NoStream), "append")
    yield* ok(store.append(a1, [ev("T1", { k: "a1-3" })], ExpectedVersion.Exact(2)), "append")
    yield* ok(store.append(b1, [ev("T2", { k: "b1-2" })], ExpectedVersion.Exact(1)), "append")
    const keys = (events: ReadonlyArray<EventStore.RecordedEvent>) =>
      events.map((e) => (e.data as { readonly k: string }).k)
    const both = [category, otherCategory]
    const all = yield* readAllOf(store, { filter: { categories: both } })
    yield* ensureEqual(keys(all), ["a1-1", "a1-2", "b1-1", "a2-1", "a1-3", "b1-2"], "readAll is in commit order")
    yield* ensureIncreasingPositions(all, "readAll")
    const cases: ReadonlyArray<readonly [string, EventStore.ReadAllOptions, ReadonlyArray<string>]> = [
      ["one category", { filter: { categories: [category] } }, ["a1-1", "a1-2", "a2-1", "a1-3"]],
      ["category and type", { filter: { categories: both, types: ["T1"] } }, ["a1-1", "b1-1", "a1-3"]],
      ["types (or)", { filter: { categories: [otherCategory], types: ["T1", "T2"] } }, ["b1-1", "b1-2"]],
      ["stream ids", { filter: { streamIds: [a2, b1] } }, ["b1-1", "a2-1", "b1-2"]],
      ["stream id and type", { filter: { streamIds: [a1], types: ["T2"] } }, ["a1-2"]],
      ["from a position (inclusive)", { from: all[2]!.position, filter: { categories: both } }, [
        "b1-1",
        "a2-1",
        "a1-3",
        "b1-2"
      ]],
      ["limit", { limit: 2, filter: { categories: both } }, ["a1-1", "a1-2"]],
      ["limit 0", { limit: 0, filter: { categories: both } }, []],
      ["from and limit", { from: all[1]!.position, limit: 3, filter: { categories: [category] } }, [
        "a1-2",
        "a2-1",
        "a1-3"
      ]],
      ["a category with no events", { filter: { categories: [`${category}zz`] } }, []],
      ["an unknown type", { filter: { categories: both, types: ["Nope"] } }, []],
      ["from beyond the end", { from: all[5]!.position + 1_000_000, filter: { categories: both } }, []]
    ]
    for (const [what, options, expected] of cases) {
      const events = yield* readAllOf(store, options)
      yield* ensureEqual(keys(events), expected, `readAll filter: ${what}`)
    }
  })
)

export const readAllTimeRangeCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("time")
    const batches: Array<ReadonlyArray<EventStore.RecordedEvent>> = []
    for (let i = 0; i < 3; i++) {
      if (i > 0) yield* Effect.sleep("40 millis")
      yield* ok(store.append(s, numbered(2, `Batch${i}`), ExpectedVersion.Any), "append")
      batches.push((yield* readStream(store, s)).slice(2 * i))
    }
    const times = batches.map((batch) => batch.map((e) => e.recordedAt.epochMillis))
    for (let i = 1; i < 3; i++) {
      yield* ensure(
        Math.min(...times[i]!) > Math.max(...times[i - 1]!),
        `recordedAt must follow commit time: batches 40ms apart got ${show(times)}`
      )
    }
    const mid = (i: number) =>
      DateTime.unsafeMake(Math.floor((Math.max(...times[i]!) + Math.min(...times[i + 1]!)) / 2))
    const types = (events: ReadonlyArray<EventStore.RecordedEvent>) => events.map((e) => e.type)
    const cases: ReadonlyArray<readonly [string, EventStore.Filter, ReadonlyArray<string>]> = [
      ["after", { after: mid(0) }, ["Batch1", "Batch1", "Batch2", "Batch2"]],
      ["before", { before: mid(0) }, ["Batch0", "Batch0"]],
      ["after and before", { after: mid(0), before: mid(1) }, ["Batch1", "Batch1"]],
      ["before the first", { before: DateTime.unsafeMake(Math.min(...times[0]!) - 1000) }, []],
      ["after the last", { after: DateTime.unsafeMake(Math.max(...times[2]!) + 1000) }, []]
    ]
    for (const [what, filter, expected] of cases) {
      const events = yield* readAllOf(store, { filter: { ...filter, categories: [category] } })
      yield* ensureEqual(types(events), expected, `readAll time filter: ${what}`)
    }
  })
)

export const deleteCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("deleted")
    const kept = stream("kept")
    yield* ok(store.append(s, numbered(3), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(kept, numbered(2), ExpectedVersion.NoStream), "append")
    yield* ok(store.delete(s), "delete")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a deleted stream is at version 0")
    yield* ensureEqual(yield* readStream(store, s), [], "a deleted stream reads empty")
    yield* ensureEqual(
      yield* readAllOf(store, { filter: { streamIds: [s] } }),
      [],
      "a deleted stream's events are gone from readAll"
    )
    const rest = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(rest.map((e) => e.streamId), [kept, kept], "deleting a stream leaves the others alone")
    yield* ensureEqual(yield* ok(store.streamVersion(kept), "streamVersion"), 2, "other streams keep their version")
    const again = yield* ok(store.append(s, [ev("Again", { n: 1 })], ExpectedVersion.NoStream), "re-creating")
    yield* ensureEqual(again.version, 1, "a deleted stream can be re-created from version 1")
    yield* ensureEqual((yield* readStream(store, s)).map((e) => e.type), ["Again"], "only the new events are read")
    const subscribed = yield* collect(
      store.subscribe({ filter: { categories: [category] } }),
      (event) => event.type === "Again",
      "subscribe over a deleted stream"
    )
    yield* ensureEqual(
      subscribed.map((e) => [e.streamId, e.type]),
      [[kept, "Numbered"], [kept, "Numbered"], [s, "Again"]],
      "a subscription skips deleted events and goes on"
    )
    yield* ok(store.delete(stream("never-existed")), "deleting a missing stream")
  })
)
