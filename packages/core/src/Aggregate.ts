/**
 * Aggregates as pure functions: `decide(command, state)` returns the events to record (or a domain error), and
 * `evolve(state, event)` folds an event into the state. The `events` Schema (a union of tagged structs or classes)
 * encodes events for storage: `_tag` becomes the stored `type`, the rest of the encoded value becomes `data`.
 *
 * @example
 * ```ts
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Number }) {}
 *
 * const Counter = Aggregate.make({
 *   name: "counter",
 *   events: Incremented,
 *   initialState: 0,
 *   decide: (command: { readonly by: number }, _state) => Either.right([new Incremented({ by: command.by })]),
 *   evolve: (state, event) => state + event.by
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { causeMessage } from "./internal/causeMessage.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/Aggregate")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * The aggregate's stream has no events.
 *
 * @since 0.2.0
 * @category errors
 */
export class AggregateNotFound extends Schema.TaggedError<AggregateNotFound>()("AggregateNotFound", {
  streamId: Schema.String
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Aggregate ${this.streamId} not found`
  }
}

/**
 * A stored event no longer decodes with the aggregate's events Schema.
 *
 * @since 0.2.0
 * @category errors
 */
export class EventDecodeError extends Schema.TaggedError<EventDecodeError>()("EventDecodeError", {
  streamId: Schema.String,
  version: Schema.Number,
  type: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Cannot decode event ${this.type} at ${this.streamId}@${this.version}: ${causeMessage(this.cause)}`
  }
}

/**
 * An event could not be encoded with the aggregate's events Schema; nothing was written.
 *
 * @since 0.2.0
 * @category errors
 */
