/**
 * @internal
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

/**
 * Runs `effect` on the pool even when the caller is inside `sql.withTransaction`: for reads that must see committed
 * data only, and for notifications that must not wait for the caller's commit.
 */
export const outsideTransaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.mapInputContext(
    effect,
    (ctx: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(ctx)
  )
