/**
 * Property-based laws for an {@link Aggregate.Aggregate}, over arbitraries derived from its Schemas
 * (`effect/Arbitrary`): commands from `aggregate.commands` (or the `commands` option), events from
 * `aggregate.events`. Call {@link suite} inside a `describe` to register every law as an `@effect/vitest` property test:
 *
 * - **decide is deterministic**: on every state reached by a generated command sequence, deciding the same command
 *   twice gives equal results;
 * - **evolve is total**: folding any generated event history neither throws nor returns `undefined`;
 * - **a rejected command emits nothing**: `decide` returns an `Either` (never throws), and neither a rejection nor
 *   an acceptance mutates the state it was given;
 * - **invariants hold on every reachable state**: your invariants hold on the initial state and after every
 *   accepted command of generated command sequences (states reached through `decide`, not random states); emitted
 *   events encode with the events Schema and, when the aggregate has a `state` Schema, states encode with it;
 * - **fold equals step-by-step evolution**: folding a history at once, twice, or in two parts gives equal states
 *   (which snapshots rely on).
 *
 * A failing law shows fast-check's shrunk counterexample (the command sequence) and a trace of every step.
 * The laws are also available as values ({@link laws}) to run with `FastCheck` directly.
 *
 * @example
 * ```ts
 * import { DeciderLaws } from "@effect-eventsourcing/testing"
 * import { describe } from "@effect/vitest"
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
 * describe("Account laws", () => {
 *   DeciderLaws.suite(Account, {
 *     invariants: { "the balance is never negative": (state) => state.balance >= 0 },
 *     numRuns: 200
 *   })
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Aggregate from "@effect-eventsourcing/core/Aggregate"
import { it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import { attempt, encodeOr, encodeProblem, equivalent, indent, show, thrown } from "./internal/values.js"

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * A law did not hold for a generated input; `description` says how, with a trace of the steps.
 *
 * @since 0.1.0
 * @category errors
 */
export class LawViolation extends Schema.TaggedError<LawViolation>()("LawViolation", {
  aggregate: Schema.String,
  law: Schema.String,
  description: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `DeciderLaws(${this.aggregate}): law "${this.law}" does not hold\n${this.description}`
  }
}

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<State, Command, Event> {
  /** Runs per law (default: 100). */
  readonly numRuns?: number
  /** A fixed seed, to replay a failure. */
  readonly seed?: number
  /** Named predicates that must hold on every reachable state. */
  readonly invariants?: Readonly<Record<string, (state: State) => boolean>>
  /** Commands to generate; required when the aggregate has no `commands` Schema. */
  readonly commands?: FastCheck.Arbitrary<Command>
  /** Events to generate (default: from the aggregate's `events` Schema). */
  readonly events?: FastCheck.Arbitrary<Event>
  /** The longest generated command sequence (default: 20). */
  readonly maxCommands?: number
  /** The longest generated event history (default: 20). */
  readonly maxEvents?: number
}

/**
 * One law: inputs to generate and a check of one input.
 *
 * @since 0.1.0
 * @category models
 */
export interface Law<A> {
  readonly name: string
  readonly arbitrary: FastCheck.Arbitrary<A>
  readonly check: (input: A) => Either.Either<void, LawViolation>
}

/**
 * The laws of one aggregate.
 *
 * @since 0.1.0
 * @category models
 */
export interface Laws<Command, Event> {
  readonly deterministic: Law<ReadonlyArray<Command>>
  readonly evolveTotal: Law<ReadonlyArray<Event>>
  readonly rejectionEmitsNothing: Law<ReadonlyArray<Command>>
  readonly invariants: Law<ReadonlyArray<Command>>
  readonly foldConsistent: Law<History<Event>>
}

/**
 * A generated history and a point to split it at.
 *
 * @since 0.1.0
 * @category models
 */
