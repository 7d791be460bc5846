/**
 * Building blocks for {@link EventStore.EventStore} implementations: the rules every store applies, written once.
 * Applications do not need this module; it is public because stores outside this package (PostgreSQL, third-party
 * stores) are built from it.
 *
 * - Input: `EventStore.make` checks every call for every store (stream ids, expected versions, event types, ids,
 *   JSON-ness of data and metadata, numeric options), so an implementation never sees invalid input. The rules are
 *   exposed here for stores that need them on their own paths ({@link isUuid}, {@link jsonProblem}, ...).
 * - Idempotent appends: {@link replay} decides whether an append whose event ids are already stored is a replay of
 *   committed batches (the original results) or an {@link EventStore.EventIdConflict}, with the same reasons in
 *   every store.
 * - In-memory filtering ({@link matchesFilter}), the content rule of replays ({@link sameContent}), a wake-up
 *   {@link Signal} for subscribers, a per-key lock ({@link makeKeyedLock}) and a per-millisecond `DateTime` cache
 *   ({@link makeDateTimeCache}).
 *
 * Everything here is a plain function over plain data: no effect, no allocation on the paths an append takes when
 * nothing is wrong.
 *
 * @since 0.2.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Deferred from "effect/Deferred"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as EventStore from "./EventStore.js"
import * as internal from "./internal/storeKit.js"
import * as validation from "./internal/validation.js"

// -------------------------------------------------------------------------------------
// input rules
// -------------------------------------------------------------------------------------

/**
 * The longest event type, in UTF-8 bytes. PostgreSQL indexes `(type, position)` in a btree whose entries may not
 * exceed 2,704 bytes; 1,000 bytes stays well below that. (Stream ids have the same limit: `StreamId.maxLength`.)
 *
 * @since 0.2.0
 * @category models
 */
export const maxEventTypeLength: number = validation.maxEventTypeBytes

/**
 * The length of a string in UTF-8 bytes, the unit of {@link maxEventTypeLength} and `StreamId.maxLength`.
 *
 * @example
 * ```ts
 * import { StoreKit } from "@effect-eventsourcing/core"
 *
 * StoreKit.utf8Length("a€😀") // 1 + 3 + 4 = 8
 * ```
 *
 * @since 0.2.0
 * @category utils
 */
export const utf8Length: (s: string) => number = validation.utf8Length

/**
 * Why a string cannot be stored by every store (a NUL character, a lone surrogate), `undefined` when it can.
 *
 * @since 0.2.0
 * @category guards
 */
export const textProblem: (s: string) => string | undefined = validation.textProblem

/**
 * Whether a value is a uuid in its canonical text form, in any case. Stores keep event ids in lower case
 * (`EventStore.make` lower-cases the ids it is given).
 *
 * @since 0.2.0
 * @category guards
 */
export const isUuid: (u: unknown) => u is string = validation.isUuid

/**
 * Why a value cannot be stored as JSON by every store, `undefined` when it can. JSON values are null, booleans,
 * finite numbers, strings without NUL characters or lone surrogates (object keys included), arrays and objects of
 * them; object fields whose value is `undefined` are left out and `toJSON` is honoured, as `JSON.stringify` does.
 * The reason names where the problem is (`at .items[2].label: a string contains a NUL character (U+0000)`).
 *
 * @since 0.2.0
 * @category guards
 */
export const jsonProblem: (value: unknown) => string | undefined = validation.jsonProblem

// -------------------------------------------------------------------------------------
// idempotent appends
// -------------------------------------------------------------------------------------

/**
 * What {@link replay} needs to know of a stored event.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoredEvent {
  readonly streamId: string
  readonly version: number
  readonly position: number
  readonly type: string
  readonly data: unknown
}

/**
 * The `reason` of each {@link EventStore.EventIdConflict} that {@link replay} reports.
 *
 * @since 0.2.0
 * @category models
 */
export const reasons: {
  readonly twice: string
  readonly mixed: string
  readonly otherStream: (streamId: string) => string
  readonly otherVersion: string
  readonly otherContent: string
} = internal.reasons

