import {
  EventStore,
  ExpectedVersion,
  ParkedEvents,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresParkedEvents } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Context, Deferred, Effect, Fiber, Layer, Option, Ref, Schedule, Schema } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("subscription_ops")

const s = (category: string, id: string) => StreamId.unsafeMake(category, id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

/** A separate pool (another "process") with its own stores on the test database. */
const processLayer = (applicationName: string) =>
  Layer.mergeAll(
    PostgresEventStore.layer({ pollInterval: "100 millis" }),
    PostgresCheckpointStore.layer(),
    PostgresParkedEvents.layer()
  ).pipe(
    Layer.provideMerge(Database.pool({ applicationName, maxConnections: 6 })),
    Layer.orDie
  )

class Poison extends Schema.TaggedError<Poison>()("Poison", { amount: Schema.Number }) {}

/**
 * A read model in table `table`: one row per handled event (the primary key makes a second application fail, so
 * nothing is ever applied twice unnoticed), refusing the amounts in `poison` while `poisoned` holds.
 */
const model = (table: string, poison: ReadonlyArray<number>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`create table ${sql(table)} (position bigint primary key)`
    const poisoned = yield* Ref.make(true)
    const projection = Projection.make({
      name: table,
      handle: (event) =>
        Effect.gen(function*() {
          const amount = (event.data as { amount: number }).amount
          if ((yield* Ref.get(poisoned)) && poison.includes(amount)) return yield* new Poison({ amount })
          const sql = yield* SqlClient.SqlClient
          yield* Effect.orDie(sql`insert into ${sql(table)} (position) values (${event.position})`)
        }),
      onReset: (position) =>
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`delete from ${sql(table)} where position > ${position}`).pipe(
          Effect.orDie,
          Effect.asVoid
        )
    })
    const rows = Effect.map(
      sql<{ position: string }>`select position from ${sql(table)} order by position`,
      (all) => all.map((r) => Number(r.position))
    ).pipe(Effect.orDie)
    return { projection, poisoned, rows }
  })

const positionsOf = (category: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ position: string }>`select position from event_store.events where category = ${category} order by position`
  ).pipe(Effect.map((rows) => rows.map((r) => Number(r.position))), Effect.orDie)

const quick = Schedule.recurs(2)

