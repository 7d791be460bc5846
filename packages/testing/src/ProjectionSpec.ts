/**
 * Given / then specifications for read models: given these events, the projection's read model (rows of a SQL
 * table, a map in memory, anything a query can read) or a view's documents are exactly these. The events are
 * recorded as a store would (positions 1, 2, …, versions per stream) and handed to the projection the way a
 * subscription does (in one batch through `handleBatch` when it has one, else event by event); no event store and
 * no subscription are needed. A mismatch fails with a {@link SpecFailure} showing the events, the expected and the
 * actual read model and a line diff.
 *
 * @example
 * ```ts
 * import { Projection, View } from "@effect-eventsourcing/core"
 * import { ProjectionSpec } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 *
 * const counts = new Map<string, number>()
 * const Counts = Projection.make({
 *   name: "counts",
 *   handle: (event) => Effect.sync(() => void counts.set(event.type, (counts.get(event.type) ?? 0) + 1))
 * })
 *
 * it.effect("counts events by type", () =>
 *   ProjectionSpec.given([
 *     { streamId: "account-1", type: "Opened", data: {} },
 *     { streamId: "account-1", type: "Deposited", data: { amount: 5 } }
 *   ])
 *     .project(Counts)
 *     .then(Effect.sync(() => Object.fromEntries(counts)), { Opened: 1, Deposited: 1 }))
 *
 * const PerStream = View.make({
 *   name: "per-stream",
 *   schema: Schema.Struct({ events: Schema.Int }),
 *   key: (event) => event.streamId,
 *   initial: { events: 0 },
 *   evolve: (view) => ({ events: view.events + 1 })
 * })
 *
 * it.effect("one document per stream", () =>
 *   ProjectionSpec.given([{ streamId: "account-1", type: "Opened", data: {} }])
 *     .view(PerStream)
 *     .then({ "account-1": { events: 1 } }))
 * ```
 *
 * @since 0.2.0
 */
import type * as Aggregate from "@effect-eventsourcing/core/Aggregate"
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as Projection from "@effect-eventsourcing/core/Projection"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as View from "@effect-eventsourcing/core/View"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { diffLists, equivalent, indent, show } from "./internal/values.js"

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * A read-model specification did not hold. `expected` and `actual` hold the compared values (test runners that
 * diff them show a diff too); `message` is the readable report.
 *
 * @since 0.2.0
 * @category errors
 */
export class SpecFailure extends Schema.TaggedError<SpecFailure>()("ProjectionSpecFailure", {
  projection: Schema.String,
  reason: Schema.String,
  expected: Schema.Unknown,
  actual: Schema.Unknown,
  report: Schema.String
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return this.report
  }
}

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * An event of a specification: the stream it belongs to and its stored form (`type`, encoded `data`).
 *
 * @since 0.2.0
 * @category models
 */
