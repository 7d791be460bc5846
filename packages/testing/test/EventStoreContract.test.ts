import { EventStore, ExpectedVersion, InMemoryEventStore, StoreKit } from "@effect-eventsourcing/core"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import { describe } from "@effect/vitest"
import { Chunk, Context, DateTime, Deferred, Duration, Effect, FiberId, Layer, Stream } from "effect"
import { violates } from "./violates.js"

// The suite itself runs on the in-memory store in packages/core (test/EventStoreContract.test.ts) and on PostgreSQL in
// packages/postgres; here it is shown to fail on broken stores.

// what a store implements (`readAll` / `subscribe` yield tombstones when asked: no overloads to satisfy)
type Impl = Parameters<typeof EventStore.make>[0]

/** The in-memory store with some operations replaced by broken ones. */
const broken = (
  f: (inner: EventStore.EventStore.Service) => Partial<Impl>
): Layer.Layer<EventStore.EventStore | EventStoreContract.CommitHold> =>
  Layer.effectContext(
    Effect.map(InMemoryEventStore.makeWithControl(), ({ control, store }) =>
      Context.make(EventStore.EventStore, EventStore.make({ ...store, ...f(store) })).pipe(
        Context.add(EventStoreContract.CommitHold, control)
      ))
  )

/**
 * A store with the classic gap bug: positions are taken when a commit starts but become visible when it ends, and
 * readers move their cursor past whatever they have seen, so a slow commit below the cursor is skipped forever.
 */
const naiveStore = (
  latency: (position: number) => number
): Layer.Layer<EventStore.EventStore | EventStoreContract.CommitHold> =>
  Layer.effectContext(
    Effect.sync(() => {
      const streams = new Map<string, Array<EventStore.RecordedEvent>>()
      const visible: Array<EventStore.RecordedEvent> = []
      let next = 1
      const holds: Array<{ reserved: Deferred.Deferred<ReadonlyArray<number>>; release: Deferred.Deferred<void> }> = []
      const committed = (from: number, filter?: EventStore.Filter) =>
        visible.filter((e) => e.position >= from && StoreKit.matchesFilter(filter, e)).sort((a, b) =>
          a.position - b.position
        )
      const append: Impl["append"] = (streamId, events, expected) =>
        Effect.gen(function*() {
          const actual = streams.get(streamId)?.length ?? 0
          if (!ExpectedVersion.matches(expected, actual)) {
            return yield* new EventStore.ConcurrencyConflict({ streamId, expected, actual })
          }
          const recordedAt = yield* DateTime.now
          const recorded = events.map((e, i): EventStore.RecordedEvent => ({
            id: e.id ?? globalThis.crypto.randomUUID(),
            streamId,
            version: actual + i + 1,
            position: next++,
            type: e.type,
            data: e.data,
            metadata: e.metadata ?? {},
            recordedAt
          }))
          // a commit takes a while (a database round trip): concurrent commits finish out of position order
          const delay = latency(recorded[0]?.position ?? 0)
          if (delay > 0) yield* Effect.sleep(Duration.millis(delay))
          const hold = holds.shift()
          if (hold !== undefined) {
            yield* Deferred.succeed(hold.reserved, recorded.map((e) => e.position))
            yield* Deferred.await(hold.release)
          }
          streams.set(streamId, [...(streams.get(streamId) ?? []), ...recorded])
          visible.push(...recorded)
          return { version: actual + events.length, position: recorded.at(-1)?.position ?? 0 }
        })
      const store = EventStore.make({
        append,
        appendMany: (requests) => Effect.forEach(requests, (r) => append(r.streamId, r.events, r.expected)),
        read: (streamId) => Stream.fromIterable(streams.get(streamId) ?? []),
        streamVersion: (streamId) => Effect.sync(() => streams.get(streamId)?.length ?? 0),
        readAll: (options) => Stream.suspend(() => Stream.fromIterable(committed(options?.from ?? 1, options?.filter))),
        subscribe: (options) =>
          Stream.suspend(() => {
            let cursor = (options?.from ?? 1) - 1
            return Stream.repeatEffectChunk(Effect.suspend(() => {
              const batch = committed(cursor + 1, undefined)
              if (batch.length === 0) return Effect.as(Effect.sleep("5 millis"), Chunk.empty())
              cursor = batch.at(-1)!.position
              return Effect.succeed(
                Chunk.fromIterable(batch.filter((e) => StoreKit.matchesFilter(options?.filter, e)))
              )
            }))
          }),
        delete: (streamId) => Effect.sync(() => void streams.delete(streamId)),
        lock: () => Effect.void,
        headPosition: Effect.sync(() => visible.reduce((max, e) => Math.max(max, e.position), 0))
      })
      const hold: EventStoreContract.CommitHold["Type"] = {
        holdNextCommit: Effect.sync(() => {
          const hold = {
            reserved: Deferred.unsafeMake<ReadonlyArray<number>>(FiberId.none),
            release: Deferred.unsafeMake<void>(FiberId.none)
          }
          holds.push(hold)
          return { reserved: Deferred.await(hold.reserved), release: Deferred.succeed(hold.release, undefined) }
        })
      }
      return Context.make(EventStore.EventStore, store).pipe(Context.add(EventStoreContract.CommitHold, hold))
    })
  )

