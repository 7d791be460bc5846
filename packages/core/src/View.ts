/**
 * Document views: a read model kept as one typed document per key (an account's balance, an order's summary),
 * folded from events by `evolve`, stored encoded through the view's `schema` in a {@link ViewStore} together with
 * the global position of the last event that changed it, and read back by key.
 *
 * - **Updated by a subscription**: {@link projection} is a batched `Projection` (run it with `Subscription`, or
 *   {@link layer}). Each batch loads the documents of its keys, applies the events and saves them in one call.
 * - **Exactly-once**: an event at or below a document's stored position is skipped, so a batch delivered again
 *   after a crash changes nothing; on PostgreSQL (`PostgresViewStore` with `PostgresCheckpointStore` on the same
 *   pool) the document writes and the checkpoint also commit in one transaction.
 * - **Rebuildable**: `Subscription.reset()` (or `CheckpointStore.reset` while it is stopped) clears the view's
 *   documents in the same transaction and replays from the start.
 *
 * @example
 * ```ts
 * import { CheckpointStore, InMemoryEventStore, Subscription, View } from "@effect-eventsourcing/core"
 * import { Effect, Layer, Schema } from "effect"
 *
 * // how many events each stream has, one document per stream
 * const Counts = View.make({
 *   name: "event-counts",
 *   schema: Schema.Struct({ events: Schema.Int }),
 *   key: (event) => event.streamId,
 *   initial: () => ({ events: 0 }),
 *   evolve: (view) => ({ events: view.events + 1 })
 * })
 *
 * const Live = View.layer(Counts).pipe(
 *   Layer.provideMerge(Layer.mergeAll(InMemoryEventStore.layer, CheckpointStore.layerMemory, View.layerMemory))
 * )
 * const read = View.get(Counts, "account-1") // Effect<Option<{ events: number }>, ..., ViewStore>
 * ```
 *
 * @since 0.2.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Aggregate from "./Aggregate.js"
import type * as CheckpointStore from "./CheckpointStore.js"
import * as EventStore from "./EventStore.js"
import { causeMessage } from "./internal/causeMessage.js"
import { codec } from "./internal/codec.js"
import * as Projection from "./Projection.js"
import * as StreamId from "./StreamId.js"
import * as Subscription from "./Subscription.js"

/**
 * @since 0.2.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/View")

/**
 * @since 0.2.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * An infrastructure failure of a view store (connection, SQL, ...). The cause is kept for logs.
 *
 * @since 0.2.0
 * @category errors
 */
