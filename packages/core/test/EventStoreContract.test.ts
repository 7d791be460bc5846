import { InMemoryEventStore } from "@effect-eventsourcing/core"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import { Layer } from "effect"

// the in-memory store's test hook gives the contract its commit-hold capability
EventStoreContract.suite(
  "InMemoryEventStore",
  Layer.effect(EventStoreContract.CommitHold, InMemoryEventStore.Control).pipe(
    Layer.provideMerge(InMemoryEventStore.layerWithControl())
  )
)
