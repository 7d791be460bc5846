/**
 * A PostgreSQL {@link View.ViewStore}: the documents of every view in one `views` table of the event store's schema
 * (`view text, key text, document jsonb, position bigint, updated_at`, primary key `(view, key)`), written through
 * the current `SqlClient` so that a view's subscription commits its documents together with its checkpoint
 * (`PostgresCheckpointStore` on the same pool): exactly-once.
 *
 * @example
 * ```ts
 * import { View } from "@effect-eventsourcing/core"
 * import { PostgresCheckpointStore, PostgresEventStore, PostgresViewStore } from "@effect-eventsourcing/postgres"
 * import { PgClient } from "@effect/sql-pg"
 * import { Config, Layer } from "effect"
 *
 * const Stores = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresViewStore.layer())
 *   .pipe(Layer.provideMerge(PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") })))
 * // View.layer(MyView).pipe(Layer.provide(Stores))
 * ```
 *
 * @since 0.2.0
 */
import * as View from "@effect-eventsourcing/core/View"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"

/**
 * `schema`: where the `views` table lives (default `event_store`); a lowercase identifier. The table is created
 * when missing.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly schema?: string | undefined
}

const toStoreError = (method: string) => (cause: SqlError) => new View.ViewStoreError({ method, cause })

const isUniqueViolation = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && "code" in cause && cause.code === "23505"

interface Row {
  readonly key: string
  readonly document: unknown
  readonly position: string | number
}

const toDocument = (row: Row): View.StoredDocument => ({
  key: row.key,
  document: row.document,
  position: Number(row.position)
})

/**
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options?: Options
): Effect.Effect<View.ViewStore.Service, View.ViewStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = options?.schema ?? "event_store"
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      return yield* new View.ViewStoreError({
        method: "make",
        cause: new Error(`invalid schema name ${JSON.stringify(schema)} (a lowercase identifier)`)
      })
    }
    // no transforms: the documents' own keys stay as they are
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(`${schema}.views`)
    // idempotent, and serialised across processes starting at once (concurrent `create ... if not exists` race)
    yield* sql.withTransaction(Effect.gen(function*() {
      yield* sql`select pg_advisory_xact_lock(hashtext(${`${schema}.views`}))`
      yield* sql`create schema if not exists ${sql(schema)}`
      yield* sql`create table if not exists ${table} (
        view text not null,
        key text not null,
        document jsonb not null,
        position bigint not null,
        updated_at timestamptz not null default now(),
        primary key (view, key)
      )`
    })).pipe(
      // the event store's own migrations may create the schema at the same moment (their lock is not ours): a
      // unique violation on the catalog means it exists now, and the next attempt sees it
      Effect.retry({ times: 3, while: (error) => isUniqueViolation(error.cause) }),
      Effect.mapError(toStoreError("make"))
    )

    return {
      load: (view, keys) =>
        keys.length === 0 ? Effect.succeed([]) : sql<Row>`select key, document, position from ${table}
          where view = ${view} and key = any(${keys as Array<string>}::text[])`.pipe(
          Effect.map((rows) => rows.map(toDocument)),
          Effect.mapError(toStoreError("load"))
        ),
      save: (view, documents) =>
        documents.length === 0 ? Effect.void : sql`insert into ${table} (view, key, document, position)
          select ${view}, d.key, d.document, d.position
          from unnest(${documents.map((d) => d.key)}::text[], ${
          documents.map((d) => JSON.stringify(d.document))
        }::jsonb[], ${documents.map((d) => d.position)}::bigint[]) as d(key, document, position)
          on conflict (view, key) do update
          set document = excluded.document, position = excluded.position, updated_at = now()`.pipe(
          Effect.asVoid,
          Effect.mapError(toStoreError("save"))
        ),
      list: (view) =>
        sql<Row>`select key, document, position from ${table} where view = ${view} order by key collate "C"`.pipe(
          Effect.map((rows) => rows.map(toDocument)),
          Effect.mapError(toStoreError("list"))
        ),
      clear: (view) =>
        sql`delete from ${table} where view = ${view}`.pipe(Effect.asVoid, Effect.mapError(toStoreError("clear")))
    } satisfies View.ViewStore.Service
  })

/**
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options?: Options
): Layer.Layer<View.ViewStore, View.ViewStoreError, SqlClient.SqlClient> => Layer.effect(View.ViewStore, make(options))
