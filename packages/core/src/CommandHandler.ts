/**
 * Handles commands for one aggregate: load → decide → append with `Exact(version)`. On a `ConcurrencyConflict` the
 * aggregate is reloaded and the command decided again, as often as the retry Schedule allows. A command whose
 * `decide` returns no events writes nothing.
 *
 * @example
 * ```ts
 * import { CommandHandler, InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { Effect } from "effect"
 * import { Account, Deposit } from "./Account.js"
 *
 * const handle = CommandHandler.make(Account)
 * const program = handle("42", new Deposit({ amount: 10 })).pipe(Effect.provide(InMemoryEventStore.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schedule from "effect/Schedule"
import type * as Aggregate from "./Aggregate.js"
import * as EventStore from "./EventStore.js"
import * as ExpectedVersion from "./ExpectedVersion.js"
import { codec, encodeAll } from "./internal/codec.js"
import * as Repository from "./Repository.js"
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
  | EventStore.EventDecodeError
  | EventStore.EventEncodeError
  | StreamId.InvalidStreamId

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<State, Command, Event, E> {
  (id: string, command: Command): Effect.Effect<Result<State, Event>, E | HandlerError, EventStore.EventStore>
}

/**
 * Ten immediate retries: a conflict means another writer made progress, so reloading at once is right; no delay also
 * keeps handlers usable under `TestClock`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultRetry: Schedule.Schedule<number, unknown> = Schedule.recurs(10)

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: Options<Command> = {}
): CommandHandler<State, Command, Event, E> => {
  const repository = Repository.make(aggregate)
  const { encode } = codec(aggregate)
  const retry = options.retry ?? defaultRetry
  const metadataOf = typeof options.metadata === "function"
    ? options.metadata
    : () => options.metadata as EventStore.EventMetadata | undefined

  const once = (
    store: EventStore.EventStore.Service,
    id: string,
    command: Command
  ): Effect.Effect<Result<State, Event>, E | HandlerError, EventStore.EventStore> =>
    Effect.flatMap(repository.loadOrInitial(id), (loaded): Effect.Effect<Result<State, Event>, E | HandlerError> => {
      const decided = aggregate.decide(command, loaded.state)
      if (Either.isLeft(decided)) return Effect.fail(decided.left)
      const events = decided.right
      if (events.length === 0) {
        return Effect.succeed({ events, state: loaded.state, version: loaded.version, position: 0 })
      }
      const encoded = encodeAll(encode, loaded.streamId, events, metadataOf(command))
      if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
      return Effect.map(
        store.append(loaded.streamId, encoded.right, ExpectedVersion.Exact(loaded.version)),
        ({ position, version }) => {
          let state = loaded.state
          for (const event of events) state = aggregate.evolve(state, event)
          return { events, state, version, position }
        }
      )
    })

  return (id, command) =>
    Effect.flatMap(EventStore.EventStore, (store) => {
      const attempt = Effect.retry(once(store, id, command), {
        // `while` lets only conflicts reach the schedule, so its narrower input type is safe
        schedule: retry as Schedule.Schedule<unknown, E | HandlerError>,
        while: (error) => isConcurrencyConflict(error)
      })
      const run = options.lock === true
        ? Effect.flatMap(
          repository.streamId(id),
          (streamId) => Effect.scoped(Effect.zipRight(store.lock(streamId), attempt))
        )
        : attempt
      return Effect.withSpan(run, "CommandHandler.handle", { attributes: { "aggregate": aggregate.name, id } })
    })
}

const isConcurrencyConflict = (error: unknown): error is EventStore.ConcurrencyConflict =>
  error instanceof EventStore.ConcurrencyConflict
