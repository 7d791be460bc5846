import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { equivalent, show } from "./values.js"

/**
 * A store did not behave as its port requires. `contract` and `check` name the check, `expected` / `actual` hold the
 * compared values when there are some (test runners show a diff of them).
 *
 * @since 0.1.0
 * @category errors
 */
export class ContractViolation extends Schema.TaggedError<ContractViolation>()("ContractViolation", {
  contract: Schema.String,
  check: Schema.String,
  description: Schema.String,
  expected: Schema.Unknown,
  actual: Schema.Unknown
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.contract}.${this.check}: ${this.description}`
  }
}

/**
 * How long a check waits for something that must happen (a subscription delivering, a lock or a lease being
 * granted, a read answering) before it reports a violation. Default: 10 seconds. Provide a shorter value to run
 * checks against stores that are expected to fail.
 *
 * @since 0.1.0
 * @category tags
 */
export class Patience
  extends Context.Reference<Patience>()("@effect-eventsourcing/testing/EventStoreContract/Patience", {
    defaultValue: (): Duration.Duration => Duration.seconds(10)
  })
{}

/** @internal */
export interface Details {
  readonly expected?: unknown
  readonly actual?: unknown
}

/** @internal a violation not yet named (see `named`) */
export const violation = (description: string, details?: Details): ContractViolation =>
  new ContractViolation({
    contract: "",
    check: "",
    description,
    expected: details?.expected,
    actual: details?.actual
  })

/** @internal */
export const fail = (description: string, details?: Details): Effect.Effect<never, ContractViolation> =>
  Effect.fail(violation(description, details))

/** @internal */
export const ensure = (condition: boolean, description: string): Effect.Effect<void, ContractViolation> =>
  condition ? Effect.void : fail(description)

/** @internal */
export const ensureEqual = (
  actual: unknown,
  expected: unknown,
  description: string
): Effect.Effect<void, ContractViolation> =>
  equivalent(actual, expected)
    ? Effect.void
    : fail(`${description}\n  expected: ${show(expected)}\n  actual:   ${show(actual)}`, { expected, actual })

/** @internal */
export const describeError = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error && error instanceof Error
    ? `${String(error._tag)}: ${error.message}`
    : show(error)

/** @internal any failure of the store where success is required is a violation */
export const ok = <A, E, R>(effect: Effect.Effect<A, E, R>, what: string): Effect.Effect<A, ContractViolation, R> =>
  Effect.mapError(effect, (error) => violation(`${what} failed: ${describeError(error)}`, { actual: error }))

/** @internal */
export const withPatience = <A, R>(
  effect: Effect.Effect<A, ContractViolation, R>,
  what: string,
  progress?: () => string
): Effect.Effect<A, ContractViolation, R> =>
  Effect.flatMap(Patience, (patience) =>
    Effect.timeoutFail(effect, {
      duration: patience,
      onTimeout: () =>
        violation(
          `${what}: did not happen within ${Duration.format(patience)}${
            progress === undefined ? "" : ` (${progress()})`
          }`
        )
    }))

let counter = 0

/** @internal a fresh name: a counter plus a random suffix, so repeated runs against a persistent store do not collide */
export const unique = (label: string): Effect.Effect<string> =>
  Effect.sync(() => `${label}${++counter}x${globalThis.crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`)

const live = Clock.make()

/** @internal runs a check on the real clock and names its violations */
export const named = <R>(
  contract: string,
  name: string,
  check: Effect.Effect<void, ContractViolation, R>
): Effect.Effect<void, ContractViolation, R> =>
  check.pipe(
    Effect.withClock(live),
    Effect.mapError((error) =>
      new ContractViolation({
        contract,
        check: name,
        description: error.description,
        expected: error.expected,
        actual: error.actual
      })
    ),
    Effect.withSpan(`${contract}.${name}`)
  )
