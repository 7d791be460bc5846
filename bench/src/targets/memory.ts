/**
 * Our in-memory store: `InMemoryEventStore.layer`; `memory-snapshots` adds `SnapshotStore.layerMemory` and an
 * aggregate that snapshots every 100 events.
 */
import { InMemoryEventStore, SnapshotStore } from "@effect-eventsourcing/core"
import * as Layer from "effect/Layer"
import type { Target } from "../target.js"
import { effectSession } from "./effectSession.js"

export const memory: Target = {
  name: "memory",
  database: false,
  open: () => effectSession(InMemoryEventStore.layer)
}

/** `memory` with W3's command handler through the aggregate cache as well (see `aggregateCache.ts`). */
export const memoryCached: Target = {
  name: "memory-cached",
  database: false,
  open: () => effectSession(InMemoryEventStore.layer, { cachedCommands: true })
}

export const memorySnapshots: Target = {
  name: "memory-snapshots",
  database: false,
  open: () => effectSession(Layer.merge(InMemoryEventStore.layer, SnapshotStore.layerMemory), { snapshots: true })
}

/** `memory` with Effect's tracer disabled (`Layer.setTracerEnabled(false)`): what the spans cost. */
export const memoryUntraced: Target = {
  name: "memory-untraced",
  database: false,
  open: () => effectSession(Layer.merge(InMemoryEventStore.layer, Layer.setTracerEnabled(false)))
}
