import { CheckpointStore, EventStore, ExpectedVersion, InMemoryEventStore, StreamId } from "@effect-eventsourcing/core"
import { JetStreamRelay, NatsConnection } from "@effect-eventsourcing/nats"
import { assert, describe, it } from "@effect/vitest"
import * as Js from "@nats-io/jetstream"
import { Effect, Exit, FastCheck, Fiber, Layer, Metric, Option, Scope } from "effect"
import {
  appendEvents,
  awaitMessages,
  awkwardStreams,
  Connection,
  deleteStreamAfter,
  messageCount,
  natsOrWarn,
  readLog,
  readStream,
  unique
} from "./utils.js"

const nats = await natsOrWarn("JetStreamRelay.test.ts")

/** The test's own scope (streams deleted before the connection closes), the in-memory store and NATS. */
const withNats = <A, E>(
  self: Effect.Effect<A, E, Scope.Scope | EventStore.EventStore | NatsConnection.NatsConnection>
) => Effect.scoped(self).pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, Connection)))

const counterValue = (relay: string, stream: string, duplicate: boolean) =>
  Metric.value(
    JetStreamRelay.published.pipe(
      Metric.tagged("relay", relay),
      Metric.tagged("stream", stream),
      Metric.tagged("duplicate", String(duplicate))
    )
  ).pipe(Effect.map((state) => state.count))

/**
 * Every event of the log is in the JetStream stream exactly once (by count and by `Nats-Msg-Id`), in global
 * position order, on its subject, with the versions of each subject consecutive from 1.
 */
const assertExactlyOnce = (stream: string, prefix: string) =>
  Effect.gen(function*() {
    const log = yield* readLog
    const stored = yield* readStream(stream)
    assert.strictEqual(stored.length, log.length, "one message per event")
    assert.strictEqual(new Set(stored.map((m) => m.msgId)).size, log.length, "no Nats-Msg-Id twice")
    assert.deepStrictEqual(stored.map((m) => m.msgId), log.map((e) => e.id), "in global position order")
    const versions = new Map<string, number>()
    stored.forEach((m, i) => {
      const event = log[i]!
      assert.strictEqual(m.subject, JetStreamRelay.subject(prefix, event.streamId))
      const tokens = m.subject.slice(prefix.length + 1).split(".")
      assert.strictEqual(tokens.length, 2, m.subject)
      assert.strictEqual(JetStreamRelay.decodeToken(tokens[0]!), StreamId.category(event.streamId))
      assert.strictEqual(JetStreamRelay.decodeToken(tokens[1]!), event.streamId)
      const version = Number(m.message.header.get(JetStreamRelay.headers.version))
      assert.strictEqual(version, (versions.get(m.subject) ?? 0) + 1, `versions in order on ${m.subject}`)
      versions.set(m.subject, version)
      assert.strictEqual(Number(m.message.header.get(JetStreamRelay.headers.position)), event.position)
    })
    return log
  })

describe("JetStreamRelay subjects", () => {
  it("encodes stream ids and categories into tokens that are valid and reversible", () => {
    for (const streamId of awkwardStreams) {
      const subject = JetStreamRelay.subject("events", streamId)
      const [prefix, category, token, ...rest] = subject.split(".")
      assert.strictEqual(prefix, "events")
      assert.deepStrictEqual(rest, [])
      assert.match(category!, /^[A-Za-z0-9_%-]+$/)
      assert.match(token!, /^[A-Za-z0-9_%-]+$/)
      assert.strictEqual(JetStreamRelay.decodeToken(category!), StreamId.category(streamId))
      assert.strictEqual(JetStreamRelay.decodeToken(token!), streamId)
    }
    assert.strictEqual(
      JetStreamRelay.subject("events", StreamId.unsafeMake("account", "42")),
      "events.account.account-42"
    )
    assert.strictEqual(JetStreamRelay.encodeToken("a.b *>%"), "a%2Eb%20%2A%3E%25")
    assert.strictEqual(JetStreamRelay.categorySubject("events", "order.v2"), "events.order%2Ev2.>")
    assert.strictEqual(JetStreamRelay.decodeToken("a.b"), undefined)
    assert.strictEqual(JetStreamRelay.decodeToken("%E0%A4%A"), undefined)
    assert.strictEqual(JetStreamRelay.decodeToken("%FF"), undefined)
    assert.strictEqual(JetStreamRelay.decodeToken(""), undefined)
  })

  it("round-trips any string without lone surrogates", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.string({ unit: "binary", minLength: 1, maxLength: 40 }), (value) => {
        const token = JetStreamRelay.encodeToken(value)
        return /^[A-Za-z0-9_%-]+$/.test(token) && JetStreamRelay.decodeToken(token) === value
      }),
      { numRuns: 300 }
    )
  })

  it.effect("refuses an invalid prefix or stream name", () =>
    Effect.gen(function*() {
      for (const prefix of ["", "a..b", "a.*", "a.>", "a b", ".a", "a."]) {
        const error = yield* Effect.flip(
          JetStreamRelay.ensureStream({ stream: "S", prefix }).pipe(
            Effect.provideService(NatsConnection.NatsConnection, undefined as never)
          )
        )
        assert.instanceOf(error, EventStore.InvalidArgument, prefix)
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "prefix")
      }
      for (const stream of ["", "a.b", "a b", "a*", "a/b"]) {
        const error = yield* Effect.flip(
          JetStreamRelay.ensureStream({ stream, prefix: "events" }).pipe(
            Effect.provideService(NatsConnection.NatsConnection, undefined as never)
          )
        )
        assert.strictEqual(error._tag === "InvalidArgument" && error.argument, "stream", stream)
      }
    }))
})

