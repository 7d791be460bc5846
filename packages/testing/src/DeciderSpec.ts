/**
 * Given / when / then specifications for an {@link Aggregate.Aggregate}: given past events, when a command is
 * decided, then it emits these events, fails with this error, or emits nothing. Every specification is an `Effect`
 * to run inside `it.effect`; a mismatch fails it with a {@link SpecFailure} that shows the given events, the
 * command, what was expected and what happened, with a line diff of the events.
 *
 * Events are compared on their encoded form (through the aggregate's `events` Schema), so class instances,
 * `DateTime`s and other Schema types compare by value; errors and states are compared structurally (Effect's
 * `Equal`, then field by field).
 *
 * @example
 * ```ts
 * import { DeciderSpec } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * const Amount = Schema.Int.pipe(Schema.positive())
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Amount }) {}
 * class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Amount }) {}
 * class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Amount }) {}
 * class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", { amount: Amount }) {}
 * class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", { balance: Schema.Int }) {}
 *
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Schema.Union(Deposited, Withdrawn),
 *   commands: Schema.Union(Deposit, Withdraw),
 *   initialState: { balance: 0 },
 *   decide: (command, state) =>
 *     command._tag === "Deposit"
 *       ? Either.right([new Deposited({ amount: command.amount })])
 *       : command.amount > state.balance
 *       ? Either.left(new InsufficientFunds({ balance: state.balance }))
 *       : Either.right([new Withdrawn({ amount: command.amount })]),
 *   evolve: (state, event) => ({
 *     balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount
 *   })
 * })
 *
 * it.effect("a withdrawal above the balance is refused", () =>
 *   DeciderSpec.given(Account, [new Deposited({ amount: 10 })])
 *     .when(new Withdraw({ amount: 20 }))
 *     .thenFails(new InsufficientFunds({ balance: 10 })))
 * ```
 *
 * @since 0.1.0
 */
import type * as Aggregate from "@effect-eventsourcing/core/Aggregate"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import {
  attempt,
  diffLists,
  encodeOr,
  encodeProblem,
  equivalent,
  indent,
  list,
  show,
  thrown
} from "./internal/values.js"

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * A specification did not hold. `expected` and `actual` hold the compared values (events in their encoded form),
 * so test runners that diff `expected` / `actual` (vitest does) show a diff as well; `message` is a readable
 * report of given / when / expected / actual.
 *
 * @since 0.1.0
 * @category errors
 */
export class SpecFailure extends Schema.TaggedError<SpecFailure>()("SpecFailure", {
  aggregate: Schema.String,
  reason: Schema.String,
  expected: Schema.Unknown,
  actual: Schema.Unknown,
  report: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.report
  }
}

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * An error class, for {@link When.thenFails} when only the kind of error matters.
 *
 * @since 0.1.0
 * @category models
 */
export type ErrorClass<E> = abstract new(...args: Array<never>) => E

/**
 * The aggregate after some past events.
 *
 * @since 0.1.0
 * @category models
 */
export interface Given<State, Command, Event, E> {
  readonly aggregate: Aggregate.Aggregate<State, Command, Event, E>
  readonly events: ReadonlyArray<Event>
  /** Decides `command` on the state folded from the given events. */
  readonly when: (command: Command) => When<State, Command, Event, E>
  /** The state folded from the given events equals `expected`. */
  readonly thenState: (expected: State) => Effect.Effect<void, SpecFailure>
}

/**
 * A command decided on a given state; end it with one of the `then*` expectations.
 *
 * @since 0.1.0
 * @category models
 */
