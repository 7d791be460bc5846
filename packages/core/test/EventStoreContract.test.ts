import { InMemoryEventStore } from "@effect-eventsourcing/core"
import { EventStoreContract } from "@effect-eventsourcing/testing"

EventStoreContract.suite("InMemoryEventStore", InMemoryEventStore.layer)
