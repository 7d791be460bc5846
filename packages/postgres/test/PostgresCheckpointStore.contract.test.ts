import { PostgresCheckpointStore } from "@effect-eventsourcing/postgres"
import { CheckpointStoreContract } from "@effect-eventsourcing/testing"
import { Layer } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("checkpoint_contract")

CheckpointStoreContract.suite(
  "PostgresCheckpointStore",
  PostgresCheckpointStore.layer().pipe(Layer.provide(Database.pool({ maxConnections: 16 }))),
  { transactional: true }
)
