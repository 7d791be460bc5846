/**
 * Parked events: the events a subscription with the `park` failure policy could not handle (its retry Schedule gave
 * up), kept with the error, the number of attempts and the time, so that the subscription can move on without
 * losing them. The subscription parks an event and moves its checkpoint past it in one transaction where the store
 * has transactions: the read model and the parked events together always account for every event up to the
 * checkpoint.
 *
 * An operator (or the CLI, from another process) lists them, asks for a retry ({@link ParkedEvents.Service.retry}:
 * the running subscription re-delivers the event to its handler, in the handler's transaction when exactly-once, and
 * removes it from here when the handler succeeds) or skips one ({@link ParkedEvents.Service.skip}: it stays here,
 * marked skipped, and is never delivered again).
 *
 * @since 0.3.0
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as EventStore from "./EventStore.js"
import { causeMessage } from "./internal/causeMessage.js"
import type { StreamId } from "./StreamId.js"

/**
 * @since 0.3.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/ParkedEvents")

/**
 * @since 0.3.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * `parked`: waiting for an operator; `retry`: an operator asked for a retry, the running subscription picks it up;
 * `skipped`: an operator decided it is never delivered (kept for the record).
 *
 * @since 0.3.0
 * @category models
 */
export type State = "parked" | "retry" | "skipped"

/**
 * A parked event: which subscription, which event (by position, stream, version and id: the event itself stays in
 * the log), the last error of its handler, how many times it was tried, and when it was parked.
 *
 * @since 0.3.0
 * @category models
 */
export interface ParkedEvent {
  readonly id: number
  readonly subscription: string
  readonly position: number
  readonly streamId: StreamId
  readonly version: number
  readonly eventId: string
  readonly type: string
  readonly error: string
  readonly attempts: number
  readonly parkedAt: DateTime.Utc
  readonly state: State
}

/**
 * No parked event has this id (or, for {@link ParkedEvents.Service.resolve}, it is no longer waiting for a retry:
 * skipped or resolved meanwhile).
 *
 * @since 0.3.0
 * @category errors
 */
export class ParkedEventNotFound extends Schema.TaggedError<ParkedEventNotFound>()("ParkedEventNotFound", {
  id: Schema.Number
}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `No parked event ${this.id}`
  }
}

/**
 * An infrastructure failure of a parked-events store (connection, SQL, ...). The cause is kept for logs.
 *
 * @since 0.3.0
 * @category errors
 */
