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
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Aggregate from "./Aggregate.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import * as metering from "./internal/metering.js"
import * as validation from "./internal/validation.js"
import { InvalidStreamId, type StreamId } from "./StreamId.js"

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
 * An event to append, already encoded: `data` must be a JSON value and `metadata` a JSON object, without NUL
 * characters or lone surrogates in any string (keys included); the `type` is a non-empty string of at most 1,000
 * UTF-8 bytes; the `id`, when given, a uuid (compared case-insensitively, stored in lower case). Every store refuses
 * other input with {@link InvalidArgument} (see {@link make}).
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
 * An event as a fold needs it, from {@link EventStore.Service.readForFold}: no id, metadata or time. The `position`
 * stays because it tells a stream apart from one deleted and re-created since (positions are never reused): a
 * cached state can be checked with it.
 *
 * @since 0.3.0
 * @category models
 */
export interface FoldEvent {
  readonly version: number
  readonly position: number
  readonly type: string
  readonly data: unknown
}

/**
 * Options of {@link EventStore.Service.readForFold}: inclusive version bounds (`from` defaults to 1, `to` to the last
 * version), read forward, and at most `limit` events (default: all of them).
 *
 * @since 0.3.0
 * @category models
 */
export interface FoldOptions {
  readonly from?: number
  readonly to?: number
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
 * With {@link WithDeletions} (`deletions: true`) it also yields the {@link Tombstone}s of deleted streams, in
 * position order with the events (`limit` then counts both).
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
 * With {@link WithDeletions} (`deletions: true`) it also yields the {@link Tombstone}s of deleted streams, in
 * position order with the events.
 *
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  readonly from?: number
  readonly filter?: Filter
}

/**
 * The option of `readAll` and `subscribe` that asks for the {@link Tombstone}s too: with `deletions: true` they
 * yield {@link LogEntry} items; without it (or `false`), only {@link RecordedEvent}s, as before.
 *
 * @since 0.3.0
 * @category models
 */
export interface WithDeletions<D extends boolean = boolean> {
  readonly deletions: D
}

/**
 * The trace a deletion leaves in the global log: `delete` removes a stream's events (their data is gone) and writes
 * one tombstone at a new global position, allocated like an event's (gap-safe, in commit order). `version` is the
 * version the stream had when it was deleted. Deleting a stream that has no events writes none.
 *
 * `readAll` and `subscribe` yield tombstones only when asked (`deletions: true`); a subscription asks when its
 * projection has an `onDelete`, and runs it in order with the events. A filter applies to tombstones by
 * `categories`, `streamIds`, `after` and `before`; `types` never excludes them (they have no type).
 *
 * @since 0.3.0
 * @category models
 */
export interface Tombstone {
  readonly _tag: "Tombstone"
  readonly streamId: StreamId
  readonly version: number
  readonly position: number
  readonly recordedAt: DateTime.Utc
}

/**
 * An item of the global log read with `deletions: true`: an event or a {@link Tombstone}.
 *
 * @since 0.3.0
 * @category models
 */
export type LogEntry = RecordedEvent | Tombstone

/**
 * Tells a {@link Tombstone} from a {@link RecordedEvent} (recorded events have no `_tag`).
 *
 * @since 0.3.0
 * @category guards
 */
export const isTombstone = (entry: LogEntry): entry is Tombstone => (entry as Partial<Tombstone>)._tag === "Tombstone"

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
 * The failures of an append.
 *
 * @since 0.1.0
 * @category models
 */
export type AppendError =
  | ConcurrencyConflict
  | EventIdConflict
  | CommitOutcomeUnknown
  | EventStoreError
  | InvalidArgument
  | InvalidStreamId

/**
 * The failures of {@link EventStore.Service.read}.
 *
 * @since 0.2.0
 * @category models
 */
export type ReadError = EventStoreError | InvalidArgument | InvalidStreamId

/**
 * The failures of {@link EventStore.Service.readAll} and {@link EventStore.Service.subscribe}.
 *
 * @since 0.2.0
 * @category models
 */
export type ReadAllError = EventStoreError | InvalidArgument

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

/**
 * A lock on the stream (with what it needs: a connection of a pooled store) could not be taken within the `timeout`
 * of {@link LockOptions}. Nothing ran under the lock.
 *
 * @since 0.2.0
 * @category errors
 */