export interface When<State, Command, Event, E> {
  readonly given: Given<State, Command, Event, E>
  readonly command: Command
  /** The command is accepted and emits exactly these events, in this order. */
  readonly then: (expected: ReadonlyArray<Event>) => Effect.Effect<void, SpecFailure>
  /**
   * The command is refused with this error (compared structurally), or with any instance of this error class.
   */
  readonly thenFails: (expected: E | ErrorClass<E>) => Effect.Effect<void, SpecFailure>
  /** The command is accepted and emits no events (nothing to do). */
  readonly thenNothing: () => Effect.Effect<void, SpecFailure>
  /** The command is accepted and the state after its events equals `expected`. */
  readonly thenState: (expected: State) => Effect.Effect<void, SpecFailure>
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Starts a specification from past events (none by default: the initial state). Types are inferred from the
 * aggregate.
 *
 * @example
 * ```ts
 * import { DeciderSpec } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * const Amount = Schema.Int.pipe(Schema.positive())
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Amount }) {}
 * class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Amount }) {}
 * class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Amount }) {}
 * class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", { amount: Amount }) {}
 * class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", { balance: Schema.Int }) {}
 *
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Schema.Union(Deposited, Withdrawn),
 *   commands: Schema.Union(Deposit, Withdraw),
 *   initialState: { balance: 0 },
 *   decide: (command, state) =>
 *     command._tag === "Deposit"
 *       ? Either.right([new Deposited({ amount: command.amount })])
 *       : command.amount > state.balance
 *       ? Either.left(new InsufficientFunds({ balance: state.balance }))
 *       : Either.right([new Withdrawn({ amount: command.amount })]),
 *   evolve: (state, event) => ({
 *     balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount
 *   })
 * })
 *
 * it.effect("a deposit is recorded", () =>
 *   DeciderSpec.given(Account, [new Deposited({ amount: 5 })])
 *     .when(new Deposit({ amount: 10 }))
 *     .then([new Deposited({ amount: 10 })]))
 *
 * it.effect("a withdrawal from an empty account is refused", () =>
 *   DeciderSpec.given(Account).when(new Withdraw({ amount: 1 })).thenFails(InsufficientFunds))
 *
 * it.effect("the state folds the history", () =>
 *   DeciderSpec.given(Account, [new Deposited({ amount: 10 }), new Withdrawn({ amount: 3 })])
 *     .thenState({ balance: 7 }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const given = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  events: ReadonlyArray<NoInfer<Event>> = []
): Given<State, Command, Event, E> => {
  const self: Given<State, Command, Event, E> = {
    aggregate,
    events,
    when: (command) => makeWhen(self, command),
    thenState: (expected) =>
      Effect.suspend(() =>
        Either.flatMap(foldGiven(self), (state) => compareState(self, noCommand, expected, state, "the state differs"))
      )
  }
  return self
}

/**
 * Specifications bound to one aggregate, so that each starts at `given(events)`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Spec<State, Command, Event, E> {
  readonly aggregate: Aggregate.Aggregate<State, Command, Event, E>
  /** Starts a specification from past events (none by default: the initial state). */
  readonly given: (events?: ReadonlyArray<Event>) => Given<State, Command, Event, E>
}

/**
 * Binds specifications to an aggregate once per test file: `spec.given(events).when(command).then(events)`.
 *
 * @example
 * ```ts
 * import { DeciderSpec } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Aggregate } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * const Amount = Schema.Int.pipe(Schema.positive())
 * class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Amount }) {}
 * class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Amount }) {}
 * class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Amount }) {}
 * class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", { amount: Amount }) {}
 * class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", { balance: Schema.Int }) {}
 *
 * const Account = Aggregate.make({
 *   name: "account",
 *   events: Schema.Union(Deposited, Withdrawn),
 *   commands: Schema.Union(Deposit, Withdraw),
 *   initialState: { balance: 0 },
 *   decide: (command, state) =>
 *     command._tag === "Deposit"
 *       ? Either.right([new Deposited({ amount: command.amount })])
 *       : command.amount > state.balance
 *       ? Either.left(new InsufficientFunds({ balance: state.balance }))
 *       : Either.right([new Withdrawn({ amount: command.amount })]),
 *   evolve: (state, event) => ({
 *     balance: event._tag === "Deposited" ? state.balance + event.amount : state.balance - event.amount
 *   })
 * })
 *
 * const spec = DeciderSpec.make(Account)
 *
 * it.effect("a deposit is recorded", () =>
 *   spec.given([]).when(new Deposit({ amount: 10 })).then([new Deposited({ amount: 10 })]))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>
): Spec<State, Command, Event, E> => ({
  aggregate,
  given: (events = []) => given(aggregate, events)
})

// -------------------------------------------------------------------------------------
// internal
// -------------------------------------------------------------------------------------

interface NoCommand {
  readonly _tag: "NoCommand"
}

