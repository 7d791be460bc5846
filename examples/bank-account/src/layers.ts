/**
 * The example's store: in memory by default, PostgreSQL when DATABASE_URL is set. Swapping one Layer is the whole
 * change; the program does not know which store it runs on.
 */
import { CheckpointStore, EventStore, InMemoryEventStore, SnapshotStore } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option } from "effect"
import type { Redacted } from "effect"

/** The in-memory event, snapshot and checkpoint stores. */
export const memory: Layer.Layer<
  EventStore.EventStore | SnapshotStore.SnapshotStore | CheckpointStore.CheckpointStore
> = Layer.mergeAll(InMemoryEventStore.layer, SnapshotStore.layerMemory, CheckpointStore.layerMemory)

/** PostgreSQL at `url`: the event, snapshot and checkpoint stores in the `event_store` schema. */
export const postgres = (url: Config.Config<Redacted.Redacted>) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresSnapshotStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(PgClient.layerConfig({ url }))
  )

/** Postgres when DATABASE_URL is set, otherwise memory. */
export const fromEnvironment = Layer.unwrapEffect(
  Effect.map(
    Config.option(Config.redacted("DATABASE_URL")),
    Option.match({
      onNone: () => memory,
      onSome: (url) => postgres(Config.succeed(url))
    })
  )
)
