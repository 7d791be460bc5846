/**
 * The `EventStore` port: an untyped (encoded JSON) service that every store implements with the same semantics.
 *
 * - A stream holds the events of one aggregate instance; versions start at 1, an empty stream has version 0.
 * - Every event gets a global position at commit. Positions increase in the order readers see commits; holes are
 *   allowed, reordering is not: a reader that has seen position `p` is never later handed a new event below `p`.
 * - `append` and `appendMany` are atomic and check an {@link ExpectedVersion} per stream.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Aggregate from "./Aggregate.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import type { StreamId } from "./StreamId.js"

/**
 * Metadata stored with every event: correlation and causation ids plus any JSON fields of the user's.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventMetadata {
  readonly correlationId?: string
  readonly causationId?: string
  readonly [key: string]: unknown
}

/**
 * An event to append, already encoded: `data` and `metadata` must be JSON values.
 *
 * @since 0.1.0
 * @category models
 */
export interface EventData {
  /** A uuid chosen by the caller; the store generates one when absent. */
  readonly id?: string
  readonly type: string
  readonly data: unknown
  readonly metadata?: EventMetadata
}

/**
 * An event as it was committed.
 *
 * @since 0.1.0
 * @category models
 */
export interface RecordedEvent {
  readonly id: string
  readonly streamId: StreamId
  readonly version: number
  readonly position: number
  readonly type: string
  readonly data: unknown
  readonly metadata: EventMetadata
  readonly recordedAt: DateTime.Utc
}

/**
 * The outcome of an append: the stream's new version and the global position of its last event (for an empty
 * append, the stream's current version and position 0).
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendResult {
  readonly version: number
  readonly position: number
}

/**
 * One stream's part of an {@link EventStore.Service.appendMany} unit of work.
 *
 * @since 0.1.0
 * @category models
 */
export interface AppendRequest {
  readonly streamId: StreamId
  readonly events: ReadonlyArray<EventData>
  readonly expected: ExpectedVersion.ExpectedVersion
}

/**
 * Options of {@link EventStore.Service.read}. `from` and `to` are inclusive version bounds whatever the direction
 * (`from` defaults to 1, `to` to the last version); `direction` only orders the result.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions {
  readonly from?: number
  readonly to?: number
  readonly direction?: "forward" | "backward"
  readonly limit?: number
}

/**
 * A filter over the global log. Every given field must match (and); inside a field, any value may match (or).
 * `after` and `before` are exclusive bounds on `recordedAt`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  readonly categories?: ReadonlyArray<string>
  readonly types?: ReadonlyArray<string>
  readonly streamIds?: ReadonlyArray<StreamId>
  readonly after?: DateTime.DateTime
  readonly before?: DateTime.DateTime
}

/**
 * Options of {@link EventStore.Service.readAll}: `from` is an inclusive global position (default: the start).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReadAllOptions {
  readonly from?: number
  readonly filter?: Filter
  readonly limit?: number
}

/**
 * Options of {@link EventStore.Service.subscribe}: `from` is an inclusive global position (default: the start).
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  readonly from?: number
  readonly filter?: Filter
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/EventStore")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * The stream's version did not satisfy the expected version; nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConcurrencyConflict extends Schema.TaggedError<ConcurrencyConflict>()("ConcurrencyConflict", {
  streamId: Schema.String,
  expected: ExpectedVersion.ExpectedVersion,
  actual: Schema.Number
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Stream ${this.streamId} is at version ${this.actual}, expected ${ExpectedVersion.format(this.expected)}`
  }
}

/**
 * The aggregate's stream has no events.
 *
 * @deprecated Moved to `Aggregate.AggregateNotFound` (the same class: `instanceof` and `catchTag` work with either).
 * @since 0.1.0
 * @category errors
 */
export const AggregateNotFound: typeof Aggregate.AggregateNotFound = Aggregate.AggregateNotFound

/**
 * @deprecated Moved to `Aggregate.AggregateNotFound`.
 * @since 0.1.0
 * @category errors
 */
export type AggregateNotFound = Aggregate.AggregateNotFound

/**
 * A stored event no longer decodes with the aggregate's events Schema.
 *
 * @deprecated Moved to `Aggregate.EventDecodeError` (the same class: `instanceof` and `catchTag` work with either).
 * @since 0.1.0
 * @category errors
 */
