import { Aggregate, CheckpointStore, CommandHandler, EventStore, View } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresViewStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Either, Layer, Option, Schedule, Schema, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("views")

class Opened extends Schema.TaggedClass<Opened>()("Opened", { owner: Schema.String }) {}
class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}

const Wallet = Aggregate.make({
  name: "wallet",
  events: Schema.Union(Opened, Deposited),
  initialState: { open: false },
  decide: (command: Opened | Deposited) => Either.right([command]),
  evolve: (state, event) => event._tag === "Opened" ? { open: true } : state
})

const Summaries = View.fromAggregate(Wallet, {
  name: "wallet-summaries",
  schema: Schema.Struct({ owner: Schema.String, balance: Schema.Int, deposits: Schema.Int }),
  initial: { owner: "", balance: 0, deposits: 0 },
  evolve: (view, event) =>
    event._tag === "Opened"
      ? { ...view, owner: event.owner }
      : { ...view, balance: view.balance + event.amount, deposits: view.deposits + 1 }
})

const handle = CommandHandler.make(Wallet, { retry: Schedule.recurs(50) })

const Stores = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresViewStore.layer())
  .pipe(Layer.provideMerge(Database.pool({ maxConnections: 10 })), Layer.orDie)

layer(Stores, { excludeTestServices: true, timeout: "60 seconds" })("PostgresViewStore", (it) => {
  it.scoped("a view kept by a subscription under concurrent commands matches the aggregates; jsonb + position", () =>
    Effect.gen(function*() {
      const subscription = yield* View.forkScoped(Summaries)
      const ids = ["a", "b", "c"]
      yield* Effect.forEach(ids, (id) => handle(id, new Opened({ owner: id.toUpperCase() })), { concurrency: 3 })
      const results = yield* Effect.forEach(
        Array.from({ length: 45 }, (_, i) => i),
        (i) => handle(ids[i % 3]!, new Deposited({ amount: 1 + (i % 4) })),
        { concurrency: 9 }
      )
      const last = Math.max(...results.map((r) => r.position))
      yield* subscription.awaitPosition(last)
      for (const id of ids) {
        const expected = results
          .filter((_, i) => ids[i % 3] === id)
          .reduce((sum, r) => sum + (r.events[0] as Deposited).amount, 0)
        assert.deepStrictEqual(
          yield* View.get(Summaries, id),
          Option.some({ owner: id.toUpperCase(), balance: expected, deposits: 15 })
        )
      }
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ key: string; type: string; position: string }>`
        select key, jsonb_typeof(document) as type, position from event_store.views
        where view = ${Summaries.name} order by key`
      assert.deepStrictEqual(rows.map((r) => [r.key, r.type]), [["a", "object"], ["b", "object"], ["c", "object"]])
      assert.strictEqual(Math.max(...rows.map((r) => Number(r.position))), last)
    }))

  it.scoped("the documents and the checkpoint commit together: a batch that fails after writing leaves neither", () =>
    Effect.gen(function*() {
      const store = yield* View.ViewStore
      // saves the documents, then fails: the transaction of the batch must roll the documents back
      const failAfterSave = Layer.succeed(View.ViewStore, {
        ...store,
        save: (view, documents) =>
          Effect.zipRight(
            store.save(view, documents),
            Effect.fail(new View.ViewStoreError({ method: "save", cause: "after the write" }))
          )
      })
      const Failing = View.make({
        name: "failing-after-write",
        schema: Schema.Struct({ count: Schema.Int }),
        key: (event) => event.streamId,
        initial: { count: 0 },
        evolve: (view) => ({ count: view.count + 1 }),
        filter: { categories: ["wallet"] }
      })
      const subscription = yield* View.forkScoped(Failing, { retry: Schedule.stop }).pipe(
        Effect.provide(failAfterSave)
      )
      const error = yield* Effect.flip(subscription.join)
      assert.instanceOf(error, View.ViewStoreError)
      assert.deepStrictEqual(yield* View.list(Failing), [])
      assert.deepStrictEqual(
        yield* CheckpointStore.CheckpointStore.pipe(Effect.flatMap((c) => c.load(Failing.name))),
        Option.none()
      )

      // with a working store the same view catches up exactly once
      const working = yield* View.forkScoped(Failing)
      const head = yield* Stream.runFold(EventStore.readAll(), 0, (_, e) => e.position)
      yield* working.awaitPosition(head)
      const counts = yield* View.list(Failing)
      assert.deepStrictEqual(counts.map((d) => d.value.count), [16, 16, 16])
    }))

  it.scoped("is rebuilt by Subscription.reset(): cleared and replayed in the checkpoint's transaction", () =>
    Effect.gen(function*() {
      const subscription = yield* View.forkScoped(Summaries)
      const head = yield* Stream.runFold(EventStore.readAll(), 0, (_, e) => e.position)
      yield* subscription.awaitPosition(head)
      const before = yield* View.list(Summaries)
      const sql = yield* SqlClient.SqlClient
      yield* sql`update event_store.views set document = '{"owner":"?","balance":0,"deposits":0}'
        where view = ${Summaries.name}`
      yield* subscription.reset()
      yield* subscription.awaitPosition(head)
      assert.deepStrictEqual(yield* View.list(Summaries), before)
    }))

  it.effect("a document that no longer matches the schema is a ViewDocumentError; a bad schema name is refused", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`insert into event_store.views (view, key, document, position)
        values (${Summaries.name}, 'broken', '{"owner":1}', 1)`
      const error = yield* Effect.flip(View.get(Summaries, "broken"))
      assert.instanceOf(error, View.ViewDocumentError)
      yield* sql`delete from event_store.views where key = 'broken'`
      const refused = yield* Effect.flip(PostgresViewStore.make({ schema: "Bad-Name" }))
      assert.instanceOf(refused, View.ViewStoreError)
    }))
})
