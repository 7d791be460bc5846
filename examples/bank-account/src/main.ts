/**
 * Runs the example on the in-memory store (or on PostgreSQL when DATABASE_URL is set).
 */
import { InMemoryEventStore } from "@effect-eventsourcing/core"
import { Effect } from "effect"
import { program } from "./program.js"

Effect.runPromise(program("42").pipe(Effect.provide(InMemoryEventStore.layer))).then(
  () => undefined,
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
