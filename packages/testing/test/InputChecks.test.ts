import { EventStore, InMemoryEventStore } from "@effect-eventsourcing/core"
import { describe } from "@effect/vitest"
import { Effect, Layer, Stream } from "effect"
import { violates } from "./violates.js"

// what a store implements (`readAll` / `subscribe` yield tombstones when asked: no overloads to satisfy)
type Impl = Parameters<typeof EventStore.make>[0]

/**
 * A store built WITHOUT `EventStore.make` (so nothing checks its input) around the in-memory one, with the answers
 * to invalid input replaced by `f`: the shape of a store that validates on its own, or not at all.
 */
const unchecked = (f: (inner: EventStore.EventStore.Service) => Partial<Impl>): Layer.Layer<EventStore.EventStore> =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(InMemoryEventStore.make(), (inner): EventStore.EventStore.Service => ({
      ...inner,
      ...f(inner) as Partial<EventStore.EventStore.Service>,
      [EventStore.TypeId]: EventStore.TypeId
    }))
  )

/** The in-memory store with some operations replaced (through `EventStore.make`, which still checks input). */
const tweaked = (f: (inner: EventStore.EventStore.Service) => Partial<Impl>): Layer.Layer<EventStore.EventStore> =>
  Layer.effect(
    EventStore.EventStore,
    Effect.map(InMemoryEventStore.make(), (inner) => EventStore.make({ ...inner, ...f(inner) }))
  )

const isInvalid = (e: { readonly _tag: string }) => e._tag === "InvalidArgument" || e._tag === "InvalidStreamId"

describe("EventStoreContract bad-input checks have teeth", () => {
  // accepts whatever it is given: invalid appends "succeed" (writing nothing), invalid reads are empty
  const acceptsAnything = unchecked((inner) => ({
    append: (streamId, events, expected) =>
      Effect.catchIf(
        inner.append(streamId, events, expected),
        isInvalid,
        () => Effect.succeed({ version: 0, position: 0 })
      ),
    appendMany: (requests) => Effect.catchIf(inner.appendMany(requests), isInvalid, () => Effect.succeed([])),
    read: (streamId, options) => Stream.catchAll(inner.read(streamId, options), () => Stream.empty),
    readAll: (options) => Stream.catchAll(inner.readAll(options), () => Stream.empty),
    subscribe: (options) => Stream.catchAll(inner.subscribe(options), () => Stream.never)
  }))
  violates("a store accepting any stream id", acceptsAnything, "invalidStreamIds", "but it succeeded")
  violates("a store accepting any event", acceptsAnything, "invalidEvents", "but it succeeded")
  violates("a store accepting any number", acceptsAnything, "invalidNumbers", "expected InvalidArgument")

  // refuses bad input, but as an infrastructure failure (the PostgreSQL store did so before EventStore.make checked)
  const untyped = unchecked((inner) => ({
    append: (streamId, events, expected) =>
      Effect.mapError(
        inner.append(streamId, events, expected),
        (e) => isInvalid(e) ? new EventStore.EventStoreError({ method: "append", cause: e }) : e
      )
  }))
  violates("a store refusing bad stream ids untyped", untyped, "invalidStreamIds", "got EventStoreError")
  violates("a store refusing bad events untyped", untyped, "invalidEvents", "got EventStoreError")

  // the in-memory store before the fix: an impossible Exact version is a ConcurrencyConflict
  const conflicts = unchecked((inner) => ({
    append: (streamId, events, expected) =>
      Effect.catchIf(
        inner.append(streamId, events, expected),
        isInvalid,
        () => Effect.fail(new EventStore.ConcurrencyConflict({ streamId, expected, actual: 0 }))
      )
  }))
  violates("a store reporting Exact(-1) as a conflict", conflicts, "invalidNumbers", "got ConcurrencyConflict")

  // keeps ids as given: an upper-case id and its lower-cased re-send are two events
  const caseSensitive = unchecked((inner) => ({
    append: (streamId, events, expected) =>
      inner.append(
        streamId,
        events.map((e) =>
          e.id !== undefined && e.id !== e.id.toLowerCase() ? { ...e, id: `00000000${e.id.slice(8)}` } : e
        ),
        expected
      )
  }))
  violates("a store comparing event ids case-sensitively", caseSensitive, "eventIdCase", "in lower case")

  // names the first id of the batch (a new one) instead of the stored one
  const namesNewId = tweaked((inner) => ({
    append: (streamId, events, expected) =>
      Effect.catchTag(
        inner.append(streamId, events, expected),
        "EventIdConflict",
        (e) => Effect.fail(new EventStore.EventIdConflict({ ...e, eventId: events[0]?.id ?? "" }))
      )
  }))
  violates("a store naming the new id of a mixed batch", namesNewId, "eventIdConflictNamesStoredId", "must name")
})
