/**
 * Handles commands for one aggregate: load → decide → append with `Exact(version)`. On a `ConcurrencyConflict` the
 * aggregate is reloaded and the command decided again, as often as the retry Schedule allows (the Schedule sees
 * conflicts only). A command whose `decide` returns no events writes nothing.
 *
 * - `handle(id, command, { commandId })`: the command's events get ids derived from `commandId`, so handling the same
 *   command again after an unknown outcome (`CommitOutcomeUnknown`, a timeout) replays instead of writing twice.
 * - `handle.handleUnknown(id, input)`: decodes input from outside with the aggregate's `commands` Schema first
 *   (`CommandDecodeError` when it does not decode; `decide` never sees it).
 * - `lock: true` runs the cycle under `EventStore.withLock` (`lockTimeout` bounds the wait: `LockTimeout`).
 * - Inside `Repository.unitOfWork` the load reads the unit's identity map and the append is collected by the unit
 *   (the result's `position` is 0), to be committed with the unit's other appends at its end.
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
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Aggregate from "./Aggregate.js"
import * as EventStore from "./EventStore.js"
import * as InternalRepository from "./internal/repository.js"
import { retryOnly } from "./internal/retry.js"
import type * as Repository from "./Repository.js"
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
  /**
   * How to retry after a `ConcurrencyConflict` (default: {@link defaultRetry}). The Schedule is stepped with
   * conflicts only; every other failure ends the command at once.
   */
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict>
  /**
   * Hold the stream's lock for the whole load → decide → append cycle (`EventStore.withLock`: on PostgreSQL the
   * cycle runs in one transaction on the connection that holds the lock).
   */
  readonly lock?: boolean
  /** With `lock`: how long to wait for the lock before failing with `LockTimeout` (default: no limit). */
  readonly lockTimeout?: Duration.DurationInput
  /**
   * For commands handled with a `commandId`: how to re-send the same append (same events, event ids and expected
   * version, which is always safe) after `CommitOutcomeUnknown` (default: {@link defaultResend}).
   */
  readonly resend?: Schedule.Schedule<unknown, EventStore.CommitOutcomeUnknown>
  /** Metadata stored with every event of the command. */
  readonly metadata?: EventStore.EventMetadata | ((command: Command) => EventStore.EventMetadata)
  /**
   * Load through an aggregate state cache of the handler's own (see `Repository.CacheOptions`): a command reads
   * only the events after the cached version, and a conflict reloads only the tail.
   *
   * @since 0.3.0
   */
  readonly cache?: Repository.CacheOptions | undefined
}

/**
 * Options of one handled command.
 *
 * @since 0.2.0
 * @category models
 */
export interface HandleOptions {
  /**
   * The command's own id (a request id, a message id: any string, unique per command). The events the command
   * decides then get ids derived from it (name-based uuids of the aggregate name, the stream id, the command id and
   * the event's index), so handling the same command again after an unknown outcome (`CommitOutcomeUnknown`, a
   * timeout, a crash) cannot write it twice: if its events were committed, the store recognises them and the handler
   * returns the original result; if `decide` now gives other events, it fails with `EventIdConflict` and writes
   * nothing. The handler itself re-sends the same append after `CommitOutcomeUnknown` (see `Options.resend`).
   */
  readonly commandId?: string
}

/**
 * The failures of a handled command besides the domain error `E`.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerError =
  | EventStore.AppendError
  | EventStore.LockTimeout
  | Aggregate.EventDecodeError
  | Aggregate.EventEncodeError
  | StreamId.InvalidStreamId

/**
 * @since 0.1.0
 * @category models
 */