describe("JetStreamRelay", () => {
  it.live.skipIf(!nats)(
    "creates the stream, accepts it again, and refuses a misconfigured one",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("ensure")
        yield* deleteStreamAfter(stream)
        const created = yield* JetStreamRelay.ensureStream({ stream, prefix, duplicateWindow: "5 minutes" })
        assert.deepStrictEqual(created.config.subjects, [`${prefix}.>`])
        assert.strictEqual(created.config.duplicate_window, 5 * 60 * 1e9)
        // again: checked, not changed
        yield* JetStreamRelay.ensureStream({ stream, prefix, duplicateWindow: "1 minute" })
        // a longer window than the stream's
        const window = yield* Effect.flip(JetStreamRelay.ensureStream({ stream, prefix, duplicateWindow: "1 hour" }))
        assert.strictEqual(window._tag, "StreamConfigMismatch")
        assert.strictEqual(window._tag === "StreamConfigMismatch" && window.setting, "duplicate_window")
        // a prefix the stream does not cover
        const subjects = yield* Effect.flip(JetStreamRelay.ensureStream({ stream, prefix: `${prefix}x` }))
        assert.strictEqual(subjects._tag === "StreamConfigMismatch" && subjects.setting, "subjects")
        // a narrower prefix is covered by `<prefix>.>`
        yield* JetStreamRelay.ensureStream({ stream, prefix: `${prefix}.narrow` })

        // a stream made by someone else without acknowledgements
        const other = unique("noack")
        yield* deleteStreamAfter(other.stream)
        const connection = yield* NatsConnection.NatsConnection
        yield* Effect.promise(async () =>
          (await Js.jetstreamManager(connection)).streams.add({
            name: other.stream,
            subjects: [`${other.prefix}.>`],
            no_ack: true
          })
        )
        const noAck = yield* Effect.flip(JetStreamRelay.ensureStream(other))
        assert.strictEqual(noAck._tag === "StreamConfigMismatch" && noAck.setting, "no_ack")
        // the relay refuses to start on it
        const refused = yield* Effect.flip(
          JetStreamRelay.forkScoped({ ...other, checkpoints: yield* CheckpointStore.makeMemory })
        )
        assert.strictEqual(refused._tag, "StreamConfigMismatch")
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "killed mid-run (while publishing) and restarted: every event is in JetStream exactly once, in order per subject",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("kill")
        yield* deleteStreamAfter(stream)
        const name = `relay-${stream}`
        const checkpoints = yield* CheckpointStore.makeMemory
        const options = { name, stream, prefix, checkpoints, batchSize: 25 }
        const duplicatesBefore = yield* counterValue(name, stream, true)

        yield* appendEvents(awkwardStreams, 300)
        // writers keep appending while the relay is killed and restarted
        const writer = yield* Effect.fork(
          Effect.forEach([300, 400, 500], (offset) =>
            Effect.zipRight(Effect.sleep("20 millis"), appendEvents(awkwardStreams, 100, offset)))
        )

        let unsaved = 0
        for (const threshold of [40, 170, 330]) {
          const scope = yield* Scope.make()
          yield* Scope.extend(JetStreamRelay.forkScoped(options), scope)
          yield* awaitMessages(stream, threshold)
          // kill: interrupts the relay's fiber, in the middle of a batch of publishes
          yield* Scope.close(scope, Exit.void)
          const checkpoint = Option.getOrElse(yield* checkpoints.load(name), () =>
            0)
          const inJetStream = yield* messageCount(stream)
          assert.isAtLeast(inJetStream, checkpoint)
          unsaved += inJetStream - checkpoint
        }
        yield* Fiber.join(writer)

        const relay = yield* JetStreamRelay.forkScoped(options)
        const head = (yield* readLog).at(-1)!.position
        assert.strictEqual(head, 600)
        yield* relay.awaitPosition(head)
        const log = yield* assertExactlyOnce(stream, prefix)
        assert.strictEqual(log.length, 600)
        // what was published but not checkpointed at the kills was published again, and dropped by JetStream
        const duplicates = (yield* counterValue(name, stream, true)) - duplicatesBefore
        assert.isAtLeast(duplicates, unsaved)
        assert.isAbove(unsaved, 0, "the kills left published events behind the checkpoint")
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "publishes acknowledged but the checkpoint not saved: the restart publishes again, JetStream keeps one copy",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("unsaved")
        yield* deleteStreamAfter(stream)
        const name = `relay-${stream}`
        const real = yield* CheckpointStore.makeMemory
        // the process dies after the acks, before the checkpoint is written: the save never completes
        const dying: CheckpointStore.CheckpointStore.Service = {
          ...real,
          acquire: (subscription) =>
            Effect.map(real.acquire(subscription), (lease) => ({ ...lease, save: () => Effect.never }))
        }
        yield* appendEvents(awkwardStreams, 120)

        const first = yield* Scope.make()
        yield* Scope.extend(
          JetStreamRelay.forkScoped({ name, stream, prefix, checkpoints: dying, batchSize: 500 }),
          first
        )
        yield* awaitMessages(stream, 120)
        yield* Scope.close(first, Exit.void)
        assert.isTrue(Option.isNone(yield* real.load(name)), "no checkpoint was saved")

        const stored = yield* counterValue(name, stream, false)
        const duplicates = yield* counterValue(name, stream, true)
        const relay = yield* JetStreamRelay.forkScoped({ name, stream, prefix, checkpoints: real, batchSize: 500 })
        yield* relay.awaitPosition(120)
        assert.strictEqual((yield* counterValue(name, stream, true)) - duplicates, 120, "all published again")
        assert.strictEqual((yield* counterValue(name, stream, false)) - stored, 0, "none stored twice")
        assert.deepStrictEqual(yield* real.load(name), Option.some(120))
        yield* assertExactlyOnce(stream, prefix)
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "publishes only the filtered events, with the metadata as headers",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("filter")
        yield* deleteStreamAfter(stream)
        yield* appendEvents(awkwardStreams, 48)
        const relay = yield* JetStreamRelay.forkScoped({
          stream,
          prefix,
          filter: { categories: ["order.v2"] },
          checkpoints: yield* CheckpointStore.makeMemory
        })
        const orders = (yield* readLog).filter((e) => StreamId.category(e.streamId) === "order.v2")
        yield* relay.awaitPosition(orders.at(-1)!.position)
        const stored = yield* readStream(stream)
        assert.deepStrictEqual(stored.map((m) => m.msgId), orders.map((e) => e.id))
        const first = stored[0]!.message
        const event = orders[0]!
        assert.strictEqual(first.header.get(JetStreamRelay.headers.type), JetStreamRelay.encodeToken(event.type))
        assert.strictEqual(
          first.header.get(JetStreamRelay.headers.streamId),
          JetStreamRelay.encodeToken(event.streamId)
        )
        assert.deepStrictEqual(JSON.parse(first.header.get(JetStreamRelay.headers.metadata)), event.metadata)
        assert.deepStrictEqual(first.json(), event.data)
      }).pipe(withNats)
  )

  it.live.skipIf(!nats)(
    "a message JetStream refuses stops the relay with PublishRejected",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("rejected")
        yield* deleteStreamAfter(stream)
        const store = yield* EventStore.EventStore
        yield* appendEvents(awkwardStreams.slice(0, 1), 2)
        // over the server's max_payload (1 MiB by default)
        yield* store.append(
          StreamId.unsafeMake("big", "1"),
          [{ type: "Big", data: "x".repeat(1_100_000) }],
          ExpectedVersion.Any
        )
        const relay = yield* JetStreamRelay.forkScoped({
          stream,
          prefix,
          checkpoints: yield* CheckpointStore.makeMemory,
          batchSize: 1
        })
        const error = yield* Effect.flip(relay.join)
        assert.strictEqual(error._tag, "PublishRejected")
        assert.strictEqual(error._tag === "PublishRejected" && error.streamId, "big-1")
        // the default retry does not retry it; the events before it were published, nothing after it
        assert.strictEqual(yield* relay.processed, 2)
        assert.strictEqual(yield* messageCount(stream), 2)
      }).pipe(withNats)
  )
})
