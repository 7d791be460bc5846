/**
 * The relay on the PostgreSQL store and checkpoint store (server of packages/postgres/test/globalSetup.ts: DATABASE_URL
 * or an embedded PostgreSQL; a fresh database for this file).
 */
import { CheckpointStore, StreamId } from "@effect-eventsourcing/core"
import { JetStreamRelay } from "@effect-eventsourcing/nats"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Redacted, Scope } from "effect"
import { inject } from "vitest"
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

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

const nats = await natsOrWarn("JetStreamRelay.postgres.test.ts")

const database = `nats_relay_${process.pid}_${Date.now().toString(36)}`
const withDatabase = (url: string) => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const Database = Layer.unwrapEffect(Effect.gen(function*() {
  const server = inject("databaseUrl")
  yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`create database "${database}"`)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(server), maxConnections: 1 }))
  )
  return PgClient.layer({ url: Redacted.make(withDatabase(server)), maxConnections: 8 })
})).pipe(Layer.orDie)

const Stores = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
  Layer.provideMerge(Database),
  Layer.orDie
)

describe("JetStreamRelay on PostgreSQL", () => {
  it.live.skipIf(!nats)(
    "killed mid-run under concurrent writes and restarted: every event is in JetStream exactly once, in order",
    () =>
      Effect.gen(function*() {
        const { prefix, stream } = unique("pg")
        yield* deleteStreamAfter(stream)
        const name = `relay-${stream}`
        const checkpoints = yield* CheckpointStore.CheckpointStore
        const options = { name, stream, prefix, batchSize: 20 }

        yield* appendEvents(awkwardStreams, 200)
        const writer = yield* Effect.fork(
          Effect.forEach([200, 300], (offset) =>
            Effect.zipRight(Effect.sleep("30 millis"), appendEvents(awkwardStreams, 100, offset)))
        )
        for (const threshold of [30, 150]) {
          const scope = yield* Scope.make()
          yield* Scope.extend(JetStreamRelay.forkScoped(options), scope)
          yield* awaitMessages(stream, threshold)
          yield* Scope.close(scope, Exit.void)
          const checkpoint = yield* checkpoints.load(name)
          const inJetStream = yield* messageCount(stream)
          const log = yield* readLog
          // the checkpoint is a position; the events up to it were all published
          const upTo = log.filter((e) =>
            e.position <= Option.getOrElse(checkpoint, () => 0)
          ).length
          assert.isAtLeast(inJetStream, upTo)
        }
        yield* Fiber.join(writer)

        const relay = yield* JetStreamRelay.forkScoped(options)
        const log = yield* readLog
        assert.strictEqual(log.length, 400)
        yield* relay.awaitPosition(log.at(-1)!.position)

        const stored = yield* readStream(stream)
        assert.strictEqual(stored.length, 400)
        assert.deepStrictEqual(stored.map((m) => m.msgId), log.map((e) => e.id))
        const versions = new Map<string, number>()
        stored.forEach((m, i) => {
          assert.strictEqual(m.subject, JetStreamRelay.subject(prefix, log[i]!.streamId))
          const version = Number(m.message.header.get(JetStreamRelay.headers.version))
          assert.strictEqual(version, (versions.get(m.subject) ?? 0) + 1)
          versions.set(m.subject, version)
        })
        assert.strictEqual(versions.get(JetStreamRelay.subject(prefix, StreamId.unsafeMake("account", "*"))), 34)
      }).pipe(
        Effect.scoped,
        Effect.provide(Layer.merge(Stores, Connection))
      ),
    60_000
  )
})