export interface History<Event> {
  readonly events: ReadonlyArray<Event>
  readonly split: number
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Builds the laws of an aggregate as values: run one with `FastCheck.assert(DeciderLaws.property(law))`, or check
 * one input with `law.check(input)`.
 *
 * @example
 * ```ts
 * import { DeciderLaws } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { FastCheck } from "effect"
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
 * it("the invariant law holds", () => {
 *   const laws = DeciderLaws.laws(Account, { invariants: { "balance >= 0": (state) => state.balance >= 0 } })
 *   const details = FastCheck.check(DeciderLaws.property(laws.invariants), { numRuns: 100 })
 *   assert.strictEqual(details.failed, false) // node:assert
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const laws = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: Options<NoInfer<State>, NoInfer<Command>, NoInfer<Event>> = {}
): Laws<Command, Event> => {
  const name = aggregate.name
  const commandArbitrary = options.commands ??
    (aggregate.commands === undefined ? undefined : Arbitrary.make(aggregate.commands))
  const eventArbitrary = options.events ?? Arbitrary.make(aggregate.events)
  const commandSequences: FastCheck.Arbitrary<ReadonlyArray<Command>> = commandArbitrary === undefined
    ? FastCheck.constant([])
    : FastCheck.array(commandArbitrary, { maxLength: options.maxCommands ?? 20 })
  const histories = FastCheck.array(eventArbitrary, { maxLength: options.maxEvents ?? 20 })
  const invariants = Object.entries(options.invariants ?? {})

  const violation = (law: string, description: string) =>
    Either.left(new LawViolation({ aggregate: name, law, description }))

  const showCommand = (command: Command) => show(encodeOr(aggregate.commands, command))
  const showEvents = (events: ReadonlyArray<Event>) =>
    events.length === 0 ? "no events" : events.map((e) => show(encodeOr(aggregate.events, e))).join(", ")
  const showState = (state: State) => show(encodeOr(aggregate.state, state))

  interface Step {
    readonly command: Command
    readonly outcome: string
  }

  const trace = (steps: ReadonlyArray<Step>, failing: Command, at: string): string =>
    [
      "commands (shrunk by fast-check to a minimal sequence):",
      ...steps.map((step, i) => indent(`#${i + 1} ${showCommand(step.command)} → ${step.outcome}`)),
      indent(`#${steps.length + 1} ${showCommand(failing)} → ${at}`)
    ].join("\n")

  /**
   * Runs a command sequence from the initial state. `visit` is called for every command with the state before it
   * and may report a problem; accepted commands are evolved into the next state.
   */
  const explore = (
    law: string,
    commands: ReadonlyArray<Command>,
    visit: (
      state: State,
      command: Command,
      decide: () => Either.Either<Either.Either<ReadonlyArray<Event>, E>, string>
    ) => string | undefined,
    afterAccepted?: (state: State, events: ReadonlyArray<Event>) => string | undefined
  ): Either.Either<void, LawViolation> => {
    if (commandArbitrary === undefined) {
      return violation(
        law,
        "no arbitrary for commands: give the aggregate a `commands` Schema or pass `commands` in the options"
      )
    }
    const steps: Array<Step> = []
    let state = aggregate.initialState
    for (const command of commands) {
      const decide = (): Either.Either<Either.Either<ReadonlyArray<Event>, E>, string> => {
        const result = attempt(() => aggregate.decide(command, state))
        if (Either.isLeft(result)) return Either.left(`decide threw ${thrown(result.left)}`)
        if (!Either.isEither(result.right)) return Either.left(`decide returned ${show(result.right)}, not an Either`)
        if (Either.isRight(result.right) && !Array.isArray(result.right.right)) {
          return Either.left(`decide accepted with ${show(result.right.right)}, not an array of events`)
        }
        return Either.right(result.right)
      }
      const problem = visit(state, command, decide)
      if (problem !== undefined) {
        return violation(law, `${trace(steps, command, problem)}\nstate before it: ${showState(state)}`)
      }
      const decided = decide()
      if (Either.isLeft(decided)) return violation(law, `${trace(steps, command, decided.left)}`)
      const outcome = decided.right
      if (Either.isLeft(outcome)) {
        steps.push({ command, outcome: `refused: ${show(outcome.left)}` })
        continue
      }
      const events = outcome.right
      const next = attempt(() => events.reduce(aggregate.evolve, state))
      if (Either.isLeft(next)) {
        return violation(
          law,
          `${trace(steps, command, `accepted: ${showEvents(events)}`)}\nevolve then threw ${thrown(next.left)}`
        )
      }
      if (afterAccepted !== undefined) {
        const broken = afterAccepted(next.right, events)
        if (broken !== undefined) {
          return violation(
            law,
            `${trace(steps, command, `accepted: ${showEvents(events)}`)}\n${broken}\nstate before it: ${
              showState(state)
            }\nstate after it:  ${showState(next.right)}`
          )
        }
      }
      steps.push({ command, outcome: `accepted: ${showEvents(events)}` })
      state = next.right
    }
    return Either.void
  }

  const sameDecision = (
    a: Either.Either<ReadonlyArray<Event>, E>,
    b: Either.Either<ReadonlyArray<Event>, E>
  ): boolean => {
    if (Either.isRight(a) && Either.isRight(b)) {
      const ea = a.right.map((e) => encodeOr(aggregate.events, e))
      const eb = b.right.map((e) => encodeOr(aggregate.events, e))
      return equivalent(ea, eb)
    }
    if (Either.isLeft(a) && Either.isLeft(b)) return equivalent(a.left, b.left)
    return false
  }

  const showDecision = (d: Either.Either<ReadonlyArray<Event>, E>) =>
    Either.isRight(d) ? `accepted: ${showEvents(d.right)}` : `refused: ${show(d.left)}`

  const deterministic: Law<ReadonlyArray<Command>> = {
    name: "decide is deterministic",
    arbitrary: commandSequences,
    check: (commands) =>
      explore("decide is deterministic", commands, (_, __, decide) => {
        const first = decide()
        const second = decide()
        if (Either.isLeft(first) || Either.isLeft(second)) return undefined // reported by explore
        return sameDecision(first.right, second.right)
          ? undefined
          : `decided twice with different results:\n  first:  ${showDecision(first.right)}\n  second: ${
            showDecision(second.right)
          }`
      })
  }

  const rejectionEmitsNothing: Law<ReadonlyArray<Command>> = {
    name: "a rejected command emits nothing and leaves the state untouched",
    arbitrary: commandSequences,
    check: (commands) =>
      explore("a rejected command emits nothing and leaves the state untouched", commands, (state, _, decide) => {
        const before = show(state)
        const decided = decide()
        if (Either.isLeft(decided)) return decided.left
        const after = show(state)
        if (before === after) return undefined
        return `decide mutated the state it was given (${
          Either.isLeft(decided.right) ? "while refusing" : "while accepting"
        }):\n  before: ${before}\n  after:  ${after}`
      })
  }

  const invariantsLaw: Law<ReadonlyArray<Command>> = {
    name: "invariants hold on every reachable state",
    arbitrary: commandSequences,
    check: (commands) => {
      const law = "invariants hold on every reachable state"
      const checkState = (state: State): string | undefined => {
        for (const [invariant, holds] of invariants) {
          const result = attempt(() => holds(state))
          if (Either.isLeft(result)) return `invariant "${invariant}" threw ${thrown(result.left)}`
          if (result.right !== true) return `invariant "${invariant}" does not hold`
        }
        if (aggregate.state !== undefined) {
          const problem = encodeProblem(aggregate.state, state)
          if (problem !== undefined) return `the state does not encode with the state Schema:\n${indent(problem)}`
        }
        return undefined
      }
      const initial = checkState(aggregate.initialState)
      if (initial !== undefined) {
        return violation(law, `on the initial state ${showState(aggregate.initialState)}: ${initial}`)
      }
      return explore(law, commands, () => undefined, (state, events) => {
        for (let i = 0; i < events.length; i++) {
          const problem = encodeProblem(aggregate.events, events[i]!)
          if (problem !== undefined) {
            return `emitted event #${i + 1} does not encode with the events Schema:\n${indent(problem)}`
          }
        }
        return checkState(state)
      })
    }
  }

  const evolveAll = (
    events: ReadonlyArray<Event>,
    from: State
  ): Either.Either<State, { readonly index: number; readonly reason: string; readonly state: State }> => {
    let state = from
    for (let i = 0; i < events.length; i++) {
      const next = attempt(() => aggregate.evolve(state, events[i]!))
      if (Either.isLeft(next)) return Either.left({ index: i, reason: `threw ${thrown(next.left)}`, state })
      if (next.right === undefined) return Either.left({ index: i, reason: "returned undefined", state })
      state = next.right
    }
    return Either.right(state)
  }

  const historyText = (events: ReadonlyArray<Event>) =>
    ["history (shrunk by fast-check):", ...events.map((e, i) => indent(`#${i + 1} ${showEvents([e])}`))].join("\n")

  const evolveTotal: Law<ReadonlyArray<Event>> = {
    name: "evolve is total over generated histories",
    arbitrary: histories,
    check: (events) => {
      const result = evolveAll(events, aggregate.initialState)
      return Either.isRight(result) ? Either.void : violation(
        "evolve is total over generated histories",
        `${historyText(events)}\nevolve ${result.left.reason} on event #${result.left.index + 1}, from state ${
          showState(result.left.state)
        }`
      )
    }
  }

  const foldConsistent: Law<History<Event>> = {
    name: "fold of a history equals step-by-step evolution",
    arbitrary: histories.chain((events) =>
      FastCheck.nat({ max: events.length }).map((split): History<Event> => ({ events, split }))
    ),
    check: ({ events, split }) => {
      const law = "fold of a history equals step-by-step evolution"
      const stepwise = evolveAll(events, aggregate.initialState)
      if (Either.isLeft(stepwise)) return Either.void // reported by "evolve is total"
      const folded = attempt(() => Aggregate.fold(aggregate, events))
      const again = attempt(() => Aggregate.fold(aggregate, events))
      const resumed = attempt(() =>
        Aggregate.fold(aggregate, events.slice(split), Aggregate.fold(aggregate, events.slice(0, split)))
      )
      const results: ReadonlyArray<readonly [string, Either.Either<State, unknown>]> = [
        ["fold(history)", folded],
        ["fold(history) a second time", again],
        [`fold(events #${split + 1}…, fold(events #1…#${split}))`, resumed]
      ]
      const expected = encodeOr(aggregate.state, stepwise.right)
      for (const [what, result] of results) {
        if (Either.isLeft(result)) {
          return violation(law, `${historyText(events)}\n${what} threw ${thrown(result.left)}`)
        }
        const actual = encodeOr(aggregate.state, result.right)
        if (!equivalent(actual, expected)) {
          return violation(
            law,
            `${historyText(events)}\n${what} differs from evolving event by event:\n  step by step: ${
              show(expected)
            }\n  ${what}: ${show(actual)}`
          )
        }
      }
      return Either.void
    }
  }

  return { deterministic, evolveTotal, rejectionEmitsNothing, invariants: invariantsLaw, foldConsistent }
}

