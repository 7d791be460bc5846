/**
 * Our PostgreSQL store: `PostgresEventStore.layer()` (default options: schema `event_store`, pages of 500 rows,
 * one coalesced NOTIFY after commits) over `PgClient.layer` with the workload's pool size. Variants: `-cached`
 * (W3 through the aggregate cache too), `-snapshots`. `BENCH_GROUP_COMMIT=off` runs `postgres` with `groupCommit: false`
 * (for A/B runs of the group commit; never in the reported runs).
 */
import { PostgresEventStore, PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { Target } from "../target.js"
import { effectSession } from "./effectSession.js"

export const postgres: Target = {
  name: "postgres",
  database: true,
  open: (url, pool) =>
    effectSession(
      PostgresEventStore.layer(process.env.BENCH_GROUP_COMMIT === "off" ? { groupCommit: false } : {}).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: pool }))
      )
    )
}

/** `postgres` with W3's command handler through the aggregate cache as well (see `aggregateCache.ts`). */
export const postgresCached: Target = {
  name: "postgres-cached",
  database: true,
  open: (url, pool) =>
    effectSession(
      PostgresEventStore.layer().pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: pool }))
      ),
      { cachedCommands: true }
    )
}

/** `postgres` plus `PostgresSnapshotStore` and an aggregate that snapshots every 100 events. */
export const postgresSnapshots: Target = {
  name: "postgres-snapshots",
  database: true,
  open: (url, pool) =>
    effectSession(
      Layer.merge(PostgresEventStore.layer(), PostgresSnapshotStore.layer()).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: pool }))
      ),
      { snapshots: true }
    )
}
