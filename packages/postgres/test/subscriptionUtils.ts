import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Redacted } from "effect"

// temporary: replaced by the package's shared test utilities
const baseUrl = process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres"

export const freshDatabase = (prefix: string) => {
  const name = `${prefix}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`
  const url = baseUrl.replace(/\/[^/]*$/, `/${name}`)
  let created = false
  const lock = Effect.unsafeMakeSemaphore(1)
  const create = lock.withPermits(1)(
    Effect.suspend(() =>
      created ?
        Effect.void :
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`create database "${name}"`)).pipe(
          Effect.provide(PgClient.layer({ url: Redacted.make(baseUrl), maxConnections: 1 })),
          Effect.tap(() => {
            created = true
          })
        )
    )
  )
  return {
    url: Effect.as(Effect.orDie(create), url),
    layer: Layer.unwrapEffect(Effect.as(create, PgClient.layer({ url: Redacted.make(url), maxConnections: 8 }))).pipe(
      Layer.orDie
    )
  }
}