export class LockTimeout extends Schema.TaggedError<LockTimeout>()("LockTimeout", {
  streamId: Schema.String
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Could not lock ${this.streamId} within the timeout`
  }
}

/**
 * The failures of taking a lock ({@link EventStore.Service.lock}).
 *
 * @since 0.2.0
 * @category models
 */
export type LockError = EventStoreError | LockTimeout

/**
 * The failures that {@link EventStore.Service.withLock} adds to those of its effect: taking the lock, and, where the
 * store runs the effect in a transaction, its commit (`CommitOutcomeUnknown` when the connection was lost while
 * committing).
 *
 * @since 0.2.0
 * @category models
 */
export type WithLockError = EventStoreError | LockTimeout | CommitOutcomeUnknown

/**
 * Options of {@link EventStore.Service.lock} and {@link EventStore.Service.withLock}.
 *
 * @since 0.2.0
 * @category models
 */
export interface LockOptions {
  /**
   * How long to wait for the lock, including the wait for a connection of a pooled store, before failing with
   * {@link LockTimeout} (default: no limit).
   */
  readonly timeout?: Duration.DurationInput
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
 * @example
 * ```ts
 * import { EventStore, ExpectedVersion, InMemoryEventStore, StreamId } from "@effect-eventsourcing/core"
 * import { Chunk, Effect, Stream } from "effect"
 *
 * // the untyped (encoded JSON) port every store implements
 * const program = Effect.gen(function*() {
 *   const store = yield* EventStore.EventStore
 *   const stream = StreamId.unsafeMake("account", "1")
 *   yield* store.append(stream, [{ type: "Opened", data: { owner: "Ada" } }], ExpectedVersion.NoStream)
 *   yield* store.append(stream, [{ type: "Deposited", data: { amount: 10 } }], ExpectedVersion.Exact(1))
 *   const events = yield* Stream.runCollect(store.read(stream))
 *   return Chunk.toReadonlyArray(events).map((event) => `${event.version} ${event.type}`)
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(InMemoryEventStore.layer))).then((lines) =>
 *   assert.deepStrictEqual(lines, ["1 Opened", "2 Deposited"])
 * )
 * ```
 *
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
    readonly read: (streamId: StreamId, options?: ReadOptions) => Stream.Stream<RecordedEvent, ReadError>
    /**
     * One page of a stream's events in version order, with only what a fold needs ({@link FoldEvent}): the cheap
     * read behind `Repository` loads. The same events, bounds and failures as {@link read}; a page shorter than
     * `limit` is the last. A page is an effect rather than a `Stream`: running a `Stream` cost more per load than the
     * whole query of a short tail (bench W4w), so a fold asks for pages of `limit` events until one comes back short.
     *
     * @since 0.3.0
     */
    readonly readForFold: (
      streamId: StreamId,
      options?: FoldOptions
    ) => Effect.Effect<ReadonlyArray<FoldEvent>, ReadError>
    /** The stream's version, 0 when it has no events. */
    readonly streamVersion: (streamId: StreamId) => Effect.Effect<number, EventStoreError>
    /**
     * The global log in position order, gap-safe; with `deletions: true`, the {@link Tombstone}s of deleted streams
     * too.
     */
    readonly readAll: {
      (options: ReadAllOptions & WithDeletions<true>): Stream.Stream<LogEntry, ReadAllError>
      (options?: ReadAllOptions & Partial<WithDeletions<false>>): Stream.Stream<
        RecordedEvent,
        ReadAllError
      >
      (options?: ReadAllOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError>
    }
    /**
     * Catch-up, then live: an endless stream of the global log in position order, gap-safe; with `deletions: true`,
     * the {@link Tombstone}s of deleted streams too.
     */
    readonly subscribe: {
      (options: SubscribeOptions & WithDeletions<true>): Stream.Stream<LogEntry, ReadAllError>
      (options?: SubscribeOptions & Partial<WithDeletions<false>>): Stream.Stream<
        RecordedEvent,
        ReadAllError
      >
      (options?: SubscribeOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError>
    }
    /**
     * Removes every event of the stream (their data is gone); its version is 0 afterwards. A stream that had events
     * leaves a {@link Tombstone} in the global log.
     */
    readonly delete: (streamId: StreamId) => Effect.Effect<void, EventStoreError>
    /** An exclusive lock on the stream until the scope closes. Plain reads never wait for it. */
    readonly lock: (streamId: StreamId, options?: LockOptions) => Effect.Effect<void, LockError, Scope.Scope>
    /**
     * Runs `effect` holding the stream's exclusive lock (the same lock as {@link lock}), and releases it when the
     * effect ends. The store's reads and appends made by `effect` never need more than what the lock holds: a
     * pooled store runs them on the connection that holds the lock, in one transaction that commits when `effect`
     * succeeds (PostgreSQL: `pg_advisory_xact_lock`), so a failing `effect` leaves nothing it appended. Work forked
     * by `effect` to outlive it must not use that connection.
     */
    readonly withLock: <A, E, R>(
      streamId: StreamId,
      effect: Effect.Effect<A, E, R>,
      options?: LockOptions
    ) => Effect.Effect<A, E | WithLockError, R>
    /**
     * The position of the last committed event or {@link Tombstone} a gap-safe reader can reach now (0 when there is
     * none): never past a commit or deletion still in flight, so a subscription whose checkpoint is here has handled
     * everything it can be handed.
     *
     * @since 0.3.0
     */
    readonly headPosition: Effect.Effect<number, EventStoreError>
  }
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

const invalidArgument = (method: string, problem: validation.ArgumentProblem): InvalidArgument =>
  new InvalidArgument({ method, argument: problem.argument, reason: problem.reason })

const invalid = (method: string, problem: validation.Problem): InvalidArgument | InvalidStreamId =>
  problem._tag === "InvalidStreamId"
    ? new InvalidStreamId({ streamId: problem.streamId, reason: problem.reason })
    : invalidArgument(method, problem)

/**
 * Builds the service from a store implementation. Every store should be built through it: it
 *
 * - checks the input of every call once, for every store, so that all stores give the same typed answer to the same
 *   bad input and the implementation never sees it: stream ids ({@link InvalidStreamId}: no `-`, a NUL character or
 *   a lone surrogate, over `StreamId.maxLength` UTF-8 bytes), expected versions (`Exact` of a negative, fractional or
 *   non-finite number), events (see {@link EventData}) and the numeric options of `read`, `readAll` and `subscribe`
 *   (`from`, `to`, `limit`: non-negative integers), all {@link InvalidArgument} otherwise;
 * - lower-cases the event ids given by the caller (uuids compare case-insensitively);
 * - adds a span to every operation (`EventStore.append`, ...) with `stream.id` / `stream.version` attributes;
 * - gives stores without a `readForFold` of their own one that reads with `read`;
 * - records the append metrics of the `Metrics` module, tagged `store` with the implementation's `name`;
 * - gives stores without a `withLock` of their own one that holds `lock` while the effect runs.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  impl: Omit<EventStore.Service, TypeId | "withLock" | "readAll" | "subscribe" | "readForFold"> & {
    readonly withLock?: EventStore.Service["withLock"]
    /** default: `read`, collected */
    readonly readForFold?: EventStore.Service["readForFold"]
    /** yields tombstones only when `options.deletions` is `true` (and `limit` counts them then) */
    readonly readAll: (options?: ReadAllOptions & Partial<WithDeletions>) => Stream.Stream<LogEntry, ReadAllError>
    /** yields tombstones only when `options.deletions` is `true` */
    readonly subscribe: (options?: SubscribeOptions & Partial<WithDeletions>) => Stream.Stream<LogEntry, ReadAllError>
    /** the `store` tag of its metrics (see the `Metrics` module); default `"custom"` */
    readonly name?: string
  }
): EventStore.Service => build(impl, metering.appendMeter(impl.name ?? "custom"))

const build = (impl: Parameters<typeof make>[0], meter: metering.AppendMeter): EventStore.Service => ({
  [TypeId]: TypeId,
  // the per-call spans skip the stack-trace capture: an `Error().stack` per call cost more than the whole in-memory
  // append (bench W1)
  append: (streamId, events, expected) => {
    const checked = validation.checkAppend(streamId, events, expected)
    if (!Array.isArray(checked)) {
      return Effect.withSpan(Effect.fail(invalid("append", checked as validation.Problem)), "EventStore.append", {
        captureStackTrace: false,
        attributes: { "stream.id": String(streamId) }
      })
    }
    return Effect.withSpan(meter(impl.append(streamId, checked, expected), checked.length), "EventStore.append", {
      captureStackTrace: false,
      attributes: {
        "stream.id": streamId,
        "stream.expected": ExpectedVersion.format(expected),
        "events": checked.length
      }
    })
  },
  appendMany: (requests) => {
    const checked = validation.checkRequests(requests)
    return Effect.withSpan(
      Array.isArray(checked)
        ? meter(impl.appendMany(checked), checked.reduce((n, request) => n + request.events.length, 0))
        : Effect.fail(invalid("appendMany", checked as validation.Problem)),
      "EventStore.appendMany",
      { captureStackTrace: false, attributes: { "streams": Array.isArray(requests) ? requests.length : 0 } }
    )
  },
  read: (streamId, options) => {
    const problem = validation.checkRead(streamId, options)
    return Stream.withSpan(
      problem === undefined ? impl.read(streamId, options) : Stream.fail(invalid("read", problem)),
      "EventStore.read",
      { attributes: { "stream.id": String(streamId) } }
    )
  },
  readForFold: (streamId, options) => {
    const problem = validation.checkRead(streamId, options)
    if (problem !== undefined) {
      return Effect.withSpan(Effect.fail(invalid("readForFold", problem)), "EventStore.readForFold", {
        captureStackTrace: false,
        attributes: { "stream.id": String(streamId) }
      })
    }
    // only these options: a `ReadOptions` passed here must not read backward
    const bounds: FoldOptions | undefined = options === undefined ? undefined : {
      ...(options.from !== undefined && { from: options.from }),
      ...(options.to !== undefined && { to: options.to }),
      ...(options.limit !== undefined && { limit: options.limit })
    }
    return Effect.withSpan(
      impl.readForFold === undefined
        // a recorded event is a fold event with more fields
        ? Effect.map(Stream.runCollect(impl.read(streamId, bounds)), Chunk.toReadonlyArray)
        : impl.readForFold(streamId, bounds),
      "EventStore.readForFold",
      { captureStackTrace: false, attributes: { "stream.id": streamId } }
    )
  },
  streamVersion: (streamId) =>
    Effect.withSpan(impl.streamVersion(streamId), "EventStore.streamVersion", {
      captureStackTrace: false,
      attributes: { "stream.id": streamId }
    }),
  // the implementation yields tombstones only when asked (`deletions: true`), which the overloads rely on
  readAll: ((options?: ReadAllOptions & Partial<WithDeletions>) => {
    const problem = validation.checkGlobal(options)
    return Stream.withSpan(
      problem === undefined ? impl.readAll(options) : Stream.fail(invalidArgument("readAll", problem)),
      "EventStore.readAll"
    )
  }) as EventStore.Service["readAll"],
  subscribe: ((options?: SubscribeOptions & Partial<WithDeletions>) => {
    const problem = validation.checkGlobal(options)
    return Stream.withSpan(
      problem === undefined ? impl.subscribe(options) : Stream.fail(invalidArgument("subscribe", problem)),
      "EventStore.subscribe"
    )
  }) as EventStore.Service["subscribe"],
  delete: (streamId) =>
    Effect.withSpan(impl.delete(streamId), "EventStore.delete", { attributes: { "stream.id": streamId } }),
  lock: (streamId, options) =>
    Effect.withSpan(impl.lock(streamId, options), "EventStore.lock", { attributes: { "stream.id": streamId } }),
  withLock: (streamId, effect, options) =>
    Effect.withSpan(
      impl.withLock === undefined
        ? Effect.scoped(Effect.zipRight(impl.lock(streamId, options), effect))
        : impl.withLock(streamId, effect, options),
      "EventStore.withLock",
      { captureStackTrace: false, attributes: { "stream.id": streamId } }
    ),
  headPosition: Effect.withSpan(impl.headPosition, "EventStore.headPosition", { captureStackTrace: false })
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
): Stream.Stream<RecordedEvent, ReadError, EventStore> =>
  Stream.unwrap(Effect.map(EventStore, (store) => store.read(streamId, options)))

/**
 * @since 0.1.0
 * @category accessors
 */
export const readAll: {
  (options: ReadAllOptions & WithDeletions<true>): Stream.Stream<LogEntry, ReadAllError, EventStore>
  (
    options?: ReadAllOptions & Partial<WithDeletions<false>>
  ): Stream.Stream<RecordedEvent, ReadAllError, EventStore>
  (options?: ReadAllOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError, EventStore>
} =
  ((options?: ReadAllOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError, EventStore> =>
    Stream.unwrap(Effect.map(EventStore, (store) => store.readAll(options)))) as typeof readAll

/**
 * The position of the last committed event a gap-safe reader can reach (see {@link EventStore.Service.headPosition}).
 *
 * @since 0.3.0
 * @category accessors
 */
export const headPosition: Effect.Effect<number, EventStoreError, EventStore> = Effect.flatMap(
  EventStore,
  (store) => store.headPosition
)

/**
 * @since 0.1.0
 * @category accessors
 */
export const subscribe: {
  (options: SubscribeOptions & WithDeletions<true>): Stream.Stream<LogEntry, ReadAllError, EventStore>
  (
    options?: SubscribeOptions & Partial<WithDeletions<false>>
  ): Stream.Stream<RecordedEvent, ReadAllError, EventStore>
  (options?: SubscribeOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError, EventStore>
} =
  ((options?: SubscribeOptions & Partial<WithDeletions>): Stream.Stream<LogEntry, ReadAllError, EventStore> =>
    Stream.unwrap(Effect.map(EventStore, (store) => store.subscribe(options)))) as typeof subscribe
