import { SnapshotStore } from "@effect-eventsourcing/core"
import { SnapshotStoreContract } from "@effect-eventsourcing/testing"

SnapshotStoreContract.suite("SnapshotStore.layerMemory", SnapshotStore.layerMemory)