const noCommand: NoCommand = { _tag: "NoCommand" }

const encodeEvents =
  <Event>(aggregate: Aggregate.Aggregate<unknown, unknown, Event, unknown>) =>
  (events: ReadonlyArray<Event>): ReadonlyArray<unknown> => events.map((event) => encodeOr(aggregate.events, event))

const failure = <State, Command, Event, E>(
  given: Given<State, Command, Event, E>,
  command: Command | NoCommand,
  reason: string,
  expected: unknown,
  actual: unknown,
  sections: ReadonlyArray<readonly [string, string]>
): SpecFailure => {
  const aggregate = given.aggregate as Aggregate.Aggregate<unknown, unknown, Event, unknown>
  const lines = [
    `DeciderSpec(${aggregate.name}): ${reason}`,
    "given:",
    list(encodeEvents(aggregate)(given.events), "(no events: the initial state)"),
    ...(command === noCommand ? [] : ["when:", indent(show(encodeOr(aggregate.commands, command)))]),
    ...sections.flatMap(([title, body]) => [`${title}:`, body])
  ]
  return new SpecFailure({ aggregate: aggregate.name, reason, expected, actual, report: lines.join("\n") })
}

const foldGiven = <State, Command, Event, E>(
  given: Given<State, Command, Event, E>
): Either.Either<State, SpecFailure> => {
  let state = given.aggregate.initialState
  for (let i = 0; i < given.events.length; i++) {
    const event = given.events[i]!
    const next = attempt(() => given.aggregate.evolve(state, event))
    if (Either.isLeft(next)) {
      return Either.left(
        failure(given, noCommand, `evolve threw on given event #${i + 1}`, undefined, undefined, [
          ["error", indent(thrown(next.left))],
          ["state before it", indent(show(state))]
        ])
      )
    }
    state = next.right
  }
  return Either.right(state)
}

const compareState = <State, Command, Event, E>(
  given: Given<State, Command, Event, E>,
  command: Command | NoCommand,
  expected: State,
  actual: State,
  reason: string,
  emitted: ReadonlyArray<readonly [string, string]> = []
): Either.Either<void, SpecFailure> => {
  const expectedEncoded = encodeOr(given.aggregate.state, expected)
  const actualEncoded = encodeOr(given.aggregate.state, actual)
  if (equivalent(expected, actual) || equivalent(expectedEncoded, actualEncoded)) return Either.void
  return Either.left(
    failure(given, command, reason, expectedEncoded, actualEncoded, [
      ...emitted,
      ["expected state", indent(show(expectedEncoded))],
      ["actual state", indent(show(actualEncoded))]
    ])
  )
}

