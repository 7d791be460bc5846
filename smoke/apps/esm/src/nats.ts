// The NATS package as an ES module consumer sees it: its types under the app's strict flags, its modules loaded by
// node (no NATS server needed: nothing connects)
import { CheckpointStore, EventStore, InMemoryEventStore, Projection, StreamId } from "@effect-eventsourcing/core"
import { JetStreamRelay, JetStreamSource, NatsConnection } from "@effect-eventsourcing/nats"
import * as Relay from "@effect-eventsourcing/nats/JetStreamRelay"
import { Console, Effect, Layer } from "effect"

const Nats = NatsConnection.layer({ servers: "127.0.0.1:4222" })
const RelayLayer: Layer.Layer<
  never,
  JetStreamRelay.StreamConfigMismatch | NatsConnection.NatsError | EventStore.InvalidArgument
> = JetStreamRelay.layer({ stream: "EVENTS", prefix: "events", duplicateWindow: "5 minutes" }).pipe(
  Layer.provide([Nats, InMemoryEventStore.layer, CheckpointStore.layerMemory])
)
const projection = Projection.make({ name: "log", handle: (event) => Console.log(event.type) })
const SourceLayer = JetStreamSource.layer(projection, {
  stream: "EVENTS",
  filterSubject: JetStreamRelay.categorySubject("events", "account")
}).pipe(Layer.provide(Nats))

const subject = Relay.subject("events", StreamId.unsafeMake("account", "a.b *"))
const layers = [RelayLayer, SourceLayer].filter((layer) => Layer.isLayer(layer)).length
Effect.runSync(
  Console.log(`esm nats: ${subject} -> ${JetStreamRelay.decodeToken(subject.split(".")[2] ?? "")}, ${layers} layers`)
)
