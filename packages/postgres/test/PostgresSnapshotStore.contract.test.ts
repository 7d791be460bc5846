import { PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import { SnapshotStoreContract } from "@effect-eventsourcing/testing"
import { Layer } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("snapshot_contract")

SnapshotStoreContract.suite(
  "PostgresSnapshotStore",
  PostgresSnapshotStore.layer().pipe(Layer.provide(Database.pool({ maxConnections: 16 })))
)
