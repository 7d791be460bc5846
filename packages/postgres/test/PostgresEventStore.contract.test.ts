import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import { Layer } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("contract")

EventStoreContract.suite(
  "PostgresEventStore",
  PostgresEventStore.layer({ pollInterval: "200 millis" }).pipe(Layer.provide(Database.pool({ maxConnections: 16 })))
)