export interface GivenEvent extends EventStore.EventData {
  readonly streamId: string
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Given {
  /** The events as a store records them (positions from 1, versions per stream). */
  readonly recorded: Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>>
  /** Hands the events to a projection, then compares what `query` reads with `expected`. */
  readonly project: <E, R>(projection: Projection.Projection<E, R>) => Then<E, R>
  /**
   * Applies the events to a view, then compares its documents with `expected` (by key). The view store in the
   * context is used (e.g. `PostgresViewStore`); without one, a fresh in-memory store.
   */
  readonly view: <A, I, Event, E>(view: View.View<A, I, Event, E>) => ThenView<A, E>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface Then<E, R> {
  readonly then: <A, QE, QR>(
    query: Effect.Effect<A, QE, QR>,
    expected: A
  ) => Effect.Effect<void, SpecFailure | E | QE, R | QR>
}

/**
 * @since 0.2.0
 * @category models
 */
export interface ThenView<A, E> {
  /** Exactly these documents, by key (keys not listed must not exist). */
  readonly then: (
    expected: Readonly<Record<string, A>>
  ) => Effect.Effect<void, SpecFailure | E | View.ViewStoreError | View.ViewDocumentError>
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * The events of one aggregate instance, encoded through the aggregate's `events` Schema (`_tag` becomes the
 * `type`, the rest the `data`), for {@link given}.
 *
 * @since 0.2.0
 * @category constructors
 */
export const events = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  id: string,
  events: ReadonlyArray<Event>
): ReadonlyArray<GivenEvent> => {
  const streamId = StreamId.unsafeMake(aggregate.name, id)
  const encode = Schema.encodeSync(aggregate.events as Schema.Schema<Event, { readonly _tag: string }>)
  return events.map((event) => {
    const { _tag, ...data } = encode(event)
    return { streamId, type: _tag, data }
  })
}

const record = (given: ReadonlyArray<GivenEvent>): Effect.Effect<ReadonlyArray<EventStore.RecordedEvent>> =>
  Effect.map(DateTime.now, (now) => {
    const versions = new Map<string, number>()
    return given.map((event, i): EventStore.RecordedEvent => {
      const version = (versions.get(event.streamId) ?? 0) + 1
      versions.set(event.streamId, version)
      const position = i + 1
      return {
        id: event.id ?? `00000000-0000-4000-8000-${position.toString(16).padStart(12, "0")}`,
        streamId: event.streamId as StreamId.StreamId,
        version,
        position,
        type: event.type,
        data: event.data,
        metadata: event.metadata ?? {},
        recordedAt: now
      }
    })
  })

const isRecord = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && Object.getPrototypeOf(u) === Object.prototype

/** A line diff: lists element by element, plain objects entry by entry, anything else as a whole. */
const diff = (expected: unknown, actual: unknown): string => {
  if (Array.isArray(expected) && Array.isArray(actual)) return diffLists(expected, actual)
  if (isRecord(expected) && isRecord(actual)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort()
    return keys.map((key) => {
      const has = [Object.hasOwn(expected, key), Object.hasOwn(actual, key)]
      if (has[0] && has[1] && equivalent(expected[key], actual[key])) return `  ${key}: ${show(expected[key])}`
      return [
        ...(has[0] ? [`- ${key}: ${show(expected[key])}`] : []),
        ...(has[1] ? [`+ ${key}: ${show(actual[key])}`] : [])
      ].join("\n")
    }).join("\n")
  }
  return `- ${show(expected)}\n+ ${show(actual)}`
}

const failure = (
  name: string,
  recorded: ReadonlyArray<EventStore.RecordedEvent>,
  reason: string,
  expected: unknown,
  actual: unknown
) =>
  new SpecFailure({
    projection: name,
    reason,
    expected,
    actual,
    report: [
      `ProjectionSpec ${name}: ${reason}`,
      "given events:",
      recorded.length === 0
        ? indent("(none)")
        : recorded.map((e) => indent(`#${e.position} ${e.streamId} v${e.version} ${e.type} ${show(e.data)}`)).join(
          "\n"
        ),
      "expected:",
      indent(show(expected)),
      "actual:",
      indent(show(actual)),
      "diff (- expected, + actual):",
      indent(diff(expected, actual))
    ].join("\n")
  })

const handOver = <E, R>(
  projection: Projection.Projection<E, R>,
  recorded: ReadonlyArray<EventStore.RecordedEvent>
): Effect.Effect<void, E, R> =>
  recorded.length === 0
    ? Effect.void
    : projection.handleBatch !== undefined
    ? projection.handleBatch(recorded)
    : Effect.forEach(recorded, projection.handle, { discard: true })

/**
 * Starts a specification with past events (e.g. `[...ProjectionSpec.events(Account, "1", [...])]`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const given = (events: ReadonlyArray<GivenEvent>): Given => {
  const recorded = record(events)
  return {
    recorded,
    project: (projection) => ({
      then: (query, expected) =>
        Effect.gen(function*() {
          const events = yield* recorded
          yield* handOver(projection, events)
          const actual = yield* query
          if (!equivalent(expected, actual)) {
            return yield* failure(projection.name, events, "the read model differs", expected, actual)
          }
        })
    }),
    view: <A, I, Event, E>(view: View.View<A, I, Event, E>) => ({
      then: (expected: Readonly<Record<string, A>>) =>
        Effect.gen(function*() {
          const events = yield* recorded
          const existing = yield* Effect.serviceOption(View.ViewStore)
          const store = Option.isSome(existing) ? existing.value : yield* View.makeMemory
          const documents = yield* View.apply(view, events).pipe(
            Effect.zipRight(View.list(view)),
            Effect.provideService(View.ViewStore, store)
          )
          // compared in encoded form: class instances and other Schema types compare by value
          const encode = (value: A): unknown => {
            const encoded = Schema.encodeEither(view.schema)(value)
            return Either.isRight(encoded) ? encoded.right : value
          }
          const actualEncoded = Object.fromEntries(documents.map((d) => [d.key, encode(d.value)]))
          const expectedEncoded = Object.fromEntries(
            Object.entries(expected).map(([key, value]) => [key, encode(value)])
          )
          if (!equivalent(expectedEncoded, actualEncoded)) {
            return yield* failure(view.name, events, "the view's documents differ", expectedEncoded, actualEncoded)
          }
        })
    })
  }
}