layer(processLayer("main"), { excludeTestServices: true, timeout: "120 seconds" })(
  "Subscription operations on PostgreSQL",
  (it) => {
    it.scoped("headPosition never passes a transaction in flight, however many commits follow it", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        // a small page: the walk from the top must cross several pages of rows that are not safe yet
        const store = yield* PostgresEventStore.make({ pageSize: 2 })
        const before = yield* store.append(s("head", "first"), [ev(1)], ExpectedVersion.NoStream)
        assert.strictEqual(yield* store.headPosition, before.position)
        const gate = yield* Deferred.make<void>()
        const appended = yield* Deferred.make<EventStore.AppendResult>()
        const slow = yield* Effect.fork(
          sql.withTransaction(
            store.append(s("head", "slow"), [ev(1)], ExpectedVersion.NoStream).pipe(
              Effect.tap((r) => Deferred.succeed(appended, r)),
              Effect.zipLeft(Deferred.await(gate))
            )
          )
        )
        const held = yield* Deferred.await(appended)
        let last = 0
        for (let i = 0; i < 7; i++) {
          last = (yield* store.append(s("head", `fast${i}`), [ev(i)], ExpectedVersion.NoStream)).position
        }
        assert.isTrue(last > held.position)
        const during = yield* store.headPosition
        assert.isBelow(during, held.position, "headPosition passed the transaction in flight")
        assert.strictEqual(during, before.position)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(slow)
        assert.strictEqual(yield* store.headPosition, last)
      }))

    it.scoped("park: a poison event is parked with error, attempts and time, the subscription moves on; the read model and the parked table cover the log exactly", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const { projection, rows } = yield* model("park_model", [2, 5])
        for (let i = 0; i < 4; i++) {
          yield* store.append(s("park", `${i}`), [ev(i * 3), ev(i * 3 + 1), ev(i * 3 + 2)], ExpectedVersion.NoStream)
        }
        const log = yield* positionsOf("park")
        const sub = yield* Subscription.forkScoped(projection, {
          onFailure: "park",
          retry: quick,
          filter: { categories: ["park"] }
        })
        yield* sub.awaitPosition(log.at(-1)!)
        const parked = yield* ParkedEvents.list({ subscription: "park_model" })
        assert.deepStrictEqual(parked.map((p) => [p.streamId, p.version, p.state, p.attempts]), [
          [s("park", "0"), 3, "parked", 3],
          [s("park", "1"), 3, "parked", 3]
        ])
        assert.match(parked[0]!.error, /Poison/)
        // exactly once: the batch that failed was rolled back, so no event is in the read model twice (primary key)
        // and every event of the log is in exactly one of them
        const handled = yield* rows
        assert.deepStrictEqual([...handled, ...parked.map((p) => p.position)].sort((a, b) => a - b), log)
        const report = yield* Subscription.status("park_model")
        assert.deepStrictEqual([report.checkpoint, report.parked], [Option.some(log.at(-1)!), 2])
        assert.match(Option.getOrThrow(report.lastError).message, /Poison/)
      }))

    it.scoped("retry re-delivers in the handler's transaction and removes the entry; a retry skipped meanwhile rolls the handler back; skip", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const { poisoned, projection, rows } = yield* model("retry_model", [7, 8])
        const first = yield* store.append(s("retry", "a"), [ev(1), ev(7), ev(8)], ExpectedVersion.NoStream)
        const sub = yield* Subscription.forkScoped(projection, {
          onFailure: "park",
          retry: quick,
          filter: { categories: ["retry"] },
          controlInterval: "20 millis"
        })
        yield* sub.awaitPosition(first.position)
        const [seven, eight] = yield* ParkedEvents.list({ subscription: "retry_model" })
        yield* Ref.set(poisoned, false)

        // another process asks for the retry; the running consumer applies it (and removes the entry) in one transaction
        const other = yield* Layer.buildWithScope(processLayer("operator"), yield* Effect.scope)
        const operator = <A, E>(effect: Effect.Effect<A, E, ParkedEvents.ParkedEvents>) => Effect.provide(effect, other)
        yield* operator(ParkedEvents.retry(seven!.id))
        yield* Effect.repeat(ParkedEvents.list({ subscription: "retry_model" }), {
          until: (all) => all.length === 1,
          schedule: Schedule.spaced("20 millis")
        })
        assert.deepStrictEqual(yield* rows, [first.position - 2, seven!.position])

        // skip
        yield* operator(ParkedEvents.skip(eight!.id))
        const [skipped] = yield* ParkedEvents.list({ subscription: "retry_model" })
        assert.strictEqual(skipped!.state, "skipped")
        assert.strictEqual((yield* Subscription.status("retry_model")).parked, 0)
      }))

    it.scoped("a retry whose entry is skipped before it resolves leaves nothing of its handler (exactly-once)", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        yield* sql`create table race_model (position bigint primary key)`
        const other = yield* Layer.buildWithScope(processLayer("racer"), yield* Effect.scope)
        const failing = yield* Ref.make(true)
        const entryId = yield* Ref.make(0)
        const projection = Projection.make({
          name: "race_model",
          handle: (event) =>
            Effect.gen(function*() {
              if (yield* Ref.get(failing)) return yield* new Poison({ amount: 0 })
              yield* Effect.orDie(sql`insert into race_model (position) values (${event.position})`)
              // the operator skips the entry while the handler's transaction is open (from another connection: not
              // in this fiber's transaction)
              yield* ParkedEvents.skip(yield* Ref.get(entryId)).pipe(
                Effect.provide(other),
                Effect.mapInputContext((context: Context.Context<never>) =>
                  Context.omit(SqlClient.TransactionConnection)(context)
                ),
                Effect.orDie
              )
            })
        })
        const r = yield* store.append(s("race", "a"), [ev(1)], ExpectedVersion.NoStream)
        const sub = yield* Subscription.forkScoped(projection, {
          onFailure: "park",
          retry: quick,
          filter: { categories: ["race"] },
          controlInterval: "20 millis"
        })
        yield* sub.awaitPosition(r.position)
        const [entry] = yield* ParkedEvents.list({ subscription: "race_model" })
        yield* Ref.set(entryId, entry!.id)
        yield* Ref.set(failing, false)
        yield* ParkedEvents.retry(entry!.id)
        yield* Effect.repeat(ParkedEvents.list({ subscription: "race_model" }), {
          until: (all) => all[0]?.state === "skipped",
          schedule: Schedule.spaced("20 millis")
        })
        yield* Effect.sleep("200 millis")
        const rows = yield* sql<{ position: string }>`select position from race_model`
        assert.deepStrictEqual(rows, [], "the handler's insert committed although its entry was skipped")
        assert.strictEqual((yield* ParkedEvents.list({ subscription: "race_model" })).length, 1)
      }))

    it.scoped("status from another process: checkpoint, head, lag, holder; a reset requested there is applied by the holder", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const { projection, rows } = yield* model("reset_model", [])
        for (let i = 0; i < 3; i++) yield* store.append(s("reset", `${i}`), [ev(i), ev(i)], ExpectedVersion.NoStream)
        const log = yield* positionsOf("reset")
        const sub = yield* Subscription.forkScoped(projection, {
          filter: { categories: ["reset"] },
          controlInterval: "20 millis"
        })
        yield* sub.awaitPosition(log.at(-1)!)
        const scope = yield* Effect.scope
        const other = yield* Layer.buildWithScope(processLayer("cli"), scope)
        const fromCli = <A, E>(effect: Effect.Effect<A, E, Layer.Layer.Success<ReturnType<typeof processLayer>>>) =>
          Effect.provide(effect, other)

        const report = yield* fromCli(Subscription.status("reset_model"))
        const head = yield* store.headPosition
        assert.deepStrictEqual([report.checkpoint, report.head, report.lag], [
          Option.some(log.at(-1)!),
          head,
          head - log.at(-1)!
        ])
        assert.match(Option.getOrThrow(report.holder), /^main \(pid \d+/)
        const all = yield* fromCli(Subscription.statusAll)
        assert.isTrue(all.some((r) => r.name === "reset_model"))

        // reset to the second event: the holder runs onReset (drops the rows after it) and replays, exactly once
        const request = yield* fromCli(Subscription.requestReset("reset_model", { position: log[1]! }))
        assert.strictEqual(request.position, log[1])
        yield* Effect.repeat(fromCli(Subscription.status("reset_model")), {
          until: (r) => Option.isNone(r.resetRequest),
          schedule: Schedule.spaced("20 millis")
        })
        yield* sub.awaitPosition(log.at(-1)!)
        assert.deepStrictEqual(yield* rows, log)
        const after = yield* fromCli(Subscription.status("reset_model"))
        assert.deepStrictEqual(after.checkpoint, Option.some(log.at(-1)!))
      }))
  }
)
