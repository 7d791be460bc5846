import {
  CheckpointStore,
  EventBus,
  EventStore,
  ExpectedVersion,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, Fiber, Layer, Option, Queue, Ref, Schedule, Scope, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("subscriptions")

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

/** A separate pool (another "process") with its own event store and checkpoint store on the test database. */
const processLayer = (applicationName: string) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(Database.pool({ applicationName, maxConnections: 6 })),
    Layer.orDie
  )

const startProcess = (applicationName: string, scope: Scope.Scope) =>
  Layer.buildWithScope(processLayer(applicationName), scope)

const terminate = (applicationName: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${applicationName}`
  )

/** The read model: a running total per stream, maintained by plain (non-idempotent) increments. */
const totals = (table: string) =>
  Projection.make({
    name: table,
    handle: (event) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`insert into ${sql(table)} (stream_id, total, events) values (${event.streamId}, ${
          (event.data as { amount: number }).amount
        }, 1)
          on conflict (stream_id) do update
          set total = ${sql(table)}.total + excluded.total, events = ${sql(table)}.events + 1`).pipe(Effect.asVoid),
    onReset: () =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql`delete from ${sql(table)}`).pipe(Effect.asVoid)
  })

const createTotals = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`create table ${sql(table)} (stream_id text primary key, total bigint not null, events int not null)`
  )

const readModel = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql<{ stream_id: string; total: string; events: number }>`select * from ${sql(table)}`
  ).pipe(
    Effect.map((rows) => new Map(rows.map((r) => [r.stream_id, `${r.total}/${r.events}`] as const)))
  )

/** The last committed position (global reads may lag it while older transactions are still open). */
const lastPosition = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ p: string | null }>`select max(position) as p from event_store.events`
).pipe(Effect.map((rows) => Number(rows[0]?.p ?? 0)))

/** What the read model must be: computed from the whole event log. */
const fromLog = Effect.gen(function*() {
  const store = yield* EventStore.EventStore
  const last = yield* lastPosition
  const events = yield* Stream.runCollect(store.readAll()).pipe(
    Effect.map(Chunk.toArray),
    Effect.filterOrFail((all) => (all.at(-1)?.position ?? 0) >= last, () => "lagging" as const),
    Effect.retry(Schedule.spaced("10 millis"))
  )
  const sums = new Map<string, { total: number; events: number }>()
  for (const e of events) {
    const current = sums.get(e.streamId) ?? { total: 0, events: 0 }
    sums.set(e.streamId, { total: current.total + (e.data as { amount: number }).amount, events: current.events + 1 })
  }
  return new Map([...sums].map(([k, v]) => [k, `${v.total}/${v.events}`] as const))
})

const Main = processLayer("main")

layer(Main, { excludeTestServices: true, timeout: "120 seconds" })("PostgresSubscription", (it) => {
  it.scoped("delivers gap-free in position order while concurrent transactions commit out of order", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      const seen = yield* Ref.make<ReadonlyArray<number>>([])
      const sub = yield* Subscription.forkScoped(
        Projection.make({ name: "gaps", handle: (e) => Ref.update(seen, (all) => [...all, e.position]) }),
        { filter: { categories: ["gap"] } }
      )
      // a writer holds its append transaction open; others commit after it with higher positions
      const gate = yield* Deferred.make<void>()
      const appended = yield* Deferred.make<EventStore.AppendResult>()
      const slow = yield* Effect.fork(
        sql.withTransaction(
          store.append(StreamId.unsafeMake("gap", "slow"), [ev(1)], ExpectedVersion.NoStream).pipe(
            Effect.tap((r) => Deferred.succeed(appended, r)),
            Effect.zipLeft(Deferred.await(gate))
          )
        )
      )
      const held = yield* Deferred.await(appended)
      const fast = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => store.append(StreamId.unsafeMake("gap", `fast${i}`), [ev(i)], ExpectedVersion.NoStream),
        { concurrency: 5 }
      )
      assert.isTrue(fast.every((r) => r.position > held.position))
      // the later commits are visible to plain reads of their streams, but the subscription must not pass the hole
      assert.strictEqual(yield* store.streamVersion(StreamId.unsafeMake("gap", "fast0")), 1)
      assert.deepStrictEqual(yield* Ref.get(seen), [])
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(slow)
      const last = Math.max(...fast.map((r) => r.position))
      yield* sub.awaitPosition(last)
      const positions = yield* Ref.get(seen)
      assert.deepStrictEqual(positions, [held.position, ...fast.map((r) => r.position).sort((a, b) => a - b)])

      // many writers, each holding its transaction open for a random number of scheduler turns
      const writers = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, w) => w),
        (w) =>
          Effect.forEach(Array.from({ length: 15 }, (_, i) => i), (i) =>
            sql.withTransaction(
              store.append(StreamId.unsafeMake("gap", `w${w}`), [ev(i)], ExpectedVersion.Exact(i)).pipe(
                Effect.zipLeft(Effect.repeatN(Effect.yieldNow(), (w * 7 + i * 3) % 5))
              )
            )),
        { concurrency: "unbounded" }
      )
      const end = Math.max(...writers.flat().map((r) => r.position))
      yield* sub.awaitPosition(end)
      const all = yield* Ref.get(seen)
      const expected = Chunk.toArray(
        yield* Stream.runCollect(store.readAll({ filter: { categories: ["gap"] } }))
      ).map((e) => e.position)
      assert.strictEqual(all.length, 11 + 8 * 15)
      assert.deepStrictEqual(all, expected)
    }))

  it.scoped("is exactly-once when the backend dies between handler and checkpoint", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* createTotals("crash_totals")
      for (let i = 1; i <= 4; i++) {
        yield* store.append(s(`c${i}`), [ev(i), ev(10 * i)], ExpectedVersion.NoStream)
      }
      const target = (yield* lastPosition) - 2
      const backend = yield* Deferred.make<number>()
      const base = totals("crash_totals")
      const crashing = Projection.make({
        name: "crash_totals",
        handle: (event) =>
          Effect.zipRight(
            base.handle(event),
            event.position === target
              ? Effect.flatMap(
                sql<{ pid: number }>`select pg_backend_pid() as pid`,
                (rows) => Effect.zipRight(Deferred.succeed(backend, rows[0]!.pid), Effect.never)
              )
              : Effect.void
          )
      })
      const scope = yield* Scope.make()
      yield* Subscription.forkScoped(crashing, { batchSize: 1 }).pipe(Scope.extend(scope))
      // the handler's write for `target` is done, its checkpoint is not: kill the backend, then the "process"
      const pid = yield* Deferred.await(backend)
      yield* sql`select pg_terminate_backend(${pid})`
      yield* Scope.close(scope, Exit.void)
      const checkpoints = yield* CheckpointStore.CheckpointStore
      // (the pool may first hand out the killed connection once)
      assert.deepStrictEqual(
        yield* checkpoints.load("crash_totals").pipe(Effect.retry({ times: 3 })),
        Option.some(target - 1)
      )

      // restart: the event is handled again, and applied once
      const sub = yield* Subscription.forkScoped(base, { batchSize: 1 })
      yield* store.append(s("c5"), [ev(5)], ExpectedVersion.NoStream)
      yield* sub.awaitPosition(yield* lastPosition)
      assert.deepStrictEqual(yield* readModel("crash_totals"), yield* fromLog)
    }))

  it.scoped("is exactly-once when the fiber is interrupted in the middle of a batch", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* createTotals("interrupt_totals")
      yield* Effect.forEach(Array.from({ length: 6 }, (_, i) => i), (i) =>
        store.append(s(`i${i}`), [ev(i), ev(i + 1), ev(i + 2)], ExpectedVersion.NoStream))
      const inBatch = yield* Deferred.make<void>()
      const base = totals("interrupt_totals")
      let handled = 0
      const crashing = Projection.make({
        name: "interrupt_totals",
        handle: (event) =>
          Effect.zipRight(
            base.handle(event),
            ++handled === 7 ? Effect.zipRight(Deferred.succeed(inBatch, undefined), Effect.never) : Effect.void
          )
      })
      const scope = yield* Scope.make()
      yield* Subscription.forkScoped(crashing, { batchSize: 4 }).pipe(Scope.extend(scope))
      yield* Deferred.await(inBatch)
      yield* Scope.close(scope, Exit.void)
      const sub = yield* Subscription.forkScoped(base, { batchSize: 4 })
      yield* sub.awaitPosition(yield* lastPosition)
      assert.deepStrictEqual(yield* readModel("interrupt_totals"), yield* fromLog)
    }))

  it.scoped("without a shared transaction (in-memory checkpoints) the same crash applies an event twice", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* EventStore.EventStore
      yield* createTotals("naive_totals")
      yield* store.append(s("n1"), [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const target = (yield* lastPosition) - 1
      const checkpoints = yield* CheckpointStore.makeMemory
      const reached = yield* Deferred.make<void>()
      const base = totals("naive_totals")
      const crashing = Projection.make({
        name: "naive_totals",
        handle: (event) =>
          Effect.zipRight(
            base.handle(event),
            event.position === target
              ? Effect.zipRight(Deferred.succeed(reached, undefined), Effect.never)
              : Effect.void
          )
      })
      const scope = yield* Scope.make()
      yield* Subscription.forkScoped(crashing, { batchSize: 1, checkpoints }).pipe(Scope.extend(scope))
      yield* Deferred.await(reached)
      yield* Scope.close(scope, Exit.void)
      const sub = yield* Subscription.forkScoped(base, { batchSize: 1, checkpoints })
      yield* sub.awaitPosition(yield* lastPosition)
      const model = yield* readModel("naive_totals")
      assert.notDeepEqual(model, yield* fromLog)
      assert.strictEqual(model.get("acc-n1"), "8/4") // 1 + 2 + 2 + 3: the event at `target` twice
      yield* sql`select 1`
    }))

  it.scoped("a second process waits, then takes over when the first one's connections die", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* createTotals("takeover_totals")
      const projection = totals("takeover_totals")
      const scopeA = yield* Scope.make()
      const a = yield* startProcess("takeover-a", scopeA)
      const subA = yield* Subscription.forkScoped(projection, { retry: Schedule.recurs(3) }).pipe(
        Effect.provide(a),
        Scope.extend(scopeA)
      )
      yield* store.append(s("t1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      yield* subA.awaitPosition(yield* lastPosition)

      const scopeB = yield* Scope.make()
      const b = yield* startProcess("takeover-b", scopeB)
      const subB = yield* Subscription.forkScoped(projection).pipe(Effect.provide(b), Scope.extend(scopeB))
      yield* store.append(s("t2"), [ev(3)], ExpectedVersion.NoStream)
      yield* subA.awaitPosition(yield* lastPosition)
      // B waits on the lease while A works
      assert.strictEqual(yield* subB.processed, 0)

      // A's process loses every connection (its lock is released by the server)
      yield* terminate("takeover-a")
      yield* store.append(s("t3"), [ev(4), ev(5)], ExpectedVersion.NoStream)
      yield* store.append(s("t1"), [ev(6)], ExpectedVersion.Exact(2))
      yield* subB.awaitPosition(yield* lastPosition)
      assert.deepStrictEqual(yield* readModel("takeover_totals"), yield* fromLog)
      yield* Scope.close(scopeA, Exit.void)

      // and a third process takes over from B when B stops cleanly
      const scopeC = yield* Scope.make()
      const c = yield* startProcess("takeover-c", scopeC)
      const subC = yield* Subscription.forkScoped(projection).pipe(Effect.provide(c), Scope.extend(scopeC))
      yield* Scope.close(scopeB, Exit.void)
      yield* store.append(s("t4"), [ev(7)], ExpectedVersion.NoStream)
      yield* subC.awaitPosition(yield* lastPosition)
      assert.deepStrictEqual(yield* readModel("takeover_totals"), yield* fromLog)
      yield* Scope.close(scopeC, Exit.void)
    }))

  it.scoped("rebuilds a projection while writers keep appending", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* createTotals("rebuild_totals")
      const sub = yield* Subscription.forkScoped(totals("rebuild_totals"), { batchSize: 10 })
      const writer = (w: number) =>
        Effect.forEach(
          Array.from({ length: 30 }, (_, i) => i),
          (i) => store.append(s(`r${w}`), [ev(i + 1)], ExpectedVersion.Exact(i)),
          { discard: true }
        )
      const writers = yield* Effect.fork(
        Effect.all(Array.from({ length: 4 }, (_, w) => writer(w)), { concurrency: "unbounded" })
      )
      yield* sub.awaitPosition(20)
      yield* sub.reset()
      yield* Fiber.join(writers)
      yield* sub.awaitPosition(yield* lastPosition)
      assert.deepStrictEqual(yield* readModel("rebuild_totals"), yield* fromLog)
      const rebuilt = [...(yield* readModel("rebuild_totals")).entries()].filter(([k]) => k.startsWith("acc-r"))
      assert.deepStrictEqual(rebuilt.map(([, v]) => v), Array.from({ length: 4 }, () => "465/30"))
    }))

  it.scoped("an inline projection writes in the append's transaction; its failure rolls the append back", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`create table inline_balances (stream_id text primary key, balance bigint not null check (balance >= 0))`
      // the CHECK constraint makes the handler fail for an overdraft: a typed SqlError from the handler's own SQL
      const balances = Projection.make({
        name: "inline-balances",
        handle: (event) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) =>
            Effect.zipRight(
              sql`insert into inline_balances (stream_id, balance) values (${event.streamId}, 0) on conflict do nothing`,
              sql`update inline_balances set balance = balance + ${(event.data as { amount: number }).amount}
                where stream_id = ${event.streamId}`
            )),
        onDelete: (streamId) =>
          Effect.flatMap(SqlClient.SqlClient, (sql) => sql`delete from inline_balances where stream_id = ${streamId}`)
      })
      const store = yield* PostgresEventStore.make({ schema: "inline_store", inline: [balances] })
      const balanceOf = (id: string) =>
        Effect.map(
          sql<{ balance: string }>`select balance from inline_balances where stream_id = ${id}`,
          (rows) => rows.map((r) => Number(r.balance))
        )

      yield* store.append(s("x"), [ev(10), ev(5)], ExpectedVersion.NoStream)
      assert.deepStrictEqual(yield* balanceOf("acc-x"), [15])
      // a batch whose second event overdraws: the whole append fails, neither event nor read-model write remains
      const error = yield* Effect.flip(store.append(s("x"), [ev(1), ev(-20)], ExpectedVersion.Exact(2)))
      assert.strictEqual(error._tag, "EventStoreError")
      assert.strictEqual(yield* store.streamVersion(s("x")), 2)
      assert.deepStrictEqual(yield* balanceOf("acc-x"), [15])
      // appendMany across streams is one unit too
      const many = yield* Effect.flip(store.appendMany([
        { streamId: s("y"), events: [ev(3)], expected: ExpectedVersion.NoStream },
        { streamId: s("x"), events: [ev(-16)], expected: ExpectedVersion.Exact(2) }
      ]))
      assert.strictEqual(many._tag, "EventStoreError")
      assert.strictEqual(yield* store.streamVersion(s("y")), 0)
      assert.deepStrictEqual(yield* balanceOf("acc-y"), [])
      // the same expected version works afterwards
      yield* store.append(s("x"), [ev(-15)], ExpectedVersion.Exact(2))
      assert.deepStrictEqual(yield* balanceOf("acc-x"), [0])

      // onDelete removes the read side with the stream, in the same transaction
      yield* store.append(s("z"), [ev(7)], ExpectedVersion.NoStream)
      yield* store.delete(s("x"))
      assert.deepStrictEqual(yield* balanceOf("acc-x"), [])
      assert.deepStrictEqual(yield* balanceOf("acc-z"), [7])
      assert.strictEqual(yield* store.streamVersion(s("x")), 0)
    }))

  it.scoped("publishes to the EventBus after commit and resumes from its durable checkpoint after a crash", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const bus = (scope: Scope.Scope) =>
        Layer.buildWithScope(EventBus.layer({ name: "outbox", filter: { categories: ["bus"] } }), scope).pipe(
          Effect.flatMap((context) => Effect.provide(EventBus.EventBus, context))
        )
      const b = (id: string) => StreamId.unsafeMake("bus", id)

      const scope1 = yield* Scope.make()
      const inbox1 = yield* Effect.flatMap(bus(scope1), (bus) => bus.subscribe).pipe(Scope.extend(scope1))
      const first = yield* store.append(b("1"), [ev(1), ev(2)], ExpectedVersion.NoStream)
      const received1 = yield* Queue.takeBetween(inbox1, 2, 2)
      assert.deepStrictEqual(Chunk.toArray(received1).map((e) => e.position), [first.position - 1, first.position])
      yield* Subscription.awaitCheckpoint("outbox", first.position)
      yield* Scope.close(scope1, Exit.void) // the publisher goes down

      // committed while nobody publishes: the events table is the outbox
      const second = yield* store.append(b("2"), [ev(3)], ExpectedVersion.NoStream)
      const third = yield* store.append(b("1"), [ev(4)], ExpectedVersion.Exact(2))

      const scope2 = yield* Scope.make()
      const inbox2 = yield* Effect.flatMap(bus(scope2), (bus) => bus.subscribe).pipe(Scope.extend(scope2))
      const received2 = yield* Queue.takeBetween(inbox2, 2, 2)
      assert.deepStrictEqual(Chunk.toArray(received2).map((e) => e.position), [second.position, third.position])
      yield* Scope.close(scope2, Exit.void)
    }))
})