export class ViewStoreError extends Schema.TaggedError<ViewStoreError>()("ViewStoreError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `ViewStore.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * A stored document no longer decodes with the view's schema, or an evolved one does not encode.
 *
 * @since 0.2.0
 * @category errors
 */
export class ViewDocumentError extends Schema.TaggedError<ViewDocumentError>()("ViewDocumentError", {
  view: Schema.String,
  key: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Document ${this.key} of view ${this.view} does not match its schema: ${causeMessage(this.cause)}`
  }
}

// -------------------------------------------------------------------------------------
// store
// -------------------------------------------------------------------------------------

/**
 * A stored document: its encoded form and the global position of the last event that changed it.
 *
 * @since 0.2.0
 * @category models
 */
export interface StoredDocument {
  readonly key: string
  readonly document: unknown
  readonly position: number
}

/**
 * Where views keep their documents (encoded JSON values), by view name and key.
 *
 * @since 0.2.0
 * @category tags
 */
export class ViewStore extends Context.Tag("@effect-eventsourcing/core/ViewStore")<ViewStore, ViewStore.Service>() {}

/**
 * @since 0.2.0
 */
export declare namespace ViewStore {
  /**
   * @since 0.2.0
   * @category models
   */
  export interface Service {
    /** The documents of these keys that exist. */
    readonly load: (
      view: string,
      keys: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<StoredDocument>, ViewStoreError>
    /** Inserts or replaces documents (joining the current transaction where the store has them). */
    readonly save: (view: string, documents: ReadonlyArray<StoredDocument>) => Effect.Effect<void, ViewStoreError>
    /** Every document of the view, by key. */
    readonly list: (view: string) => Effect.Effect<ReadonlyArray<StoredDocument>, ViewStoreError>
    /** Removes every document of the view (a rebuild). */
    readonly clear: (view: string) => Effect.Effect<void, ViewStoreError>
  }
}

/**
 * An in-memory view store (a fresh one per call).
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<ViewStore.Service> = Effect.sync(() => {
  const views = new Map<string, Map<string, StoredDocument>>()
  const of = (view: string) => {
    let documents = views.get(view)
    if (documents === undefined) {
      documents = new Map()
      views.set(view, documents)
    }
    return documents
  }
  return {
    load: (view, keys) =>
      Effect.sync(() => {
        const documents = of(view)
        return keys.flatMap((key) => {
          const found = documents.get(key)
          return found === undefined ? [] : [found]
        })
      }),
    save: (view, saved) =>
      Effect.sync(() => {
        const documents = of(view)
        for (const document of saved) documents.set(document.key, document)
      }),
    list: (view) =>
      Effect.sync(() => [...of(view).values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))),
    clear: (view) => Effect.sync(() => void views.delete(view))
  }
})

/**
 * A fresh in-memory view store per layer build.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ViewStore> = Layer.effect(ViewStore, makeMemory)

// -------------------------------------------------------------------------------------
// views
// -------------------------------------------------------------------------------------

/**
 * A view: `A` is the document type, `I` its encoded (stored) form, `Event` what `evolve` folds.
 *
 * @since 0.2.0
 * @category models
 */
export interface View<A, I = A, Event = EventStore.RecordedEvent, E = never> {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly schema: Schema.Schema<A, I>
  /** The events the subscription reads (e.g. the aggregate's category). */
  readonly filter: EventStore.Filter | undefined
  /** The event a recorded event stands for; `None` skips it; failures stop the subscription. */
  readonly decode: (recorded: EventStore.RecordedEvent) => Either.Either<Option.Option<Event>, E>
  /** The key of the document an event changes; `undefined`: none. */
  readonly key: (event: Event, recorded: EventStore.RecordedEvent) => string | undefined
  /** The document of a key before its first event. */
  readonly initial: (key: string) => A
  readonly evolve: (view: A, event: Event, recorded: EventStore.RecordedEvent) => A
}

/**
 * A view over recorded events (untyped: `event.type`, `event.data`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = <A, I>(options: {
  readonly name: string
  readonly schema: Schema.Schema<A, I>
  readonly key: (event: EventStore.RecordedEvent) => string | undefined
  readonly initial: NoInfer<A> | ((key: string) => NoInfer<A>)
  readonly evolve: (view: A, event: EventStore.RecordedEvent) => NoInfer<A>
  readonly filter?: EventStore.Filter | undefined
}): View<A, I> => ({
  [TypeId]: TypeId,
  name: options.name,
  schema: options.schema,
  filter: options.filter,
  decode: (recorded) => Either.right(Option.some(recorded)),
  key: (event) => options.key(event),
  initial: initialOf(options.initial),
  evolve: (view, event) => options.evolve(view, event)
})

const initialOf = <A>(initial: A | ((key: string) => A)): (key: string) => A =>
  typeof initial === "function" ? initial as (key: string) => A : () => initial

/**
 * A view over one aggregate's events, decoded through its `events` Schema (the subscription reads only its
 * category). The key defaults to the aggregate id (the stream id without `"<name>-"`).
 *
 * @example
 * ```ts
 * import { Aggregate, View } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Deposited,
 *   initialState: 0,
 *   decide: (command: { readonly amount: number }) => Either.right([new Deposited(command)]),
 *   evolve: (state, event) => state + event.amount
 * })
 *
 * const Balances = View.fromAggregate(Account, {
 *   name: "balances",
 *   schema: Schema.Struct({ balance: Schema.Int, deposits: Schema.Int }),
 *   initial: { balance: 0, deposits: 0 },
 *   evolve: (view, event) => ({ balance: view.balance + event.amount, deposits: view.deposits + 1 })
 * })
 * ```
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromAggregate = <State, Command, Event, DomainError, A, I>(
  aggregate: Aggregate.Aggregate<State, Command, Event, DomainError>,
  options: {
    readonly name: string
    readonly schema: Schema.Schema<A, I>
    readonly key?: ((event: Event, recorded: EventStore.RecordedEvent) => string | undefined) | undefined
    readonly initial: NoInfer<A> | ((key: string) => NoInfer<A>)
    readonly evolve: (view: A, event: Event, recorded: EventStore.RecordedEvent) => NoInfer<A>
  }
): View<A, I, Event, Aggregate.EventDecodeError> => {
  const decode = codec(aggregate).decode
  const prefix = `${aggregate.name}-`
  return {
    [TypeId]: TypeId,
    name: options.name,
    schema: options.schema,
    filter: { categories: [aggregate.name] },
    decode: (recorded) =>
      !recorded.streamId.startsWith(prefix) || aggregate.retired.has(recorded.type)
        ? Either.right(Option.none())
        : Either.map(decode(recorded), Option.some),
    key: options.key ?? ((_, recorded) => StreamId.id(recorded.streamId)),
    initial: initialOf(options.initial),
    evolve: options.evolve
  }
}

/**
 * The failures of a view's projection: its event decoding, the store, a document that does not match the schema,
 * and a reset to a position other than the start (a view is rebuilt from the start).
 *
 * @since 0.2.0
 * @category models
 */
export type ProjectionError<E> = E | ViewStoreError | ViewDocumentError | EventStore.InvalidArgument

/**
 * Applies a batch of recorded events to the view's documents: loads the documents of the batch's keys, folds the
 * events newer than each document's position, and saves the changed documents in one call. The pure core of
 * {@link projection}, also usable to test a view without a subscription.
 *
 * @since 0.2.0
 * @category projections
 */
export const apply = <A, I, Event, E>(
  view: View<A, I, Event, E>,
  events: ReadonlyArray<EventStore.RecordedEvent>
): Effect.Effect<void, E | ViewStoreError | ViewDocumentError, ViewStore> =>
  Effect.gen(function*() {
    const store = yield* ViewStore
    const changes: Array<{ readonly key: string; readonly event: Event; readonly recorded: EventStore.RecordedEvent }> =
      []
    for (const recorded of events) {
      const decoded = view.decode(recorded)
      if (Either.isLeft(decoded)) return yield* Effect.fail(decoded.left)
      if (Option.isNone(decoded.right)) continue
      const key = view.key(decoded.right.value, recorded)
      if (key !== undefined) changes.push({ key, event: decoded.right.value, recorded })
    }
    if (changes.length === 0) return
    const keys = [...new Set(changes.map((change) => change.key))]
    const stored = new Map((yield* store.load(view.name, keys)).map((document) => [document.key, document]))
    const current = new Map<string, { value: A; position: number; changed: boolean }>()
    for (const key of keys) {
      const document = stored.get(key)
      if (document === undefined) {
        current.set(key, { value: view.initial(key), position: 0, changed: false })
        continue
      }
      const value = yield* Effect.mapError(
        Schema.decodeUnknown(view.schema)(document.document),
        (cause) => new ViewDocumentError({ view: view.name, key, cause })
      )
      current.set(key, { value, position: document.position, changed: false })
    }
    for (const { event, key, recorded } of changes) {
      const entry = current.get(key)!
      // delivered again (at-least-once stores): already applied
      if (recorded.position <= entry.position) continue
      entry.value = view.evolve(entry.value, event, recorded)
      entry.position = recorded.position
      entry.changed = true
    }
    const saved: Array<StoredDocument> = []
    for (const [key, entry] of current) {
      if (!entry.changed) continue
      const document = yield* Effect.mapError(
        Schema.encode(view.schema)(entry.value),
        (cause) => new ViewDocumentError({ view: view.name, key, cause })
      )
      saved.push({ key, document, position: entry.position })
    }
    if (saved.length > 0) yield* store.save(view.name, saved)
  })

/**
 * The view as a batched `Projection` named after it, for `Subscription.run` / `forkScoped` (subscribe with the
 * view's `filter`). Its `onReset(0)` clears the documents (in the checkpoint's transaction on PostgreSQL); a reset
 * to a later position is refused with `InvalidArgument`.
 *
 * @since 0.2.0
 * @category projections
 */
export const projection = <A, I, Event, E>(
  view: View<A, I, Event, E>
): Projection.Projection<ProjectionError<E>, ViewStore> =>
  Projection.makeBatched<ProjectionError<E>, ViewStore>({
    name: view.name,
    handleBatch: (events) => apply(view, events),
    onReset: (position) =>
      position === 0
        ? Effect.flatMap(ViewStore, (store) => store.clear(view.name))
        : Effect.fail(
          new EventStore.InvalidArgument({
            method: "View.onReset",
            argument: "position",
            reason: `a view is rebuilt from the start (0), got ${position}`
          })
        )
  })

/**
 * Starts the view's subscription in the current scope (with the view's filter) and returns its handle:
 * `awaitPosition` to read your own writes, `reset()` to rebuild.
 *
 * @since 0.2.0
 * @category constructors
 */
export const forkScoped = <A, I, Event, E>(
  view: View<A, I, Event, E>,
  options?: Omit<Subscription.Options<ProjectionError<E>>, "filter">
) =>
  Subscription.forkScoped(projection(view), {
    ...options,
    ...(view.filter === undefined ? {} : { filter: view.filter })
  })

/**
 * Keeps the view up to date for as long as the Layer lives.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = <A, I, Event, E>(
  view: View<A, I, Event, E>,
  options?: Omit<Subscription.Options<ProjectionError<E>>, "filter" | "checkpoints">
): Layer.Layer<never, never, ViewStore | EventStore.EventStore | CheckpointStore.CheckpointStore> =>
  Layer.scopedDiscard(forkScoped(view, options))

// -------------------------------------------------------------------------------------
// reading
// -------------------------------------------------------------------------------------

/**
 * The document of a key, decoded through the view's schema; `None` when no event created it yet.
 *
 * @since 0.2.0
 * @category reading
 */
export const get = <A, I, Event, E>(
  view: View<A, I, Event, E>,
  key: string
): Effect.Effect<Option.Option<A>, ViewStoreError | ViewDocumentError, ViewStore> =>
  Effect.flatMap(ViewStore, (store) => store.load(view.name, [key])).pipe(
    Effect.flatMap((documents) =>
      documents.length === 0 ? Effect.succeedNone : Effect.map(decodeDocument(view, documents[0]!), Option.some)
    )
  )

/**
 * The document of a key with the position of the last event that changed it; `None` when no event created it yet.
 *
 * @since 0.2.0
 * @category reading
 */
export const getDocument = <A, I, Event, E>(
  view: View<A, I, Event, E>,
  key: string
): Effect.Effect<
  Option.Option<{ readonly key: string; readonly value: A; readonly position: number }>,
  ViewStoreError | ViewDocumentError,
  ViewStore
> =>
  Effect.flatMap(ViewStore, (store) => store.load(view.name, [key])).pipe(
    Effect.flatMap((documents) =>
      documents.length === 0 ? Effect.succeedNone : Effect.map(
        decodeDocument(view, documents[0]!),
        (value) => Option.some({ key, value, position: documents[0]!.position })
      )
    )
  )

/**
 * Every document of the view with its key and the position of the last event that changed it, by key.
 *
 * @since 0.2.0
 * @category reading
 */
export const list = <A, I, Event, E>(
  view: View<A, I, Event, E>
): Effect.Effect<
  ReadonlyArray<{ readonly key: string; readonly value: A; readonly position: number }>,
  ViewStoreError | ViewDocumentError,
  ViewStore
> =>
  Effect.flatMap(ViewStore, (store) => store.list(view.name)).pipe(
    Effect.flatMap((documents) =>
      Effect.forEach(
        documents,
        (document) =>
          Effect.map(decodeDocument(view, document), (value) => ({
            key: document.key,
            value,
            position: document.position
          }))
      )
    )
  )

const decodeDocument = <A, I, Event, E>(view: View<A, I, Event, E>, document: StoredDocument) =>
  Effect.mapError(
    Schema.decodeUnknown(view.schema)(document.document),
    (cause) => new ViewDocumentError({ view: view.name, key: document.key, cause })
  )
