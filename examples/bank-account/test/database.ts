/**
 * The example's stores for tests: in memory, and PostgreSQL on a fresh database of the server given by the
 * postgres package's globalSetup (DATABASE_URL, or an embedded PostgreSQL).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"
import { Config } from "effect"
import { inject } from "vitest"
import { memory, postgres } from "../src/layers.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl?: string
  }
}

/** The server's URL. */
export const serverUrl = (): string | undefined => inject("databaseUrl") ?? process.env.DATABASE_URL

/** A new database on the server, created when the layer is built; the layer gives its URL. */
export const freshDatabaseUrl = (server: string, prefix: string): Effect.Effect<string> =>
  Effect.gen(function*() {
    const name = `${prefix}_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e9).toString(36)}`
    yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`create database "${name}"`)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(server), maxConnections: 1 }))
    )
    const url = new URL(server)
    url.pathname = `/${name}`
    return url.toString()
  }).pipe(Effect.orDie)

/** Both stores of the example, by name; Postgres on a fresh database. */
export const stores = (prefix: string) => {
  const server = serverUrl()
  return [
    ["memory", memory],
    ...(server === undefined ? [] : [
      [
        "postgres",
        Layer.unwrapEffect(
          Effect.map(freshDatabaseUrl(server, prefix), (url) => postgres(Config.succeed(Redacted.make(url))))
        ).pipe(Layer.orDie)
      ] as const
    ])
  ] as const
}
