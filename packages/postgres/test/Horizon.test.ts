/**
 * The gap-safety horizon: transactions that do not write to this store (another database of the cluster) hold
 * back neither `readAll` nor `subscribe`.
 */
import { EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Redacted, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("horizon")

const storeOn = (maxConnections: number) =>
  PostgresEventStore.layer().pipe(Layer.provideMerge(Database.pool({ maxConnections })), Layer.orDie)

describe("the gap-safety horizon ignores unrelated transactions", () => {
  it.live(
    "a long write transaction in another database of the cluster holds back neither readAll nor subscribe",
    () =>
      Effect.gen(function*() {
        const other = freshDatabase("hardening_other")
        const otherUrl = yield* other.url
        // an unrelated writer in another database: an xid is assigned and the transaction stays open
        const blocker = yield* Effect.forkScoped(
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            sql.withTransaction(
              Effect.zipRight(sql`select pg_current_xact_id()`, Effect.never)
            )).pipe(
              Effect.provide(PgClient.layer({ url: Redacted.make(otherUrl), maxConnections: 1 }))
            )
        )
        yield* Effect.sleep("500 millis")
        const store = yield* EventStore.EventStore
        const written = yield* store.append(StreamId.unsafeMake("horizon", "1"), [{
          type: "Added",
          data: { amount: 1 }
        }], {
          _tag: "NoStream"
        })
        const read = yield* Stream.runCollect(store.readAll({ filter: { categories: ["horizon"] } })).pipe(
          Effect.map(Chunk.toArray)
        )
        assert.deepStrictEqual(read.map((e) => e.position), [written.position])
        const live = yield* Stream.runCollect(
          Stream.take(store.subscribe({ filter: { categories: ["horizon"] } }), 1)
        ).pipe(Effect.timeout("5 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(live), "subscribe delivered nothing while an unrelated transaction was open")
        yield* Fiber.interrupt(blocker)
      }).pipe(Effect.provide(storeOn(4)), Effect.scoped),
    30_000
  )
})
