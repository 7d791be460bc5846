/**
 * `Repository.unitOfWork` on PostgreSQL: the suite of the in-memory store (packages/core/test/unitOfWorkSuite.ts),
 * with concurrent units on real connections of a pool.
 */
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { Layer } from "effect"
import { unitOfWorkSuite } from "../../core/test/unitOfWorkSuite.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("unit_of_work")

unitOfWorkSuite(
  "Repository.unitOfWork on PostgreSQL",
  PostgresEventStore.layer({ pollInterval: "200 millis" }).pipe(Layer.provide(Database.pool({ maxConnections: 8 })))
)