// -------------------------------------------------------------------------------------
// combinators
// -------------------------------------------------------------------------------------

/**
 * A law as a fast-check property (it fails on inputs whose check fails), for `FastCheck.assert` / `check`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const property = <A>(law: Law<A>): FastCheck.IPropertyWithHooks<[A]> =>
  FastCheck.property(law.arbitrary, (input) => Either.isRight(law.check(input)))

// -------------------------------------------------------------------------------------
// testing
// -------------------------------------------------------------------------------------

/**
 * Registers every law of the aggregate as an `it.live.prop` test (`@effect/vitest`'s effectful property test without
 * the test services, which the pure laws do not need), to call inside a `describe`. A failing law
 * prints fast-check's seed and shrunk counterexample, and the {@link LawViolation} with a trace of every step.
 *
 * @example
 * ```ts
 * import { DeciderLaws } from "@effect-eventsourcing/testing"
 * import { describe } from "@effect/vitest"
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
 * describe("Account laws", () => {
 *   DeciderLaws.suite(Account, { invariants: { "the balance is never negative": (state) => state.balance >= 0 } })
 * })
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const suite = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: Options<NoInfer<State>, NoInfer<Command>, NoInfer<Event>> = {}
): void => {
  const all = laws(aggregate, options)
  const fastCheck = {
    numRuns: options.numRuns ?? 100,
    ...(options.seed === undefined ? {} : { seed: options.seed })
  }
  const register = <A>(law: Law<A>) =>
    it.live.prop(`${aggregate.name}: ${law.name}`, [law.arbitrary], ([input]) => law.check(input), { fastCheck })
  register(all.deterministic)
  register(all.evolveTotal)
  register(all.rejectionEmitsNothing)
  register(all.invariants)
  register(all.foldConsistent)
}
