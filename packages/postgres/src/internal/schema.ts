/**
 * The store's schema: its name (validated, spliced into SQL) and its creation and migrations (`migrations/`).
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { migrations } from "./migrations/index.js"
import { sqlState } from "./sqlErrors.js"

/** @internal */
export const defaultSchema = "event_store"

/** @internal */
export const isIdentifier = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name)

/**
 * The schema to use (the default when none is given), or a typed `EventStoreError` of `method` when the name is not
 * a plain lowercase identifier: the name is spliced into SQL, so nothing else ever gets there.
 *
 * @internal
 */
export const validSchema = (
  method: string,
  schema: string | undefined
): Effect.Effect<string, EventStore.EventStoreError> => {
  const name = schema ?? defaultSchema
  return isIdentifier(name) ? Effect.succeed(name) : Effect.fail(
    new EventStore.EventStoreError({
      method,
      cause: new TypeError(
        `invalid schema name ${JSON.stringify(name.slice(0, 100))}: expected a lowercase identifier`
      )
    })
  )
}

const isRetryableDdlRace = (error: SqlError): boolean => {
  const code = sqlState(error)
  // unique violation on the catalog, duplicate schema / table: a concurrent `create ... if not exists`
  return code === "23505" || code === "42P06" || code === "42P07"
}

/**
 * Creates the schema and runs the migrations, serialised across processes by a transaction-scoped advisory lock
 * (the same key whoever bootstraps the schema).
 *
 * @internal
 */
export const migrate = (
  sql: SqlClient.SqlClient,
  schema: string
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, SqlError | Migrator.MigrationError> =>
  sql.withTransaction(
    Effect.gen(function*() {
      yield* sql`select pg_advisory_xact_lock(hashtextextended(${`effect-eventsourcing:schema:${schema}`}, 0))`
      yield* sql.unsafe(`create schema if not exists "${schema}"`)
      yield* sql.unsafe(`create table if not exists "${schema}"."migrations" (
        migration_id integer primary key,
        created_at timestamp with time zone not null default now(),
        name text not null
      )`)
      return yield* Migrator.make({})({ loader: migrations(schema), table: `${schema}.migrations` })
    })
  ).pipe(
    Effect.retry({ while: (e) => e._tag === "SqlError" && isRetryableDdlRace(e), schedule: Schedule.recurs(3) }),
    Effect.provideService(SqlClient.SqlClient, sql)
  )