/**
 * The ids given to the events of an append (in order), or an {@link EventStore.EventIdConflict} when one appears
 * twice. For stores that must fetch the stored events before calling {@link replay}.
 *
 * @since 0.2.0
 * @category idempotency
 */
export const givenIds: (
  requests: ReadonlyArray<EventStore.AppendRequest>
) => ReadonlyArray<string> | EventStore.EventIdConflict = internal.givenIds

/**
 * The idempotency rules of appends by event id, given how to look up a stored event by id:
 *
 * - `undefined`: no given id is stored; append normally (nothing is allocated when no event carries an id);
 * - per request, its last stored event (`undefined` for a request without events): every request re-sends exactly a
 *   batch that was committed (same ids, same stream, consecutive versions, same type and data by
 *   {@link sameContent}); the store answers with the original results;
 * - an {@link EventStore.EventIdConflict} otherwise: an id appears twice in the append; an id is stored in another
 *   stream, at another version or with other content (naming that id); or the append mixes stored events with new
 *   ones (naming the first stored id, the one a caller can look up).
 *
 * Ids are compared as given: `EventStore.make` has lower-cased them.
 *
 * @since 0.2.0
 * @category idempotency
 */
export const replay: (
  requests: ReadonlyArray<EventStore.AppendRequest>,
  lookup: (id: string) => StoredEvent | undefined
) => ReadonlyArray<StoredEvent | undefined> | EventStore.EventIdConflict | undefined = internal.replay

/**
 * The content rule of idempotent appends: a re-sent event matches a stored one when its type is the same and its
 * data stands for the same JSON value (key order does not matter; `toJSON` is applied and fields whose value is
 * `undefined` are absent, as when the data was stored).
 *
 * @since 0.2.0
 * @category idempotency
 */
export const sameContent: (
  sent: { readonly type: string; readonly data: unknown },
  stored: { readonly type: string; readonly data: unknown }
) => boolean = internal.sameContent

// -------------------------------------------------------------------------------------
// reading
// -------------------------------------------------------------------------------------

/**
 * Whether an event matches a filter (for stores that filter in memory).
 *
 * @since 0.2.0
 * @category filters
 */
export const matchesFilter: (filter: EventStore.Filter | undefined, event: EventStore.RecordedEvent) => boolean =
  internal.matchesFilter

// -------------------------------------------------------------------------------------
// concurrency
// -------------------------------------------------------------------------------------

/**
 * A wake-up signal for subscribers: a subscriber that found nothing new awaits `next()`, a commit calls `wake()`.
 * The Deferred is created only when someone asks for it, so a commit with nobody waiting allocates nothing. Take
 * `next()` before looking for new events, so that a wake-up in between is not lost.
 *
 * @since 0.2.0
 * @category models
 */
export interface Signal {
  /** The Deferred that the next `wake` completes. */
  readonly next: () => Deferred.Deferred<void>
  /** Completes the current Deferred, if anyone asked for one. */
  readonly wake: () => void
}

/**
 * @since 0.2.0
 * @category constructors
 */
export const makeSignal: () => Signal = internal.makeSignal

/**
 * A lock per key: the returned function takes the key's lock until the scope closes (a second taker waits; an
 * interrupted waiter or holder lets go). Waiters get the lock in arrival order: a release hands it to the longest
 * waiter, and a new taker never overtakes those already waiting. A key's entry exists only while someone holds or
 * waits for it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeKeyedLock: () => (key: string) => Effect.Effect<void, never, Scope.Scope> = internal.makeKeyedLock

// -------------------------------------------------------------------------------------
// time
// -------------------------------------------------------------------------------------

/**
 * A `DateTime.Utc` per epoch millisecond, reusing the last one: events committed (or rows read) together usually
 * share their millisecond, and a `DateTime` is immutable.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeDateTimeCache: () => (millis: number) => DateTime.Utc = internal.makeDateTimeCache