const makeWhen = <State, Command, Event, E>(
  given: Given<State, Command, Event, E>,
  command: Command
): When<State, Command, Event, E> => {
  const aggregate = given.aggregate
  const encode = encodeEvents(aggregate as Aggregate.Aggregate<unknown, unknown, Event, unknown>)

  const decided: () => Either.Either<
    { readonly state: State; readonly decision: Either.Either<ReadonlyArray<Event>, E> },
    SpecFailure
  > = () =>
    Either.flatMap(foldGiven(given), (state) => {
      const decision = attempt(() => aggregate.decide(command, state))
      if (Either.isLeft(decision)) {
        return Either.left(
          failure(given, command, "decide threw instead of returning an Either", undefined, undefined, [
            ["error", indent(thrown(decision.left))]
          ])
        )
      }
      if (!Either.isEither(decision.right)) {
        return Either.left(
          failure(given, command, "decide did not return an Either", undefined, decision.right, [
            ["returned", indent(show(decision.right))]
          ])
        )
      }
      return Either.right({ state, decision: decision.right })
    })

  /** the accepted events, or a failure saying the command was refused */
  const accepted = (
    expectation: ReadonlyArray<readonly [string, string]>,
    expected: unknown
  ): Either.Either<{ readonly state: State; readonly events: ReadonlyArray<Event> }, SpecFailure> =>
    Either.flatMap(decided(), ({ decision, state }) =>
      Either.isRight(decision)
        ? Either.right({ state, events: decision.right })
        : Either.left(
          failure(given, command, "the command was refused", expected, decision.left, [
            ...expectation,
            ["actual error", indent(show(decision.left))]
          ])
        ))

  const checkEncodable = (events: ReadonlyArray<Event>, which: string): Either.Either<void, SpecFailure> => {
    for (let i = 0; i < events.length; i++) {
      const problem = encodeProblem(aggregate.events, events[i]!)
      if (problem !== undefined) {
        return Either.left(
          failure(
            given,
            command,
            `${which} event #${i + 1} does not encode with the events Schema`,
            undefined,
            events[i],
            [
              ["event", indent(show(events[i]))],
              ["problem", indent(problem)]
            ]
          )
        )
      }
    }
    return Either.void
  }

  const then = (
    expected: ReadonlyArray<Event>,
    ...rest: ReadonlyArray<unknown>
  ): Effect.Effect<void, SpecFailure> => {
    if (!Array.isArray(expected)) {
      // `when(...)` has a `then` method, so `await` treats it as a promise: reject with a hint instead of hanging
      const reject = rest[0]
      if (typeof reject === "function") {
        reject(new Error("DeciderSpec: run the Effect of .then(events), .thenFails(error) or .thenNothing()"))
      }
      return Effect.die(new TypeError("DeciderSpec: .then expects an array of events"))
    }
    return Effect.suspend(() => {
      const expectedEncoded = encode(expected)
      return accepted([["expected events", list(expectedEncoded)]], expectedEncoded).pipe(
        Either.flatMap(({ events }) =>
          Either.flatMap(checkEncodable(events, "emitted"), () => checkEncodable(expected, "expected"))
            .pipe(Either.map(() => events))
        ),
        Either.flatMap((events) => {
          const actualEncoded = encode(events)
          if (
            actualEncoded.length === expectedEncoded.length &&
            actualEncoded.every((e, i) => equivalent(e, expectedEncoded[i]))
          ) {
            return Either.void
          }
          return Either.left(
            failure(given, command, "the emitted events differ", expectedEncoded, actualEncoded, [
              ["expected events", list(expectedEncoded)],
              ["actual events", list(actualEncoded)],
              ["diff (- expected, + actual)", indent(diffLists(expectedEncoded, actualEncoded), "  ")]
            ])
          )
        })
      )
    })
  }

  return {
    given,
    command,
    then,
    thenFails: (expected) =>
      Effect.suspend(() => {
        const isClass = typeof expected === "function"
        const expectedText = isClass ? `an instance of ${(expected as ErrorClass<E>).name}` : show(expected)
        return Either.flatMap(decided(), ({ decision }) => {
          if (Either.isRight(decision)) {
            const actualEncoded = encode(decision.right)
            return Either.left(
              failure(given, command, "the command was accepted, expected a failure", expected, actualEncoded, [
                ["expected error", indent(expectedText)],
                ["actual events", list(actualEncoded)]
              ])
            )
          }
          const ok = isClass
            ? decision.left instanceof (expected as ErrorClass<E>)
            : equivalent(decision.left, expected)
          return ok ? Either.void : Either.left(
            failure(given, command, "the command failed with another error", expected, decision.left, [
              ["expected error", indent(expectedText)],
              ["actual error", indent(show(decision.left))]
            ])
          )
        })
      }),
    thenNothing: () =>
      Effect.suspend(() =>
        Either.flatMap(accepted([["expected", indent("no events")]], []), ({ events }) => {
          if (events.length === 0) return Either.void
          const actualEncoded = encode(events)
          return Either.left(
            failure(given, command, "expected no events", [], actualEncoded, [
              ["expected events", list([])],
              ["actual events", list(actualEncoded)]
            ])
          )
        })
      ),
    thenState: (expected) =>
      Effect.suspend(() =>
        Either.flatMap(
          accepted([["expected state", indent(show(encodeOr(aggregate.state, expected)))]], expected),
          ({ events, state }) => {
            const next = attempt(() => events.reduce(aggregate.evolve, state))
            if (Either.isLeft(next)) {
              return Either.left(
                failure(given, command, "evolve threw on an emitted event", expected, undefined, [
                  ["error", indent(thrown(next.left))]
                ])
              )
            }
            return compareState(given, command, expected, next.right, "the state after the command differs", [[
              "emitted events",
              list(encode(events))
            ]])
          }
        )
      )
  }
}