export class EventEncodeError extends Schema.TaggedError<EventEncodeError>()("EventEncodeError", {
  streamId: Schema.String,
  type: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Cannot encode event ${this.type} for ${this.streamId}: ${causeMessage(this.cause)}`
  }
}

/**
 * Input given as a command did not decode with the aggregate's `commands` Schema (or the aggregate has none); it
 * never reached `decide` and nothing was written.
 *
 * @since 0.2.0
 * @category errors
 */
export class CommandDecodeError extends Schema.TaggedError<CommandDecodeError>()("CommandDecodeError", {
  aggregate: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `Invalid ${this.aggregate} command: ${causeMessage(this.cause)}`
  }
}

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * The encoded form every event must have: a string `_tag`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tagged {
  readonly _tag: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Aggregate<State, Command, Event, E = never> {
  readonly [TypeId]: TypeId
  /** The stream category: stream ids are `"<name>-<id>"`. */
  readonly name: string
  readonly events: Schema.Schema<Event, Tagged>
  readonly state: Schema.Schema<State, unknown> | undefined
  readonly commands: Schema.Schema<Command, unknown> | undefined
  readonly initialState: State
  readonly decide: (command: Command, state: State) => Either.Either<ReadonlyArray<Event>, E>
  readonly evolve: (state: State, event: Event) => State
  /** Event types that are skipped when loading (events retired from the domain). */
  readonly retired: ReadonlySet<string>
  /** Take a snapshot every N events (used when a `SnapshotStore` is provided and `state` is set). */
  readonly snapshotEvery: number | undefined
}

/**
 * @since 0.1.0
 */
export declare namespace Aggregate {
  /**
   * @since 0.1.0
   * @category models
   */
  export type State<A> = A extends Aggregate<infer S, infer _C, infer _Ev, infer _E> ? S : never
  /**
   * @since 0.1.0
   * @category models
   */
  export type Command<A> = A extends Aggregate<infer _S, infer C, infer _Ev, infer _E> ? C : never
  /**
   * @since 0.1.0
   * @category models
   */
  export type Event<A> = A extends Aggregate<infer _S, infer _C, infer Ev, infer _E> ? Ev : never
  /**
   * @since 0.1.0
   * @category models
   */
  export type Error<A> = A extends Aggregate<infer _S, infer _C, infer _Ev, infer E> ? E : never
}

/**
 * Defines an aggregate. `State`, `Command`, `Event` and the domain error `E` are inferred: `Event` from the
 * `events` Schema, `State` from the `state` Schema (or from `initialState` when there is none), `Command` from
 * `commands` or from the annotation of `decide`'s first parameter, `E` from every `Either` that `decide` returns.
 *
 * One TypeScript limit: a literal written in `evolve`'s returned object (`{ ...state, status: "closed" }`) is
 * widened to `string` while the call is being inferred. Write `"closed" as const`, or annotate the return type.
 *
 * @example
 * ```ts
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
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
 * // State = number, Command = Increment, Event = Incremented, E = TooLarge
 * assert.strictEqual(Aggregate.fold(Counter, [new Incremented({ by: 2 }), new Incremented({ by: 3 })]), 5)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export function make<
  Event,
  EventEncoded extends Tagged,
  State,
  Command,
  Decision extends Either.Either<ReadonlyArray<Event>, unknown>,
  StateEncoded,
  CommandEncoded = Command
>(options: {
  readonly name: string
  readonly events: Schema.Schema<Event, EventEncoded>
  readonly state: Schema.Schema<State, StateEncoded>
  readonly commands?: Schema.Schema<Command, CommandEncoded>
  readonly initialState: NoInfer<State>
  readonly decide: (command: Command, state: NoInfer<State>) => Decision
  readonly evolve: (state: NoInfer<State>, event: NoInfer<Event>) => State
  readonly retired?: ReadonlyArray<string>
  readonly snapshotEvery?: number
}): Aggregate<State, Command, Event, Either.Either.Left<Decision>>
export function make<
  Event,
  EventEncoded extends Tagged,
  State,
  Command,
  Decision extends Either.Either<ReadonlyArray<Event>, unknown>,
  CommandEncoded = Command
>(options: {
  readonly name: string
  readonly events: Schema.Schema<Event, EventEncoded>
  readonly commands?: Schema.Schema<Command, CommandEncoded>
  readonly initialState: State
  readonly decide: (command: Command, state: NoInfer<State>) => Decision
  readonly evolve: (state: NoInfer<State>, event: NoInfer<Event>) => NoInfer<State>
  readonly retired?: ReadonlyArray<string>
  readonly snapshotEvery?: number
}): Aggregate<State, Command, Event, Either.Either.Left<Decision>>
export function make(options: {
  readonly name: string
  readonly events: Schema.Schema<unknown, Tagged>
  readonly state?: Schema.Schema<unknown, unknown>
  readonly commands?: Schema.Schema<unknown, unknown>
  readonly initialState: unknown
  readonly decide: (command: unknown, state: unknown) => Either.Either<ReadonlyArray<unknown>, unknown>
  readonly evolve: (state: unknown, event: unknown) => unknown
  readonly retired?: ReadonlyArray<string>
  readonly snapshotEvery?: number
}): Aggregate<unknown, unknown, unknown, unknown> {
  return {
    [TypeId]: TypeId,
    name: options.name,
    events: options.events,
    state: options.state,
    commands: options.commands,
    initialState: options.initialState,
    decide: options.decide,
    evolve: options.evolve,
    retired: new Set(options.retired ?? []),
    snapshotEvery: options.snapshotEvery
  }
}

/**
 * Folds events into a state, starting from `from` (default: the aggregate's initial state).
 *
 * @since 0.1.0
 * @category combinators
 */
export const fold = <State, Command, Event, E>(
  aggregate: Aggregate<State, Command, Event, E>,
  events: Iterable<Event>,
  from?: State
): State => {
  let state = from === undefined ? aggregate.initialState : from
  for (const event of events) state = aggregate.evolve(state, event)
  return state
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isAggregate = (u: unknown): u is Aggregate<unknown, unknown, unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

const decoders = new WeakMap<object, (input: unknown) => Effect.Effect<unknown, CommandDecodeError>>()

/**
 * Decodes unknown input (a request body, a message) into a command with the aggregate's `commands` Schema, the way
 * `Schema.decodeUnknown` does, failing with a typed {@link CommandDecodeError} instead of a `ParseError`. Commands
 * that come from outside the program should go through it (or through the handler's `handleUnknown`): `decide`
 * then only ever sees valid commands.
 *
 * @example
 * ```ts
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Effect, Either, Schema } from "effect"
 *
 * class Incremented extends Schema.TaggedClass<Incremented>()("Incremented", { by: Schema.Int }) {}
 * class Increment extends Schema.TaggedClass<Increment>()("Increment", { by: Schema.Int }) {}
 *
 * const Counter = Aggregate.make({
 *   name: "counter",
 *   events: Incremented,
 *   commands: Increment,
 *   initialState: 0,
 *   decide: (command) => Either.right([new Incremented({ by: command.by })]),
 *   evolve: (state, event) => state + event.by
 * })
 *
 * const decode = Aggregate.decodeCommand(Counter)
 * const program = Effect.all([
 *   Effect.either(decode({ _tag: "Increment", by: 2 })),
 *   Effect.either(decode({ _tag: "Increment", by: "two" }))
 * ])
 * Effect.runPromise(program).then(([ok, refused]) => {
 *   assert.ok(Either.isRight(ok) && ok.right instanceof Increment)
 *   assert.ok(Either.isLeft(refused) && refused.left._tag === "CommandDecodeError")
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const decodeCommand = <State, Command, Event, E>(
  aggregate: Aggregate<State, Command, Event, E>
): (input: unknown) => Effect.Effect<Command, CommandDecodeError> => {
  const cached = decoders.get(aggregate)
  if (cached !== undefined) return cached as (input: unknown) => Effect.Effect<Command, CommandDecodeError>
  const schema = aggregate.commands
  const decoder = schema === undefined
    ? (_input: unknown) =>
      Effect.fail(
        new CommandDecodeError({ aggregate: aggregate.name, cause: new Error("the aggregate has no commands Schema") })
      )
    : (() => {
      const decode = Schema.decodeUnknownEither(schema)
      return (input: unknown) => {
        const decoded = decode(input)
        return Either.isRight(decoded)
          ? Effect.succeed(decoded.right)
          : Effect.fail(new CommandDecodeError({ aggregate: aggregate.name, cause: decoded.left }))
      }
    })()
  decoders.set(aggregate, decoder)
  return decoder
}
