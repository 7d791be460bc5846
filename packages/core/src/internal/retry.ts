import * as Effect from "effect/Effect"
import type { Refinement } from "effect/Predicate"
import type * as Schedule from "effect/Schedule"

/** The failure of `self` that `only` refuses, carried in the success channel past `Effect.retry`. */
class Passed<E> {
  constructor(readonly error: E) {}
}

/**
 * @internal
 * `Effect.retry(self, schedule)` where the schedule sees only the failures `only` accepts: `Effect.retry` with a
 * `while` option steps the schedule with every failure before `while` is asked, so a schedule that reads its input
 * would be fed errors of other types.
 */
export const retryOnly = <A, E, R, X extends E, Out, R2>(
  self: Effect.Effect<A, E, R>,
  only: Refinement<E, X>,
  schedule: Schedule.Schedule<Out, X, R2>
): Effect.Effect<A, E, R | R2> =>
  Effect.flatMap(
    Effect.retry(
      Effect.catchIf(
        self,
        (error): error is Exclude<E, X> => !only(error),
        (error) => Effect.succeed(new Passed(error))
      ) as Effect.Effect<A | Passed<E>, X, R>,
      schedule
    ),
    (result) => result instanceof Passed ? Effect.fail(result.error as E) : Effect.succeed(result)
  )
