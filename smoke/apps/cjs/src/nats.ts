/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS consumer: require() is the point */
// The NATS package as a CommonJS consumer sees it: its types under the app's strict flags, its modules loaded by
// require (no NATS server needed: nothing connects)
import Core = require("@effect-eventsourcing/core")
import Nats = require("@effect-eventsourcing/nats")
import Relay = require("@effect-eventsourcing/nats/JetStreamRelay")
import E = require("effect")

const { CheckpointStore, InMemoryEventStore, Projection, StreamId } = Core
const { JetStreamRelay, JetStreamSource, NatsConnection } = Nats
const { Console, Effect, Layer } = E

const Connection = NatsConnection.layer({ servers: "127.0.0.1:4222" })
const RelayLayer: E.Layer.Layer<
  never,
  Nats.JetStreamRelay.StreamConfigMismatch | Nats.NatsConnection.NatsError | Core.EventStore.InvalidArgument
> = JetStreamRelay.layer({ stream: "EVENTS", prefix: "events", duplicateWindow: "5 minutes" }).pipe(
  Layer.provide([Connection, InMemoryEventStore.layer, CheckpointStore.layerMemory])
)
const projection = Projection.make({ name: "log", handle: (event) => Console.log(event.type) })
const SourceLayer = JetStreamSource.layer(projection, {
  stream: "EVENTS",
  filterSubject: JetStreamRelay.categorySubject("events", "account")
}).pipe(Layer.provide(Connection))

const subject = Relay.subject("events", StreamId.unsafeMake("account", "a.b *"))
const layers = [RelayLayer, SourceLayer].filter((layer) => Layer.isLayer(layer)).length
Effect.runSync(
  Console.log(`cjs nats: ${subject} -> ${JetStreamRelay.decodeToken(subject.split(".")[2] ?? "")}, ${layers} layers`)
)