export const EventDecodeError: typeof Aggregate.EventDecodeError = Aggregate.EventDecodeError

/**
 * @deprecated Moved to `Aggregate.EventDecodeError`.
 * @since 0.1.0
 * @category errors
 */
export type EventDecodeError = Aggregate.EventDecodeError

/**
 * An event could not be encoded with the aggregate's events Schema; nothing was written.
 *
 * @deprecated Moved to `Aggregate.EventEncodeError` (the same class: `instanceof` and `catchTag` work with either).
 * @since 0.1.0
 * @category errors
 */
export const EventEncodeError: typeof Aggregate.EventEncodeError = Aggregate.EventEncodeError

/**
 * @deprecated Moved to `Aggregate.EventEncodeError`.
 * @since 0.1.0
 * @category errors
 */
export type EventEncodeError = Aggregate.EventEncodeError

/**
 * An event id given by the caller is already stored, but not as part of the same batch: another stream, another
 * version, or other content. Re-sending exactly a batch that was committed (same ids, same stream, same order and
 * content) is not an error: the append returns the original result. Nothing was written.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventIdConflict extends Schema.TaggedError<EventIdConflict>()("EventIdConflict", {
  streamId: Schema.String,
  eventId: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Event id ${this.eventId} appended to ${this.streamId} conflicts with a stored event: ${this.reason}`
  }
}

/**
 * The connection was lost while committing and the store could not find out whether the commit happened (it checks
 * by event id when it can). Retrying with the same event ids is safe: an already committed batch is recognised.
 *
 * @since 0.1.0
 * @category errors
 */
export class CommitOutcomeUnknown extends Schema.TaggedError<CommitOutcomeUnknown>()("CommitOutcomeUnknown", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `EventStore.${this.method}: the outcome of the commit is unknown: ${causeMessage(this.cause)}`
  }
}

/**
 * The failures of an append besides infrastructure ones.
 *
 * @since 0.1.0
 * @category models
 */
export type AppendError = ConcurrencyConflict | EventIdConflict | CommitOutcomeUnknown | EventStoreError

/**
 * An infrastructure failure of the store (connection, SQL, ...). The cause is kept for logs.
 *
 * @since 0.1.0
 * @category errors
 */
