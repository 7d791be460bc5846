import { CheckpointStore } from "@effect-eventsourcing/core"
import { CheckpointStoreContract } from "@effect-eventsourcing/testing"

CheckpointStoreContract.suite("CheckpointStore.layerMemory", CheckpointStore.layerMemory)
