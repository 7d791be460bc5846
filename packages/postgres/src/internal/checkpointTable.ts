import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"

/** @internal */
export const defaultSchema = "event_store"

/** @internal */
export const isIdentifier = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name)

/**
 * The DDL of the checkpoints table (idempotent). `generation` is bumped by every acquisition of a lease and every
 * unfenced write, and fences the writes of leases.
 *
 * @internal
 */
export const ddl = (schema: string): ReadonlyArray<string> => [
  `create schema if not exists "${schema}"`,
  `create table if not exists "${schema}"."checkpoints" (
    name text primary key,
    position bigint check (position >= 0),
    generation bigint not null default 0,
    updated_at timestamptz not null default now()
  )`
]

/**
 * Creates the table if missing, serialised across processes by a transaction-scoped advisory lock (concurrent
 * `create ... if not exists` can otherwise fail on the catalog's unique index). The lock key is the one the event
 * store's migrations take for the same schema, so the two never race on `create schema`.
 *
 * @internal
 */
export const ensure = (sql: SqlClient.SqlClient, schema: string): Effect.Effect<void, SqlError> =>
  sql.withTransaction(
    Effect.zipRight(
      sql`select pg_advisory_xact_lock(hashtextextended(${`effect-eventsourcing:schema:${schema}`}, 0))`,
      Effect.forEach(ddl(schema), (statement) => sql.unsafe(statement), { discard: true })
    )
  )