export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `EventStore.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * Invalid input to a store or a related service (a negative or fractional position, `NaN` as a limit, an
 * `Exact(-1)` expected version, ...). Nothing was read or written; retrying the same call fails the same way.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  method: Schema.String,
  argument: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `${this.method}: invalid ${this.argument}: ${this.reason}`
  }
}

const causeMessage = (cause: unknown): string => {
  if (typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string") {
    return cause.message
  }
  return String(cause)
}

// -------------------------------------------------------------------------------------
// tag
// -------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category tags
 */
export class EventStore extends Context.Tag("@effect-eventsourcing/core/EventStore")<
  EventStore,
  EventStore.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace EventStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** Appends atomically to one stream after checking `expected`. */
    readonly append: (
      streamId: StreamId,
      events: ReadonlyArray<EventData>,
      expected: ExpectedVersion.ExpectedVersion
    ) => Effect.Effect<AppendResult, AppendError>
    /** Appends to several streams as one unit of work: all requests commit, or none. */
    readonly appendMany: (
      requests: ReadonlyArray<AppendRequest>
    ) => Effect.Effect<ReadonlyArray<AppendResult>, AppendError>
    /** The events of one stream. */
    readonly read: (streamId: StreamId, options?: ReadOptions) => Stream.Stream<RecordedEvent, EventStoreError>
    /** The stream's version, 0 when it has no events. */
    readonly streamVersion: (streamId: StreamId) => Effect.Effect<number, EventStoreError>
    /** The global log in position order, gap-safe. */
    readonly readAll: (options?: ReadAllOptions) => Stream.Stream<RecordedEvent, EventStoreError>
    /** Catch-up, then live: an endless stream of the global log in position order, gap-safe. */
    readonly subscribe: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, EventStoreError>
    /** Removes every event of the stream; its version is 0 afterwards. */
    readonly delete: (streamId: StreamId) => Effect.Effect<void, EventStoreError>
    /** An exclusive lock on the stream until the scope closes. Plain reads never wait for it. */
    readonly lock: (streamId: StreamId) => Effect.Effect<void, EventStoreError, Scope.Scope>
  }
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Builds the service from a store implementation, adding a span to every operation (`EventStore.append`, ...)
 * with `stream.id` / `stream.version` attributes. Every store should be built through it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Omit<EventStore.Service, TypeId>): EventStore.Service => ({
  [TypeId]: TypeId,
  // the per-call spans skip the stack-trace capture: an `Error().stack` per call cost more than the whole in-memory
  // append (bench W1)
  append: (streamId, events, expected) =>
    Effect.withSpan(impl.append(streamId, events, expected), "EventStore.append", {
      captureStackTrace: false,
      attributes: {
        "stream.id": streamId,
        "stream.expected": ExpectedVersion.format(expected),
        "events": events.length
      }
    }),
  appendMany: (requests) =>
    Effect.withSpan(impl.appendMany(requests), "EventStore.appendMany", {
      captureStackTrace: false,
      attributes: { "streams": requests.length }
    }),
  read: (streamId, options) =>
    Stream.withSpan(impl.read(streamId, options), "EventStore.read", { attributes: { "stream.id": streamId } }),
  streamVersion: (streamId) =>
    Effect.withSpan(impl.streamVersion(streamId), "EventStore.streamVersion", {
      captureStackTrace: false,
      attributes: { "stream.id": streamId }
    }),
  readAll: (options) => Stream.withSpan(impl.readAll(options), "EventStore.readAll"),
  subscribe: (options) => Stream.withSpan(impl.subscribe(options), "EventStore.subscribe"),
  delete: (streamId) =>
    Effect.withSpan(impl.delete(streamId), "EventStore.delete", { attributes: { "stream.id": streamId } }),
  lock: (streamId) => Effect.withSpan(impl.lock(streamId), "EventStore.lock", { attributes: { "stream.id": streamId } })
})

// -------------------------------------------------------------------------------------
// accessors
// -------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category accessors
 */
export const append = (
  streamId: StreamId,
  events: ReadonlyArray<EventData>,
  expected: ExpectedVersion.ExpectedVersion
): Effect.Effect<AppendResult, AppendError, EventStore> =>
  Effect.flatMap(EventStore, (store) => store.append(streamId, events, expected))

/**
 * @since 0.1.0
 * @category accessors
 */
export const read = (
  streamId: StreamId,
  options?: ReadOptions
): Stream.Stream<RecordedEvent, EventStoreError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.read(streamId, options)))

/**
 * @since 0.1.0
 * @category accessors
 */
export const readAll = (options?: ReadAllOptions): Stream.Stream<RecordedEvent, EventStoreError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.readAll(options)))

/**
 * @since 0.1.0
 * @category accessors
 */
export const subscribe = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.subscribe(options)))

const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]))
  }
  if (Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length &&
    ka.every((k) =>
      Object.hasOwn(b, k) && jsonEquals((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])
    )
}

/**
 * The content rule of idempotent appends: a re-sent event matches a stored one when its type is the same and its
 * data is the same JSON value (key order does not matter). For store implementations.
 *
 * @since 0.1.0
 * @category guards
 */
export const sameContent = (
  sent: { readonly type: string; readonly data: unknown },
  stored: { readonly type: string; readonly data: unknown }
): boolean => sent.type === stored.type && jsonEquals(sent.data, stored.data)

/**
 * Whether an event matches a filter (for stores that filter in memory).
 *
 * @since 0.1.0
 * @category guards
 */
export const matchesFilter = (filter: Filter | undefined, event: RecordedEvent): boolean => {
  if (filter === undefined) return true
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false
  if (filter.streamIds !== undefined && !filter.streamIds.includes(event.streamId)) return false
  if (filter.categories !== undefined) {
    const category = event.streamId.slice(0, event.streamId.indexOf("-"))
    if (!filter.categories.includes(category)) return false
  }
  if (filter.after !== undefined && event.recordedAt.epochMillis <= filter.after.epochMillis) return false
  if (filter.before !== undefined && event.recordedAt.epochMillis >= filter.before.epochMillis) return false
  return true
}
