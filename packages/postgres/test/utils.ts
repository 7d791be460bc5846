/**
 * Test helpers: every test file gets its own fresh database on the server of `globalSetup.ts`, through the
 * package's public test support (`@effect-eventsourcing/postgres/testing`), with setup failures as defects.
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PostgresTesting from "../src/testing.js"

/** The server's URL (from `DATABASE_URL`, or the embedded server). */
export const databaseUrl = (): string => PostgresTesting.serverUrl()

/**
 * A database created on first use (once), unique to this test file and dropped after it: `url` gives its URL and
 * `layer` a PgClient pool on it (options such as `maxConnections` or `applicationName` can be given).
 */
export const freshDatabase = (prefix: string) => {
  const database = PostgresTesting.freshDatabase(prefix)
  return {
    name: database.name,
    url: Effect.orDie(database.url),
    layer: Layer.orDie(database.layer),
    pool: (options: Partial<PgClient.PgClientConfig> = {}) => Layer.orDie(database.pool(options))
  }
}