describe("EventStoreContract has teeth: broken stores fail the relevant checks", () => {
  const ignoresExpected = broken((inner) => ({
    append: (streamId, events) => inner.append(streamId, events, ExpectedVersion.Any),
    appendMany: (requests) => inner.appendMany(requests.map((r) => ({ ...r, expected: ExpectedVersion.Any })))
  }))
  violates("a store ignoring expected versions", ignoresExpected, "expectedVersions", "expected a ConcurrencyConflict")
  violates("a store ignoring expected versions", ignoresExpected, "race", "winners")
  violates("a store ignoring expected versions", ignoresExpected, "batchAtomicity", "expected a ConcurrencyConflict")

  const wrongActual = broken((inner) => ({
    append: (streamId, events, expected) =>
      Effect.catchTag(
        inner.append(streamId, events, expected),
        "ConcurrencyConflict",
        (e) => Effect.fail(new EventStore.ConcurrencyConflict({ ...e, actual: -1 }))
      )
  }))
  violates("a store reporting a wrong actual version", wrongActual, "expectedVersions", "the real actual version")

  const nonAtomicMany = broken((inner) => ({
    appendMany: (requests) => Effect.forEach(requests, (r) => inner.append(r.streamId, r.events, r.expected))
  }))
  violates("a store with a non-atomic appendMany", nonAtomicMany, "appendManyAtomicity", "writes nothing")

  const ignoresDirection = broken((inner) => ({
    read: (streamId, options) => inner.read(streamId, { ...options, direction: "forward" })
  }))
  violates("a store ignoring read direction", ignoresDirection, "readRanges", "backward")

  const foldDropsLast = broken((inner) => ({
    readForFold: (streamId, options) =>
      Effect.map(inner.readForFold(streamId, options), (events) => events.slice(0, -1))
  }))
  violates("a store whose readForFold drops the last event", foldDropsLast, "readForFold", "gives read's versions")

  const foldIgnoresFrom = broken((inner) => ({ readForFold: (streamId) => inner.readForFold(streamId) }))
  violates("a store whose readForFold ignores `from`", foldIgnoresFrom, "readForFold", "gives read's versions")

  const foldIgnoresLimit = broken((inner) => ({
    readForFold: (streamId, options) =>
      inner.readForFold(streamId, {
        ...(options?.from !== undefined && { from: options.from }),
        ...(options?.to !== undefined && { to: options.to })
      })
  }))
  violates("a store whose readForFold ignores `limit`", foldIgnoresLimit, "readForFold", "gives read's versions")

  const reusesPositions = broken((inner) => ({
    readForFold: (streamId, options) =>
      Effect.map(inner.readForFold(streamId, options), (events) => events.map((e) => ({ ...e, position: e.version })))
  }))
  violates("a store whose readForFold reports reused positions", reusesPositions, "readForFold", "new positions")

  const ignoresLimit = broken((inner) => ({
    readAll: (options) => inner.readAll({ ...options, limit: undefined as never })
  }))
  violates("a store ignoring readAll limits", ignoresLimit, "readAllFilters", "limit")

  const ignoresTime = broken((inner) => ({
    readAll: (options) => inner.readAll({ ...options, filter: { ...options?.filter, after: undefined as never } })
  }))
  violates("a store ignoring the time filter", ignoresTime, "readAllTimeRange", "after")

  const keepsDeleted = broken(() => ({ delete: () => Effect.void }))
  violates("a store whose delete does nothing", keepsDeleted, "delete", "version 0")

  const noTombstones = broken((inner) => ({
    readAll: (options) => inner.readAll({ ...options, deletions: false })
  }))
  violates("a store leaving no tombstone", noTombstones, "tombstones", "its tombstone")

  const alwaysTombstones = broken((inner) => ({
    subscribe: (options) => inner.subscribe({ ...options, deletions: true })
  }))
  violates("a store delivering tombstones unasked", alwaysTombstones, "subscribeTombstones", "no tombstone")

  const liveWithoutTombstones = broken((inner) => ({
    subscribe: (options) => inner.subscribe({ ...options, deletions: false })
  }))
  violates("a store whose subscriptions drop tombstones", liveWithoutTombstones, "subscribeTombstones", "once")

  const noLock = broken(() => ({ lock: () => Effect.void }))
  violates("a store whose lock does nothing", noLock, "lockExclusive", "granted while the first was held")

  const oneGlobalLock = broken((inner) => ({ lock: () => inner.lock("global-lock" as never) }))
  violates("a store with one lock for all streams", oneGlobalLock, "lockDoesNotBlock", "locking another stream")

  const lockedReads = broken((inner) => ({
    read: (streamId, options) =>
      Stream.unwrapScoped(Effect.as(Effect.orDie(inner.lock(streamId)), inner.read(streamId, options)))
  }))
  violates("a store whose reads wait for locks", lockedReads, "lockDoesNotBlock", "read of a locked stream")

  const reversed = broken((inner) => ({
    subscribe: (options) => Stream.mapChunks(inner.subscribe(options), Chunk.reverse)
  }))
  violates("a store delivering chunks in reverse", reversed, "subscribeCatchUpThenLive", "position")

  const duplicating = broken((inner) => ({
    subscribe: (options) =>
      Stream.flatMap(inner.subscribe(options), (e) => e.version === 2 ? Stream.make(e, e) : Stream.make(e))
  }))
  violates("a store delivering an event twice", duplicating, "subscribeConcurrentWriters", "more than once")

  violates(
    "a store with the classic gap bug",
    naiveStore(() => 0),
    "subscribeHeldCommit",
    "subscribe across a commit in flight"
  )
  const headPastHoles = broken((inner) => {
    let highest = 0
    const seen = (result: EventStore.AppendResult) =>
      Effect.sync(() => void (highest = Math.max(highest, result.position)))
    return {
      append: (streamId, events, expected) => Effect.tap(inner.append(streamId, events, expected), seen),
      headPosition: Effect.sync(() => highest)
    }
  })
  violates("a store whose headPosition passes a commit in flight", headPastHoles, "subscribeHeldCommit", "headPosition")
  const headStuck = broken(() => ({ headPosition: Effect.succeed(0) }))
  violates("a store whose headPosition never moves", headStuck, "headPosition", "last committed event")
  const headWithoutTombstones = broken((inner) => ({
    headPosition: Effect.map(
      Stream.runCollect(inner.readAll()),
      (events) => Chunk.reduce(events, 0, (max, e) => Math.max(max, e.position))
    ).pipe(Effect.orDie)
  }))
  violates("a store whose headPosition ignores tombstones", headWithoutTombstones, "headPosition", "counts tombstones")
  violates(
    "a store with the classic gap bug, under real concurrency",
    naiveStore((position) => (position * 7) % 5),
    "subscribeConcurrentWriters",
    "events never delivered"
  )

  const forgetsIds = broken((inner) => ({
    append: (streamId, events, expected) => inner.append(streamId, events.map(({ id: _, ...rest }) => rest), expected)
  }))
  violates("a store ignoring event ids", forgetsIds, "idempotency", "re-sending a committed batch")

  const normalizes = broken((inner) => ({
    append: (streamId, events, expected) =>
      inner.append(
        streamId,
        events.map((e) => ({ ...e, data: JSON.parse(JSON.stringify(e.data).normalize("NFC")) })),
        expected
      )
  }))
  violates("a store normalizing unicode", normalizes, "unicode", "round-trips")

  const truncates = broken((inner) => ({
    append: (streamId, events, expected) =>
      inner.append(
        streamId,
        events.map((e) => ({
          ...e,
          data: JSON.parse(JSON.stringify(e.data, (_, v) => typeof v === "string" ? v.slice(0, 1 << 20) : v))
        })),
        expected
      )
  }))
  violates("a store truncating large strings", truncates, "largePayload", "must round-trip unchanged")

  const quoteInjection = broken((inner) => ({
    append: (streamId, events, expected) =>
      streamId.includes("'")
        ? Effect.fail(new EventStore.EventStoreError({ method: "append", cause: "syntax error at or near" }))
        : inner.append(streamId, events, expected)
  }))
  violates("a store breaking on quotes in stream ids", quoteInjection, "hostileStreamIds", "append to stream id")
})
