/**
 * The connection (from `DATABASE_URL`) and the stores of a schema, built only when a command needs them (`--help`
 * needs no database).
 *
 * @internal
 */
import type * as CheckpointStore from "@effect-eventsourcing/core/CheckpointStore"
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as ParkedEvents from "@effect-eventsourcing/core/ParkedEvents"
import * as PostgresCheckpointStore from "@effect-eventsourcing/postgres/PostgresCheckpointStore"
import * as PostgresEventStore from "@effect-eventsourcing/postgres/PostgresEventStore"
import * as PostgresParkedEvents from "@effect-eventsourcing/postgres/PostgresParkedEvents"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { DatabaseUrlMissing, SchemaNotFound } from "./errors.js"

/** @internal */
export const databaseUrl = (): string | undefined => {
  const url = process.env.DATABASE_URL
  return url === undefined || url.trim() === "" ? undefined : url
}

/** @internal A small pool on DATABASE_URL. */
export const connection: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown> = Layer.unwrapEffect(
  Effect.suspend(() => {
    const url = databaseUrl()
    if (url === undefined) return Effect.fail(new DatabaseUrlMissing())
    return Effect.succeed(PgClient.layer({
      url: Redacted.make(url),
      maxConnections: 4,
      applicationName: "eventsourcing-cli",
      connectTimeout: "10 seconds"
    }))
  })
)

/**
 * Fails with {@link SchemaNotFound} unless the schema holds the store's tables: a read command never creates a
 * schema (a mistyped `--schema` would otherwise get an empty store).
 *
 * @internal
 */
export const requireStore = (schema: string): Effect.Effect<void, unknown, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly present: boolean }>`select to_regclass(${`"${schema}"."events"`}) is not null
      and to_regclass(${`"${schema}"."checkpoints"`}) is not null as present`
    if (rows[0]?.present !== true) return yield* new SchemaNotFound({ schema })
  })

/** @internal Checks the schema name the way the stores do, before it reaches any SQL. */
export const isSchemaName = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name)

/**
 * The event store, the checkpoint store and the parked events of an existing schema, on one pool (the stores run the
 * migrations that are missing, as every store does when it starts).
 *
 * @internal
 */
export const stores = (
  schema: string
): Layer.Layer<
  EventStore.EventStore | CheckpointStore.CheckpointStore | ParkedEvents.ParkedEvents | SqlClient.SqlClient,
  unknown
> =>
  Layer.mergeAll(
    PostgresEventStore.layer({ schema }),
    PostgresCheckpointStore.layer({ schema }),
    PostgresParkedEvents.layer({ schema })
  ).pipe(
    Layer.provideMerge(Layer.effectDiscard(requireStore(schema))),
    Layer.provideMerge(connection)
  )

/** @internal The parked events of an existing schema. */
export const parkedEvents = (
  schema: string
): Layer.Layer<ParkedEvents.ParkedEvents | SqlClient.SqlClient, unknown> =>
  PostgresParkedEvents.layer({ schema }).pipe(
    Layer.provideMerge(Layer.effectDiscard(requireStore(schema))),
    Layer.provideMerge(connection)
  )
