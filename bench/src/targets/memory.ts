/**
 * Our in-memory store: `InMemoryEventStore.layer`.
 */
import { InMemoryEventStore } from "@effect-eventsourcing/core"
import type { Target } from "../target.js"
import { effectSession } from "./effectSession.js"

export const memory: Target = {
  name: "memory",
  database: false,
  open: () => effectSession(InMemoryEventStore.layer)
}
