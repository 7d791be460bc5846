/**
 * Test helpers: the NATS server (`NATS_URL`, default 127.0.0.1:4222), probed once per file so that the NATS tests
 * are skipped with a printed reason when none is reachable; unique stream names and subject prefixes; reading a
 * JetStream stream back.
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { NatsConnection } from "@effect-eventsourcing/nats"
import * as Js from "@nats-io/jetstream"
import * as Nats from "@nats-io/transport-node"
import { Chunk, Effect, Schedule, Stream } from "effect"

export const natsUrl = process.env.NATS_URL !== undefined && process.env.NATS_URL !== ""
  ? process.env.NATS_URL
  : "127.0.0.1:4222"

/** Why the NATS tests cannot run here, or `undefined` when a NATS server with JetStream answers. */
export const probeNats = async (): Promise<string | undefined> => {
  let connection: Nats.NatsConnection | undefined
  try {
    connection = await Nats.connect({ servers: natsUrl, timeout: 2_000, reconnect: false })
    await Js.jetstreamManager(connection)
    return undefined
  } catch (error) {
    return `no NATS server with JetStream at ${natsUrl} (${error instanceof Error ? error.message : String(error)})`
  } finally {
    await connection?.close().catch(() => undefined)
  }
}

/** Probes NATS and prints why the file's NATS tests are skipped, when they are. */
export const natsOrWarn = async (file: string): Promise<boolean> => {
  const problem = await probeNats()
  if (problem !== undefined) console.warn(`${file}: NATS tests skipped: ${problem}; set NATS_URL to run them`)
  return problem === undefined
}

export const Connection = NatsConnection.layer({ servers: natsUrl })

let counter = 0
/** A stream name and subject prefix unique to this run and test. */
export const unique = (label: string) => {
  const id = `${label}_${process.pid}_${Date.now().toString(36)}_${(counter++).toString(36)}`
  return { stream: `T_${id}`.toUpperCase(), prefix: `test.${id}` }
}

/** Deletes the JetStream stream when the scope closes (the server is shared). */
export const deleteStreamAfter = (stream: string) =>
  Effect.addFinalizer(() =>
    Effect.flatMap(NatsConnection.NatsConnection, (connection) =>
      Effect.promise(async () => {
        const jsm = await Js.jetstreamManager(connection)
        await jsm.streams.delete(stream).catch(() => false)
      }))
  )

export interface Stored {
  readonly seq: number
  readonly subject: string
  readonly msgId: string
  readonly message: Js.StoredMsg
}

/** Every message of the stream, in stream order. */
export const readStream = (stream: string) =>
  Effect.flatMap(NatsConnection.NatsConnection, (connection) =>
    Effect.promise(async () => {
      const jsm = await Js.jetstreamManager(connection)
      const info = await jsm.streams.info(stream)
      const out: Array<Stored> = []
      for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
        const message = await jsm.streams.getMessage(stream, { seq })
        if (message !== null) {
          out.push({ seq, subject: message.subject, msgId: message.header.get("Nats-Msg-Id"), message })
        }
      }
      return out
    }))

/** The number of messages the stream holds. */
export const messageCount = (stream: string) =>
  Effect.flatMap(
    NatsConnection.NatsConnection,
    (connection) =>
      Effect.promise(async () => (await (await Js.jetstreamManager(connection)).streams.info(stream)).state.messages)
  )

/** Waits (polling) until the stream holds at least `count` messages. */
export const awaitMessages = (stream: string, count: number) =>
  Effect.repeat(messageCount(stream), {
    until: (n) => n >= count,
    schedule: Schedule.spaced("5 millis")
  })

/** Stream ids with characters a subject token cannot hold. */
export const awkwardStreams: ReadonlyArray<StreamId.StreamId> = [
  StreamId.unsafeMake("account", "1"),
  StreamId.unsafeMake("account", "a.b.c"),
  StreamId.unsafeMake("account", "*"),
  StreamId.unsafeMake("account", ">"),
  StreamId.unsafeMake("account", "with space"),
  StreamId.unsafeMake("account", "tab\tnew\nline"),
  StreamId.unsafeMake("account", "100%"),
  StreamId.unsafeMake("account", "ünïcödé-😀"),
  StreamId.unsafeMake("order.v2", "x-y"),
  StreamId.unsafeMake("order.v2", "a b.*>"),
  StreamId.unsafeMake("cart", "7"),
  StreamId.unsafeMake("cart", "%2E")
]

/** Appends `count` events round-robin over the streams (two events per append), with metadata. */
export const appendEvents = (streams: ReadonlyArray<StreamId.StreamId>, count: number, offset = 0) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    let last = 0
    for (let i = offset; i < offset + count; i += 2) {
      const streamId = streams[(i / 2) % streams.length]!
      const n = Math.min(2, offset + count - i)
      const events = Array.from({ length: n }, (_, k) => ({
        type: (i + k) % 3 === 0 ? "Opened.v1" : "Deposited",
        data: { n: i + k, text: `é ${i + k}\n`, nested: { list: [1, null, "x"] } },
        metadata: { correlationId: `c-${i}`, user: { name: "Zoë" }, tags: ["a", "b"] }
      }))
      const { position } = yield* store.append(streamId, events, ExpectedVersion.Any)
      last = position
    }
    return last
  })

/** The whole log. */
export const readLog = Effect.flatMap(
  EventStore.EventStore,
  (store) => Stream.runCollect(store.readAll()).pipe(Effect.map(Chunk.toReadonlyArray))
)
