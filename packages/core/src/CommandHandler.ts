/**
 * Handles commands for one aggregate: load → decide → append with `Exact(version)`. On a `ConcurrencyConflict` the
 * aggregate is reloaded and the command decided again, as often as the retry Schedule allows. A command whose
 * `decide` returns no events writes nothing.
 *
 * @example
 * ```ts
 * import { Aggregate, CommandHandler, InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
 * class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Schema.Int }) {}
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Deposited,
 *   commands: Deposit,
 *   initialState: { balance: 0 },
 *   decide: (command) => Either.right([new Deposited({ amount: command.amount })]),
 *   evolve: (state, event) => ({ balance: state.balance + event.amount })
 * })
 *
 * const handle = CommandHandler.make(Account)
 * const program = handle("42", new Deposit({ amount: 10 })).pipe(Effect.provide(InMemoryEventStore.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Aggregate from "./Aggregate.js"
import * as EventStore from "./EventStore.js"
import * as InternalRepository from "./internal/repository.js"
import type * as StreamId from "./StreamId.js"

/**
 * What a handled command produced: the new events, the state after them, the stream version and the global
 * position of the last event (0 when nothing was written).
 *
 * @since 0.1.0
 * @category models
 */
export interface Result<State, Event> {
  readonly events: ReadonlyArray<Event>
  readonly state: State
  readonly version: number
  readonly position: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<Command> {
  /** How to retry after a `ConcurrencyConflict` (default: {@link defaultRetry}). */
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict>
  /** Hold `EventStore.lock` on the stream for the whole load → decide → append cycle. */
  readonly lock?: boolean
  /** Metadata stored with every event of the command. */
  readonly metadata?: EventStore.EventMetadata | ((command: Command) => EventStore.EventMetadata)
}

/**
 * The failures of a handled command besides the domain error `E`.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerError =
  | EventStore.AppendError
  | Aggregate.EventDecodeError
  | Aggregate.EventEncodeError
  | StreamId.InvalidStreamId

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<State, Command, Event, E> {
  (id: string, command: Command): Effect.Effect<Result<State, Event>, E | HandlerError, EventStore.EventStore>
}

/**
 * Metadata that every command handled in this fiber (and its children) stores with its events: set it once per
 * request, e.g. `{ correlationId, causationId, userId }`. The handler adds `traceId` and `spanId` of the current
 * span. Events appended with `Repository.append` carry it too.
 *
 * @since 0.1.0
 * @category context
 */
export const currentMetadata: FiberRef.FiberRef<EventStore.EventMetadata> = InternalRepository.currentMetadata

/**
 * Runs an effect with more ambient metadata (merged over the current one).
 *
 * @example
 * ```ts
 * import { CommandHandler } from "@effect-eventsourcing/core"
 *
 * // in a request handler:
 * // handle(id, command).pipe(CommandHandler.withMetadata({ correlationId: request.id, userId }))
 * ```
 *
 * @since 0.1.0
 * @category context
 */
export const withMetadata: {
  (metadata: EventStore.EventMetadata): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: EventStore.EventMetadata): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: EventStore.EventMetadata): Effect.Effect<A, E, R> =>
    Effect.locallyWith(self, currentMetadata, (current) => ({ ...current, ...metadata }))
)

/**
 * Ten immediate retries: a conflict means another writer made progress, so reloading at once is right; no delay also
 * keeps handlers usable under `TestClock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultRetry: Schedule.Schedule<number, unknown> = Schedule.recurs(10)

/**
 * @example
 * ```ts
 * import { Aggregate, CommandHandler, InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Int }) {}
 * class Increment extends Schema.TaggedClass<Increment>()("Increment", { by: Schema.Int }) {}
 * class TooLarge extends Schema.TaggedError<TooLarge>()("TooLarge", { max: Schema.Int }) {}
 *
 * const Counter = Aggregate.make({
 *   name: "counter", // streams are "counter-<id>"
 *   events: Incremented,
 *   commands: Increment,
 *   initialState: 0,
 *   decide: (command, state) =>
 *     state + command.by > 100
 *       ? Either.left(new TooLarge({ max: 100 }))
 *       : Either.right([new Incremented({ by: command.by })]),
 *   evolve: (state, event) => state + event.by
 * })
 *
 * // load → decide → append with Exact(version); reloads and decides again on a ConcurrencyConflict
 * const handle = CommandHandler.make(Counter)
 *
 * const program = Effect.gen(function*() {
 *   yield* handle("a", new Increment({ by: 40 }))
 *   const { events, state, version } = yield* handle("a", new Increment({ by: 2 }))
 *   // a domain error from decide arrives unchanged in the error channel; nothing is written
 *   const refused = yield* Effect.flip(handle("a", new Increment({ by: 100 })))
 *   return { events: events.length, state, version, refused: refused._tag }
 * })
 *
 * Effect.runPromise(program.pipe(Effect.provide(InMemoryEventStore.layer))).then((result) =>
 *   assert.deepStrictEqual(result, { events: 1, state: 42, version: 2, refused: "TooLarge" })
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: Options<Command> = {}
): CommandHandler<State, Command, Event, E> => {
  const repository = InternalRepository.make(aggregate)
  const retry = options.retry ?? defaultRetry
  const staticMetadata = typeof options.metadata === "function"
    ? options.metadata
    : () => options.metadata as EventStore.EventMetadata | undefined

  /** The handler's own metadata (the repository puts it over the ambient one): static or per command, and the span. */
  const metadataOf = (command: Command): Effect.Effect<EventStore.EventMetadata> =>
    Effect.map(Effect.option(Effect.currentSpan), (span) => {
      const metadata: Record<string, unknown> = { ...staticMetadata(command) }
      if (Option.isSome(span)) {
        metadata.traceId = span.value.traceId
        metadata.spanId = span.value.spanId
      }
      return metadata as EventStore.EventMetadata
    })

  const once = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId,
    command: Command
  ): Effect.Effect<Result<State, Event>, E | HandlerError> =>
    Effect.flatMap(
      repository.current(store, streamId),
      (current): Effect.Effect<Result<State, Event>, E | HandlerError> => {
        const decided = aggregate.decide(command, current.state)
        if (Either.isLeft(decided)) return Effect.fail(decided.left)
        const events = decided.right
        if (events.length === 0) {
          return Effect.succeed({ events, state: current.state, version: current.version, position: 0 })
        }
        return Effect.flatMap(
          metadataOf(command),
          (metadata) =>
            Effect.map(
              repository.appendTo(store, current, events, metadata),
              ({ position, state, version }): Result<State, Event> => ({ events, state, version, position })
            )
        )
      }
    )

  return (id, command) =>
    Effect.flatMap(EventStore.EventStore, (store) => {
      const run = Effect.flatMap(repository.streamId(id), (streamId) => {
        const attempt = Effect.retry(once(store, streamId, command), {
          // `while` lets only conflicts reach the schedule, so its narrower input type is safe
          schedule: retry as Schedule.Schedule<unknown, E | HandlerError>,
          while: (error) => isConcurrencyConflict(error)
        })
        return options.lock === true ? Effect.scoped(Effect.zipRight(store.lock(streamId), attempt)) : attempt
      })
      return Effect.withSpan(run, "CommandHandler.handle", { attributes: { "aggregate": aggregate.name, id } })
    })
}

const isConcurrencyConflict = (error: unknown): error is EventStore.ConcurrencyConflict =>
  error instanceof EventStore.ConcurrencyConflict