export class ParkedEventsError extends Schema.TaggedError<ParkedEventsError>()("ParkedEventsError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `ParkedEvents.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * @since 0.3.0
 * @category tags
 */
export class ParkedEvents extends Context.Tag("@effect-eventsourcing/core/ParkedEvents")<
  ParkedEvents,
  ParkedEvents.Service
>() {}

/**
 * @since 0.3.0
 */
export declare namespace ParkedEvents {
  /**
   * @since 0.3.0
   * @category models
   */
  export interface ListOptions {
    readonly subscription?: string
    readonly state?: State
  }

  /**
   * @since 0.3.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /**
     * Parks `event` for `subscription` (state `parked`); parking the same event of the same subscription again
     * replaces the entry. Joins the caller's transaction where the store has them (the subscription parks and
     * saves its checkpoint together).
     */
    readonly park: (
      subscription: string,
      event: EventStore.RecordedEvent,
      failure: { readonly error: string; readonly attempts: number }
    ) => Effect.Effect<ParkedEvent, ParkedEventsError>
    /** The parked events (all subscriptions, or one; all states, or one), oldest position first. */
    readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<ParkedEvent>, ParkedEventsError>
    /** How many events of `subscription` are parked or waiting for a retry (skipped ones are not counted). */
    readonly count: (subscription: string) => Effect.Effect<number, ParkedEventsError>
    /** Asks the running subscription to re-deliver the event (state `retry`); a skipped event can be retried too. */
    readonly retry: (id: number) => Effect.Effect<void, ParkedEventNotFound | ParkedEventsError>
    /** Marks the event skipped: it is never delivered again, and stays listed (state `skipped`). */
    readonly skip: (id: number) => Effect.Effect<void, ParkedEventNotFound | ParkedEventsError>
    /**
     * For the subscription that re-delivered an event waiting for a retry: removes the entry, joining the caller's
     * transaction (the handler's), or fails with {@link ParkedEventNotFound} when it is no longer waiting for a
     * retry (skipped or resolved meanwhile), which rolls the handler's writes back.
     */
    readonly resolve: (id: number) => Effect.Effect<void, ParkedEventNotFound | ParkedEventsError>
    /** For the subscription: a retry failed again; back to `parked` with the new error and attempts. */
    readonly retryFailed: (
      id: number,
      failure: { readonly error: string; readonly attempts: number }
    ) => Effect.Effect<void, ParkedEventsError>
    /**
     * For the subscription being reset to `position`: forgets its entries after `position` (they are replayed),
     * joining the caller's transaction.
     */
    readonly clear: (subscription: string, position: number) => Effect.Effect<void, ParkedEventsError>
  }
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * An in-memory parked-events store (no transactions: with the in-memory checkpoint store a subscription is
 * at-least-once, and so is a retry).
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<ParkedEvents.Service> = Effect.sync(() => {
  const entries = new Map<number, ParkedEvent>()
  let next = 1
  const sorted = (all: Iterable<ParkedEvent>) =>
    Array.from(all).sort((a, b) => a.position - b.position || a.subscription.localeCompare(b.subscription))
  const update = (id: number, f: (entry: ParkedEvent) => ParkedEvent | undefined) =>
    Effect.suspend(() => {
      const entry = entries.get(id)
      const updated = entry === undefined ? undefined : f(entry)
      if (updated === undefined) return Effect.fail(new ParkedEventNotFound({ id }))
      entries.set(id, updated)
      return Effect.void
    })
  return {
    [TypeId]: TypeId,
    park: (subscription, event, failure) =>
      Effect.map(DateTime.now, (parkedAt) => {
        let id = next
        for (const entry of entries.values()) {
          if (entry.subscription === subscription && entry.position === event.position) id = entry.id
        }
        if (id === next) next++
        const entry: ParkedEvent = {
          id,
          subscription,
          position: event.position,
          streamId: event.streamId,
          version: event.version,
          eventId: event.id,
          type: event.type,
          error: failure.error,
          attempts: failure.attempts,
          parkedAt,
          state: "parked"
        }
        entries.set(id, entry)
        return entry
      }),
    list: (options) =>
      Effect.sync(() =>
        sorted(entries.values()).filter((entry) =>
          (options?.subscription === undefined || entry.subscription === options.subscription) &&
          (options?.state === undefined || entry.state === options.state)
        )
      ),
    count: (subscription) =>
      Effect.sync(() => {
        let n = 0
        for (const entry of entries.values()) {
          if (entry.subscription === subscription && entry.state !== "skipped") n++
        }
        return n
      }),
    retry: (id) => update(id, (entry) => ({ ...entry, state: "retry" })),
    skip: (id) => update(id, (entry) => ({ ...entry, state: "skipped" })),
    resolve: (id) =>
      Effect.suspend(() =>
        entries.get(id)?.state === "retry"
          ? Effect.sync(() => void entries.delete(id))
          : Effect.fail(new ParkedEventNotFound({ id }))
      ),
    retryFailed: (id, failure) => Effect.ignore(update(id, (entry) => ({ ...entry, ...failure, state: "parked" }))),
    clear: (subscription, position) =>
      Effect.sync(() => {
        for (const entry of Array.from(entries.values())) {
          if (entry.subscription === subscription && entry.position > position) entries.delete(entry.id)
        }
      })
  }
})

// -------------------------------------------------------------------------------------
// accessors
// -------------------------------------------------------------------------------------

/**
 * The parked events (see {@link ParkedEvents.Service.list}).
 *
 * @since 0.3.0
 * @category accessors
 */
export const list = (
  options?: ParkedEvents.ListOptions
): Effect.Effect<ReadonlyArray<ParkedEvent>, ParkedEventsError, ParkedEvents> =>
  Effect.flatMap(ParkedEvents, (parked) => parked.list(options))

/**
 * Asks the running subscription to re-deliver a parked event (see {@link ParkedEvents.Service.retry}).
 *
 * @since 0.3.0
 * @category accessors
 */
export const retry = (id: number): Effect.Effect<void, ParkedEventNotFound | ParkedEventsError, ParkedEvents> =>
  Effect.flatMap(ParkedEvents, (parked) => parked.retry(id))

/**
 * Marks a parked event skipped (see {@link ParkedEvents.Service.skip}).
 *
 * @since 0.3.0
 * @category accessors
 */
export const skip = (id: number): Effect.Effect<void, ParkedEventNotFound | ParkedEventsError, ParkedEvents> =>
  Effect.flatMap(ParkedEvents, (parked) => parked.skip(id))

/**
 * The number of events of a subscription that are parked or waiting for a retry; 0 when no `ParkedEvents` service
 * is provided.
 *
 * @since 0.3.0
 * @category accessors
 */
export const count = (subscription: string): Effect.Effect<number, ParkedEventsError> =>
  Effect.flatMap(
    Effect.serviceOption(ParkedEvents),
    Option.match({ onNone: () => Effect.succeed(0), onSome: (parked) => parked.count(subscription) })
  )

// -------------------------------------------------------------------------------------
// layers
// -------------------------------------------------------------------------------------

/**
 * A fresh in-memory parked-events store per layer build.
 *
 * @since 0.3.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ParkedEvents> = Layer.effect(ParkedEvents, makeMemory)