export interface CommandHandler<State, Command, Event, E> {
  (
    id: string,
    command: Command,
    options?: HandleOptions
  ): Effect.Effect<Result<State, Event>, E | HandlerError, EventStore.EventStore>
  /**
   * Decodes unknown input (a request body, a message) with the aggregate's `commands` Schema, then handles it: input
   * that does not decode fails with `CommandDecodeError` and never reaches `decide` (see `Aggregate.decodeCommand`).
   */
  readonly handleUnknown: (
    id: string,
    input: unknown,
    options?: HandleOptions
  ) => Effect.Effect<Result<State, Event>, E | HandlerError | Aggregate.CommandDecodeError, EventStore.EventStore>
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
 * Three immediate re-sends of an append whose outcome was unknown (commands with a `commandId` only): the store
 * usually answers on a fresh connection at once; when it does not, the caller gets `CommitOutcomeUnknown` and may
 * handle the command again later with the same `commandId`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const defaultResend: Schedule.Schedule<number, unknown> = Schedule.recurs(3)

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
  const repository = InternalRepository.make(aggregate, { cache: options.cache }, "CommandHandler.make")
  const retry = options.retry ?? defaultRetry
  const resend = options.resend ?? defaultResend
  const lockOptions: EventStore.LockOptions | undefined = options.lockTimeout === undefined
    ? undefined
    : { timeout: options.lockTimeout }
  const decodeCommand = Aggregate.decodeCommand(aggregate)
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

  /** An append as it was sent: what a re-send after an unknown outcome sends again. */
  interface Sent {
    readonly current: InternalRepository.Current<State>
    readonly events: ReadonlyArray<Event>
    readonly metadata: EventStore.EventMetadata
  }

  const append = (
    store: EventStore.EventStore.Service,
    { current, events, metadata }: Sent,
    commandId: string | undefined
  ): Effect.Effect<Result<State, Event>, HandlerError> =>
    Effect.map(
      repository.appendTo(store, current, events, metadata, commandId),
      ({ position, state, version }): Result<State, Event> => ({ events, state, version, position })
    )

  /** One load → decide → append; `sent` learns the append before it is sent (commands with a `commandId`). */
  const once = (
    store: EventStore.EventStore.Service,
    streamId: StreamId.StreamId,
    command: Command,
    commandId: string | undefined,
    sent: ((append: Sent) => void) | undefined
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
        return Effect.flatMap(metadataOf(command), (metadata) => {
          const request: Sent = { current, events, metadata }
          if (sent !== undefined) sent(request)
          return append(store, request, commandId)
        })
      }
    )

  const handle = (
    id: string,
    command: Command,
    handleOptions?: HandleOptions
  ): Effect.Effect<Result<State, Event>, E | HandlerError, EventStore.EventStore> =>
    Effect.flatMap(EventStore.EventStore, (store) => {
      const commandId = handleOptions?.commandId
      const run = Effect.flatMap(repository.streamId(id), (streamId) => {
        let last: Sent | undefined
        const cycle = retryOnly(
          once(store, streamId, command, commandId, commandId === undefined ? undefined : (sent) => last = sent),
          isConcurrencyConflict,
          retry
        )
        const locked = options.lock === true ? store.withLock(streamId, cycle, lockOptions) : cycle
        if (commandId === undefined) return locked
        // after `CommitOutcomeUnknown` (of the append, or of the locked transaction's commit) the same append again,
        // as the `resend` Schedule allows: the store recognises it by its event ids if it was committed; a conflict
        // means it was not and another writer came first: the command is then handled again
        let attempts = 0
        const attempt = Effect.suspend(() =>
          attempts++ === 0 || last === undefined ? locked : append(store, last, commandId)
        )
        return Effect.catchIf(
          retryOnly(attempt, isCommitOutcomeUnknown, resend),
          (error) => attempts > 1 && isConcurrencyConflict(error),
          () => locked
        )
      })
      return Effect.withSpan(run, "CommandHandler.handle", { attributes: { "aggregate": aggregate.name, id } })
    })

  return Object.assign(handle, {
    handleUnknown: (id: string, input: unknown, handleOptions?: HandleOptions) =>
      Effect.flatMap(decodeCommand(input), (command) => handle(id, command, handleOptions))
  })
}

const isConcurrencyConflict = (error: unknown): error is EventStore.ConcurrencyConflict =>
  error instanceof EventStore.ConcurrencyConflict

const isCommitOutcomeUnknown = (error: unknown): error is EventStore.CommitOutcomeUnknown =>
  error instanceof EventStore.CommitOutcomeUnknown
