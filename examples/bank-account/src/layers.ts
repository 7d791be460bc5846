/**
 * The example's store: in memory by default, PostgreSQL when DATABASE_URL is set. Swapping one Layer is the whole
 * change; the program does not know which store it runs on.
 */
import { CheckpointStore, EventStore, InMemoryEventStore, SnapshotStore, TimerStore } from "@effect-eventsourcing/core"
import {
  PostgresCheckpointStore,
  PostgresEventStore,
  PostgresSnapshotStore,
  PostgresTimerStore
} from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option } from "effect"
import type { Redacted } from "effect"

/** The in-memory event, snapshot, checkpoint and timer stores. */
export const memory: Layer.Layer<
  EventStore.EventStore | SnapshotStore.SnapshotStore | CheckpointStore.CheckpointStore | TimerStore.TimerStore
> = Layer.mergeAll(
  InMemoryEventStore.layer,
  SnapshotStore.layerMemory,
  CheckpointStore.layerMemory,
  TimerStore.layerMemory
)

/** PostgreSQL at `url`: the event, snapshot, checkpoint and timer stores in the `event_store` schema. */
export const postgres = (url: Config.Config<Redacted.Redacted>) =>
  Layer.mergeAll(
    PostgresEventStore.layer(),
    PostgresSnapshotStore.layer(),
    PostgresCheckpointStore.layer(),
    PostgresTimerStore.layer()
  ).pipe(
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
