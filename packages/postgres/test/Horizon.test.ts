/**
 * The gap-safety horizon: transactions that do not write to this store (another database of the cluster, another
 * schema of this database) hold back neither `readAll` nor `subscribe`; transactions that do write to it, held open
 * at random under load, never let a reader miss, repeat or reorder an event.
 */
import { EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import {
  Chunk,
  Clock,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  Layer,
  Random,
  Redacted,
  Ref,
  Schedule,
  Stream
} from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("horizon")

const storeOn = (maxConnections: number, options: PostgresEventStore.Options = {}) =>
  PostgresEventStore.layer(options).pipe(Layer.provideMerge(Database.pool({ maxConnections })), Layer.orDie)

/** Whether the horizon before issue 12 (the server-wide oldest running transaction) would hold back `position`. */
const heldBackServerWide = (position: number) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ held: boolean }>`select xid >= pg_snapshot_xmin(pg_current_snapshot()) as held
      from event_store.events where position = ${position}`
  ).pipe(Effect.map((rows) => rows[0]?.held === true))

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

  it.live(
    "a transaction open in another schema of the same database holds back neither readAll nor subscribe",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        // another store in another schema of this database, whose append stays uncommitted
        const other = Context.get(
          yield* Layer.build(PostgresEventStore.layer({ schema: "horizon_other" })).pipe(Effect.orDie),
          EventStore.EventStore
        )
        const appended = yield* Deferred.make<void>()
        const otherWriter = yield* Effect.forkScoped(sql.withTransaction(
          other.append(StreamId.unsafeMake("elsewhere", "1"), [{ type: "Added", data: {} }], { _tag: "NoStream" })
            .pipe(Effect.zipRight(Deferred.succeed(appended, undefined)), Effect.zipRight(Effect.never))
        ))
        // and a plain write to another schema's table, also left open
        yield* sql.unsafe("create schema horizon_side; create table horizon_side.t (x int)")
        const inserted = yield* Deferred.make<void>()
        const sideWriter = yield* Effect.forkScoped(sql.withTransaction(
          sql`insert into horizon_side.t values (1)`.pipe(
            Effect.zipRight(Deferred.succeed(inserted, undefined)),
            Effect.zipRight(Effect.never)
          )
        ))
        yield* Deferred.await(appended)
        yield* Deferred.await(inserted)
        const written = yield* store.append(StreamId.unsafeMake("horizon", "2"), [{ type: "Added", data: {} }], {
          _tag: "NoStream"
        })
        // the test means something: the server-wide horizon would hold this event back
        assert.isTrue(yield* heldBackServerWide(written.position))
        const read = yield* Stream.runCollect(store.readAll({ filter: { categories: ["horizon"] } })).pipe(
          Effect.map(Chunk.toArray)
        )
        assert.deepStrictEqual(read.map((e) => e.position).slice(-1), [written.position])
        const unfiltered = yield* Stream.runCollect(store.readAll()).pipe(Effect.map(Chunk.toArray))
        assert.strictEqual(unfiltered.at(-1)?.position, written.position)
        const live = yield* Stream.runCollect(
          Stream.take(
            Stream.filter(store.subscribe({ filter: { categories: ["horizon"] } }), (e) =>
              e.position === written.position),
            1
          )
        ).pipe(Effect.timeout("5 seconds"), Effect.exit)
        assert.isTrue(Exit.isSuccess(live), "subscribe delivered nothing while another schema's transaction was open")
        yield* Fiber.interrupt(otherWriter)
        yield* Fiber.interrupt(sideWriter)
      }).pipe(Effect.provide(storeOn(6)), Effect.scoped),
    30_000
  )

  it.live(
    "writers of this store holding transactions open at random: readers page through without missing, repeating or reordering",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const writers = 6
        const rounds = 12
        // keys of the events whose transaction committed
        const committed = yield* Ref.make<ReadonlyArray<string>>([])
        const done = yield* Deferred.make<void>()
        const writer = (w: number) =>
          Effect.forEach(Array.from({ length: rounds }, (_, i) => i), (i) =>
            Effect.gen(function*() {
              const count = yield* Random.nextIntBetween(1, 4)
              const keys = Array.from({ length: count }, (_, k) => `${w}.${i}.${k}`)
              const early = (yield* Random.nextIntBetween(0, 3)) === 0
              const rollback = (yield* Random.nextIntBetween(0, 6)) === 0
              const hold = yield* Random.nextIntBetween(0, 150)
              const transaction = Effect.gen(function*() {
                // some transactions have an id before they append (they wrote something else first)
                if (early) yield* sql`select pg_current_xact_id()`
                yield* store.append(
                  StreamId.unsafeMake("load", `${w}x${i}`),
                  keys.map((key) => ({ type: "Added", data: { key } })),
                  { _tag: "NoStream" }
                )
                // positions taken, rows written, transaction still open
                yield* Effect.sleep(hold)
                if (rollback) return yield* Effect.fail("rollback" as const)
              })
              const exit = yield* Effect.exit(sql.withTransaction(transaction))
              if (Exit.isSuccess(exit)) yield* Ref.update(committed, (all) => [...all, ...keys])
            }))
        const keyOf = (e: EventStore.RecordedEvent) => (e.data as { key: string }).key
        // a subscriber (filtered: its pages run in a transaction) running while the writers write, and a reader paging
        // through readAll by hand (unfiltered, pages of 5, each page its own query)
        const delivered = yield* Ref.make<ReadonlyArray<EventStore.RecordedEvent>>([])
        const subscriber = yield* Effect.fork(Stream.runForEach(
          store.subscribe({ filter: { categories: ["load"] } }),
          (e) => Ref.update(delivered, (all) => [...all, e])
        ))
        const pager = yield* Effect.fork(Effect.gen(function*() {
          const seen: Array<EventStore.RecordedEvent> = []
          let from = 1
          let finishedAt: number | undefined
          for (;;) {
            const page = Chunk.toArray(
              yield* Stream.runCollect(store.readAll({ from, limit: 5 }))
            )
            // (the earlier tests of this file wrote to the same store)
            seen.push(...page.filter((e) => e.streamId.startsWith("load-")))
            if (page.length > 0) {
              from = page[page.length - 1]!.position + 1
            } else if (yield* Deferred.isDone(done)) {
              // every writer has ended: the reader catches up at once (give up after 10 s, the check below says why)
              finishedAt ??= yield* Clock.currentTimeMillis
              const total = (yield* Ref.get(committed)).length
              if (seen.length >= total || (yield* Clock.currentTimeMillis) - finishedAt > 10_000) return seen
              yield* Effect.sleep(5)
            } else {
              yield* Effect.sleep(5)
            }
          }
        }))
        yield* Effect.forEach(Array.from({ length: writers }, (_, w) => w), writer, { concurrency: "unbounded" })
        yield* Deferred.succeed(done, undefined)
        const expected = [...(yield* Ref.get(committed))].sort()
        const pages = yield* Fiber.join(pager)
        yield* Ref.get(delivered).pipe(
          Effect.repeat({ until: (all) => all.length >= expected.length, schedule: Schedule.spaced("10 millis") }),
          Effect.timeout("10 seconds"),
          Effect.ignore
        )
        yield* Effect.sleep("100 millis") // anything delivered twice or late would show now
        yield* Fiber.interrupt(subscriber)
        for (const [name, events] of [["readAll pages", pages], ["subscribe", yield* Ref.get(delivered)]] as const) {
          const positions = events.map((e) => e.position)
          for (let i = 1; i < positions.length; i++) {
            assert.isTrue(
              positions[i]! > positions[i - 1]!,
              `${name}: position ${positions[i]} after ${positions[i - 1]}`
            )
          }
          assert.deepStrictEqual([...events.map(keyOf)].sort(), expected, `${name}: missed or repeated events`)
        }
        assert.isAbove(expected.length, writers * rounds)
      }).pipe(Effect.provide(storeOn(12, { pageSize: 5 })), Effect.scoped),
    60_000
  )
})
