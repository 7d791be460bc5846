/**
 * Test helpers: every test file gets its own fresh database on the server of `globalSetup.ts`.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { inject } from "vitest"

/** The server's URL (from `DATABASE_URL`, or the embedded server). */
export const databaseUrl = (): string => inject("databaseUrl")

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

let counter = 0

/**
 * A database created on first use (once), unique to this test file: `url` gives its URL and `layer` a PgClient
 * pool on it (options such as `maxConnections` or `applicationName` can be given).
 */
export const freshDatabase = (prefix: string) => {
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9_]/g, "_")}_${process.pid}_${Date.now().toString(36)}_${
    (counter++).toString(36)
  }_${Math.floor(Math.random() * 1e6).toString(36)}`
  const base = databaseUrl()
  const url = withDatabase(base, name)
  const create = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`create database "${name}"`)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(base), maxConnections: 1 })),
    Effect.orDie,
    Effect.cached,
    Effect.runSync
  )
  const pool = (options: Partial<PgClient.PgClientConfig> = {}) =>
    Layer.unwrapEffect(
      Effect.as(create, PgClient.layer({ maxConnections: 8, ...options, url: Redacted.make(url) }))
    ).pipe(Layer.orDie)
  return {
    name,
    url: Effect.as(create, url),
    layer: pool(),
    pool
  }
}
