import { EventStore, ExpectedVersion, Projection, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import {
  Chunk,
  Config,
  ConfigProvider,
  Context,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  Layer,
  Option,
  Ref,
  Schedule,
  Scope,
  Stream
} from "effect"
import { migrations } from "../src/internal/migrations/index.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("event_store")

let counter = 0
const stream = (label: string) => StreamId.unsafeMake("acc", `${label}${++counter}`)
const ev = (n: number): EventStore.EventData => ({ type: "Deposited", data: { amount: n } })

/** A store on a pool of its own (another "process"). */
const storeOn = (applicationName: string, options?: PostgresEventStore.Options) =>
  Effect.map(
    Layer.build(
      PostgresEventStore.layer(options).pipe(
        Layer.provideMerge(Database.pool({ applicationName, maxConnections: 8 }))
      )
    ),
    (context) => Context.get(context, EventStore.EventStore)
  )

const sqlCount = (query: string, params: ReadonlyArray<unknown> = []) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe<{ n: string }>(query, params)).pipe(
    Effect.map((rows) => Number(rows[0]?.n ?? 0))
  )

/** Retries until the condition holds (polling a real server; no timing assertion). */
const eventually = <E, R>(check: Effect.Effect<boolean, E, R>, what: string) =>
  Effect.flatMap(check, (ok) => ok ? Effect.void : Effect.fail(`not yet: ${what}`)).pipe(
    Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("20 seconds"))),
    Effect.orDie
  )

const collect = <A, E>(s: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(s), Chunk.toArray)

layer(Database.pool({ maxConnections: 16 }), { excludeTestServices: true, timeout: "60 seconds" })(
  "PostgresEventStore",
  (it) => {
    it.scoped("conflicts under real concurrency: N writers on N connections, one winner, real actual version", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const released = yield* Deferred.make<void>()
        // the winner's transaction stays open (inline projection) until every other writer waits on it
        const hold = Projection.make({
          name: "hold",
          handle: () => Deferred.await(released)
        })
        const store = yield* PostgresEventStore.make({ inline: [hold] })
        const id = stream("race")
        const N = 8
        const writers = yield* Effect.forkScoped(
          Effect.all(
            Array.from({ length: N }, (_, i) => Effect.either(store.append(id, [ev(i)], ExpectedVersion.NoStream))),
            { concurrency: "unbounded" }
          )
        )
        // N - 1 backends blocked on the winner's uncommitted row: they really run at the same time
        yield* eventually(
          Effect.map(
            sql<{ n: string }>`select count(*) as n from pg_stat_activity
              where datname = current_database() and wait_event_type = 'Lock'`,
            (rows) => Number(rows[0]!.n) === N - 1
          ),
          "N - 1 writers waiting"
        )
        yield* Deferred.succeed(released, undefined)
        const results = yield* Fiber.join(writers)
        const winners = results.filter(Either.isRight)
        const losers = results.filter(Either.isLeft).map((r) => r.left)
        assert.strictEqual(winners.length, 1)
        assert.strictEqual(losers.length, N - 1)
        for (const loser of losers) {
          assert(loser instanceof EventStore.ConcurrencyConflict, `unexpected ${loser._tag}`)
          assert.strictEqual(loser.actual, 1)
        }
        assert.strictEqual(yield* store.streamVersion(id), 1)
      }))

    it.scoped("concurrent Any appends to one stream all succeed with distinct versions", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const id = stream("any")
        const results = yield* Effect.all(
          Array.from({ length: 12 }, (_, i) => store.append(id, [ev(i), ev(i)], ExpectedVersion.Any)),
          { concurrency: "unbounded" }
        )
        assert.deepStrictEqual(
          results.map((r) => r.version).sort((a, b) => a - b),
          Array.from({ length: 12 }, (_, i) => 2 * (i + 1))
        )
        const events = yield* collect(store.read(id))
        assert.deepStrictEqual(events.map((e) => e.version), Array.from({ length: 24 }, (_, i) => i + 1))
      }))

    it.scoped("gap safety: a transaction that started first and commits last is never passed", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresEventStore.make({ pollInterval: "50 millis" })
        const category = `gap${++counter}`
        const a = StreamId.unsafeMake(category, "a")
        const b = StreamId.unsafeMake(category, "b")
        const filter = { categories: [category] }
        const received = yield* Ref.make<ReadonlyArray<EventStore.RecordedEvent>>([])
        yield* Effect.forkScoped(
          Stream.runForEach(store.subscribe({ filter }), (e) => Ref.update(received, (xs) => [...xs, e]))
        )
        const appended = yield* Deferred.make<EventStore.AppendResult>()
        const commitA = yield* Deferred.make<void>()
        // A: allocates its position first, then keeps its transaction open
        const writerA = yield* Effect.forkScoped(sql.withTransaction(Effect.gen(function*() {
          const result = yield* store.append(a, [ev(1)], ExpectedVersion.NoStream)
          yield* Deferred.succeed(appended, result)
          yield* Deferred.await(commitA)
          return result
        })))
        const first = yield* Deferred.await(appended)
        // B: a later position, committed at once
        const second = yield* store.append(b, [ev(2)], ExpectedVersion.NoStream)
        assert(second.position > first.position)
        // B is durable, but a reader must not hand it out while A (a lower position) may still commit
        const before = yield* collect(store.readAll({ filter }))
        assert.deepStrictEqual(before.map((e) => e.streamId), [])
        yield* Effect.sleep("200 millis") // the subscriber polls a few times meanwhile
        assert.deepStrictEqual((yield* Ref.get(received)).map((e) => e.streamId), [])
        yield* Deferred.succeed(commitA, undefined)
        yield* Fiber.join(writerA)
        const after = yield* collect(store.readAll({ filter }))
        assert.deepStrictEqual(after.map((e) => e.position), [first.position, second.position])
        yield* eventually(Effect.map(Ref.get(received), (xs) => xs.length === 2), "both delivered")
        assert.deepStrictEqual((yield* Ref.get(received)).map((e) => e.position), [first.position, second.position])
      }))

    it.scoped("gap safety under load: writers in long transactions (ids assigned early), nothing missed", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresEventStore.make({ pollInterval: "20 millis" })
        const category = `load${++counter}`
        const filter = { categories: [category] }
        const received = yield* Ref.make<ReadonlyArray<number>>([])
        yield* Effect.forkScoped(
          Stream.runForEach(store.subscribe({ filter }), (e) => Ref.update(received, (xs) => [...xs, e.position]))
        )
        const writer = (w: number) =>
          Effect.forEach(Array.from({ length: 15 }, (_, i) => i), (i) =>
            sql.withTransaction(Effect.gen(function*() {
              // half of the writers get their transaction id before appending (the joined path)
              if ((w + i) % 2 === 0) yield* sql`select pg_current_xact_id()`
              yield* Effect.sleep(Duration.millis((w * 7 + i * 13) % 11))
              const result = yield* store.append(StreamId.unsafeMake(category, `${w}`), [ev(i)], ExpectedVersion.Any)
              yield* Effect.sleep(Duration.millis((w * 5 + i * 3) % 13))
              return result.position
            })))
        const positions = (yield* Effect.all(Array.from({ length: 8 }, (_, w) => writer(w)), {
          concurrency: "unbounded"
        })).flat().sort((x, y) => x - y)
        yield* eventually(
          Effect.map(Ref.get(received), (xs) => xs.length >= positions.length),
          "every event delivered"
        )
        yield* Effect.sleep("100 millis")
        const delivered = yield* Ref.get(received)
        assert.deepStrictEqual(delivered, positions)
        const read = yield* collect(store.readAll({ filter }))
        assert.deepStrictEqual(read.map((e) => e.position), positions)
      }))

    it.scoped("LISTEN is re-established after its backend is terminated", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const writer = yield* storeOn("listen-writer", { notify: "afterCommit" })
        // polling every hour: only a notification can wake this subscriber
        const reader = yield* storeOn("listen-reader", { pollInterval: "1 hour", watchdogInterval: "200 millis" })
        const category = `listen${++counter}`
        const received = yield* Ref.make(0)
        yield* Effect.forkScoped(
          Stream.runForEach(reader.subscribe({ filter: { categories: [category] } }), () =>
            Ref.update(received, (n) => n + 1))
        )
        const listeners = sql<{ pid: number }>`select pid from pg_stat_activity
          where application_name = 'listen-reader' and query like 'LISTEN%'`
        yield* eventually(
          Effect.map(listeners, (rows) =>
            rows.length === 1),
          "LISTEN started"
        )
        // the subscriber is caught up (its first poll ran); now wake it by NOTIFY from the other pool
        yield* Effect.sleep("100 millis")
        yield* writer.append(StreamId.unsafeMake(category, "1"), [ev(1)], ExpectedVersion.NoStream)
        yield* eventually(Effect.map(Ref.get(received), (n) => n === 1), "woken by NOTIFY")
        const [old] = yield* listeners
        yield* sql`select pg_terminate_backend(${old!.pid})`
        yield* writer.append(StreamId.unsafeMake(category, "2"), [ev(2)], ExpectedVersion.NoStream)
        yield* eventually(
          Effect.map(listeners, (rows) => rows.length === 1 && rows[0]!.pid !== old!.pid),
          "a new LISTEN connection"
        )
        yield* eventually(Effect.map(Ref.get(received), (n) => n === 2), "the event appended meanwhile delivered")
        yield* writer.append(StreamId.unsafeMake(category, "3"), [ev(3)], ExpectedVersion.NoStream)
        yield* eventually(Effect.map(Ref.get(received), (n) => n === 3), "woken by NOTIFY again")
      }))

    it.scoped("lock is exclusive across two separate pools; plain reads never wait", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const a = yield* storeOn("lock-a")
        const b = yield* storeOn("lock-b")
        const id = stream("lock")
        yield* a.append(id, [ev(1)], ExpectedVersion.NoStream)
        const scopeA = yield* Scope.make()
        yield* a.lock(id).pipe(Scope.extend(scopeA))
        const acquired = yield* Deferred.make<void>()
        const waiter = yield* Effect.forkScoped(
          Effect.scoped(
            Effect.zipRight(b.lock(id), Effect.zipRight(Deferred.succeed(acquired, undefined), Effect.never))
          )
        )
        yield* eventually(
          Effect.map(
            sql<{ n: string }>`select count(*) as n from pg_locks l join pg_stat_activity s using (pid)
              where l.locktype = 'advisory' and not l.granted and s.application_name = 'lock-b'`,
            (rows) => Number(rows[0]!.n) === 1
          ),
          "b waits for the lock"
        )
        assert.isFalse(yield* Deferred.isDone(acquired))
        // reads and appends do not wait for the lock
        assert.strictEqual((yield* collect(b.read(id))).length, 1)
        assert.strictEqual(yield* b.streamVersion(id), 1)
        yield* Scope.close(scopeA, Exit.void)
        yield* Deferred.await(acquired)
        yield* Fiber.interrupt(waiter)
        // the interrupted holder let go: a can lock again
        yield* Effect.scoped(a.lock(id))
        const held = yield* sqlCount(
          "select count(*) as n from pg_locks where locktype = 'advisory' and granted and database = " +
            "(select oid from pg_database where datname = current_database()) and objid <> 0 and pid <> pg_backend_pid()"
        )
        assert.strictEqual(held, 0)
      }))

    it.scoped("an interrupted lock waiter leaves no lock behind", () =>
      Effect.gen(function*() {
        const a = yield* storeOn("lock-c")
        const b = yield* storeOn("lock-d")
        const id = stream("lockint")
        const scopeA = yield* Scope.make()
        yield* a.lock(id).pipe(Scope.extend(scopeA))
        const waiter = yield* Effect.forkScoped(Effect.scoped(Effect.zipRight(b.lock(id), Effect.never)))
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(waiter)
        yield* Scope.close(scopeA, Exit.void)
        // neither a nor b hold it now: a third party gets it at once
        const c = yield* storeOn("lock-e")
        const got = yield* Effect.scoped(c.lock(id)).pipe(Effect.timeout("5 seconds"), Effect.option)
        assert(Option.isSome(got))
      }))

    it.scoped("idempotent append by event id: a re-sent batch returns the original result and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const id = stream("idem")
        const other = stream("idem")
        const batch: ReadonlyArray<EventStore.EventData> = [
          { id: globalThis.crypto.randomUUID(), type: "Deposited", data: { amount: 1 } },
          { id: globalThis.crypto.randomUUID(), type: "Deposited", data: { amount: 2 } }
        ]
        const first = yield* store.append(id, batch, ExpectedVersion.NoStream)
        const again = yield* store.append(id, batch, ExpectedVersion.NoStream)
        assert.deepStrictEqual(again, first)
        const anyAgain = yield* store.append(id, batch, ExpectedVersion.Any)
        assert.deepStrictEqual(anyAgain, first)
        assert.strictEqual((yield* collect(store.read(id))).length, 2)
        const changed = yield* Effect.flip(
          store.append(id, [batch[0]!, { ...batch[1]!, data: { amount: 3 } }], ExpectedVersion.Any)
        )
        assert(changed instanceof EventStore.EventIdConflict)
        const elsewhere = yield* Effect.flip(store.append(other, batch, ExpectedVersion.NoStream))
        assert(elsewhere instanceof EventStore.EventIdConflict)
        const mixed = yield* Effect.flip(store.append(id, [batch[0]!, ev(9)], ExpectedVersion.Any))
        assert(mixed instanceof EventStore.EventIdConflict)
        assert.strictEqual(yield* store.streamVersion(id), 2)
        assert.strictEqual(yield* store.streamVersion(other), 0)
      }))

    it.scoped("any JSON value is stored as sent (one-request and multi-request calls): null, scalars, arrays", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const values: ReadonlyArray<unknown> = [
          null,
          "a \"quoted\" \\ string, {not: json}",
          0,
          -1.5e300,
          true,
          [],
          [null, { "k\"ey": "v\u2028" }],
          {},
          { nested: { deep: [1, "two", null] } }
        ]
        const events = values.map((data, i): EventStore.EventData => ({
          type: i % 2 === 0 ? "Typé \"quoted\"" : "Plain",
          data,
          metadata: { i, note: "métadonnée \"\\" }
        }))
        const one = stream("json")
        const a = stream("json")
        const b = stream("json")
        yield* store.append(one, events, ExpectedVersion.NoStream)
        yield* store.appendMany([
          { streamId: a, events, expected: ExpectedVersion.NoStream },
          { streamId: b, events: events.slice(0, 2), expected: ExpectedVersion.NoStream }
        ])
        for (const id of [one, a]) {
          const read = yield* collect(store.read(id))
          assert.deepStrictEqual(read.map((e) => e.data), values)
          assert.deepStrictEqual(read.map((e) => e.type), events.map((e) => e.type))
          assert.deepStrictEqual(read.map((e) => e.metadata), events.map((e) => e.metadata))
          assert.deepStrictEqual(read.map((e) => e.version), values.map((_, i) => i + 1))
        }
      }))

    it.scoped(
      "concurrent appendMany over the same streams in opposite orders never deadlock",
      () =>
        Effect.gen(function*() {
          const store = yield* PostgresEventStore.make()
          const events = Array.from({ length: 20 }, (_, i) => ev(i))
          const many = (ids: ReadonlyArray<StreamId.StreamId>) =>
            Effect.either(
              store.appendMany(ids.map((streamId) => ({ streamId, events, expected: ExpectedVersion.Any })))
            )
          const failures: Array<string> = []
          for (let round = 0; round < 30; round++) {
            const a = stream("dl")
            const b = stream("dl")
            const c = stream("dl")
            const results = yield* Effect.all([many([a, b, c]), many([c, b, a]), many([b, c, a])], {
              concurrency: "unbounded"
            })
            for (const result of results) {
              if (Either.isLeft(result)) failures.push(`${result.left._tag}: ${result.left.message}`)
            }
            if (failures.length > 0) break
            for (const id of [a, b, c]) assert.strictEqual(yield* store.streamVersion(id), 60)
          }
          assert.deepStrictEqual(failures, [])
        }),
      { timeout: 120_000 }
    )

    it.scoped("appendMany returns its results in the caller's order, whatever order it writes in", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const z = StreamId.unsafeMake("zz", `order${++counter}`)
        const a = StreamId.unsafeMake("aa", `order${++counter}`)
        const results = yield* store.appendMany([
          { streamId: z, events: [ev(1), ev(2), ev(3)], expected: ExpectedVersion.NoStream },
          { streamId: a, events: [ev(4)], expected: ExpectedVersion.NoStream },
          { streamId: z, events: [ev(5)], expected: ExpectedVersion.Exact(3) }
        ])
        const zs = yield* collect(store.read(z))
        const as = yield* collect(store.read(a))
        assert.deepStrictEqual(results, [
          { version: 3, position: zs[2]!.position },
          { version: 1, position: as[0]!.position },
          { version: 4, position: zs[3]!.position }
        ])
        const conflict = yield* Effect.flip(store.appendMany([
          { streamId: z, events: [ev(6)], expected: ExpectedVersion.Exact(4) },
          { streamId: a, events: [ev(7)], expected: ExpectedVersion.Exact(9) }
        ]))
        assert(conflict instanceof EventStore.ConcurrencyConflict)
        assert.strictEqual(conflict.streamId, a)
        assert.strictEqual(conflict.actual, 1)
      }))

    it.scoped("inline projections run in the append's transaction; a failure stores nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table if not exists balances (stream_id text primary key, amount int not null)`
        const balances = Projection.make({
          name: "balances",
          handle: (event) =>
            Effect.gen(function*() {
              const amount = (event.data as { amount: number }).amount
              yield* sql`insert into balances values (${event.streamId}, ${amount})
                on conflict (stream_id) do update set amount = balances.amount + excluded.amount`
              if (amount < 0) return yield* Effect.fail("negative amount")
            }),
          onDelete: (streamId) => Effect.asVoid(sql`delete from balances where stream_id = ${streamId}`)
        })
        const store = yield* PostgresEventStore.make({ inline: [balances] })
        const id = stream("inline")
        yield* store.append(id, [ev(5), ev(7)], ExpectedVersion.NoStream)
        const balance = sql<{ amount: number }>`select amount from balances where stream_id = ${id}`
        assert.deepStrictEqual(yield* balance, [{ amount: 12 }])
        const failed = yield* Effect.flip(store.append(id, [ev(1), ev(-1)], ExpectedVersion.Exact(2)))
        assert(failed instanceof EventStore.EventStoreError)
        assert.strictEqual(failed.cause, "negative amount")
        assert.deepStrictEqual(yield* balance, [{ amount: 12 }])
        assert.strictEqual(yield* store.streamVersion(id), 2)
        // appendMany: one failing event rolls back every stream
        const other = stream("inline")
        const many = yield* Effect.flip(store.appendMany([
          { streamId: other, events: [ev(3)], expected: ExpectedVersion.NoStream },
          { streamId: id, events: [ev(-5)], expected: ExpectedVersion.Exact(2) }
        ]))
        assert(many instanceof EventStore.EventStoreError)
        assert.strictEqual(yield* store.streamVersion(other), 0)
        // inside the caller's transaction: the append (and its projection) join it and roll back with it
        const outer = yield* Effect.flip(sql.withTransaction(Effect.zipRight(
          store.append(other, [ev(4)], ExpectedVersion.NoStream),
          Effect.fail("caller gives up")
        )))
        assert.strictEqual(outer, "caller gives up")
        assert.strictEqual(yield* store.streamVersion(other), 0)
        assert.strictEqual((yield* sql`select 1 from balances where stream_id = ${other}`).length, 0)
        // delete runs onDelete in the same transaction
        yield* store.delete(id)
        assert.deepStrictEqual(yield* balance, [])
        assert.strictEqual(yield* store.streamVersion(id), 0)
      }))

    it.scoped("an append inside the caller's transaction that conflicts leaves that transaction usable", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresEventStore.make()
        const id = stream("joined")
        yield* store.append(id, [ev(1)], ExpectedVersion.NoStream)
        const result = yield* sql.withTransaction(Effect.gen(function*() {
          const conflict = yield* Effect.flip(store.append(id, [ev(2)], ExpectedVersion.NoStream))
          assert(conflict instanceof EventStore.ConcurrencyConflict)
          assert.strictEqual(conflict.actual, 1)
          return yield* store.append(id, [ev(2)], ExpectedVersion.Exact(1))
        }))
        assert.strictEqual(result.version, 2)
        assert.strictEqual(yield* store.streamVersion(id), 2)
      }))

    it.scoped("appends refuse other isolation levels with a typed error", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresEventStore.make()
        const id = stream("iso")
        const error = yield* Effect.flip(sql.withTransaction(Effect.zipRight(
          sql`set transaction isolation level serializable`,
          store.append(id, [ev(1)], ExpectedVersion.NoStream)
        )))
        assert.strictEqual(error._tag, "EventStoreError")
        assert.strictEqual(yield* store.streamVersion(id), 0)
      }))

    it.scoped("NoStream / Exact(0) on an existing stream: a conflict with the actual version, also inside a transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* PostgresEventStore.make()
        const id = stream("exists")
        yield* store.append(id, [ev(1), ev(2)], ExpectedVersion.NoStream)
        for (const expected of [ExpectedVersion.NoStream, ExpectedVersion.Exact(0)]) {
          const error = yield* Effect.flip(store.append(id, [ev(3)], expected))
          assert.strictEqual(error._tag, "ConcurrencyConflict")
          if (error._tag === "ConcurrencyConflict") assert.strictEqual(error.actual, 2)
        }
        // the failed insert is rolled back to a savepoint: the caller's transaction goes on and commits
        const other = stream("exists-other")
        const inner = yield* sql.withTransaction(Effect.gen(function*() {
          const conflict = yield* Effect.flip(store.append(id, [ev(3)], ExpectedVersion.NoStream))
          yield* store.append(other, [ev(1)], ExpectedVersion.NoStream)
          return conflict._tag
        }))
        assert.strictEqual(inner, "ConcurrencyConflict")
        assert.strictEqual(yield* store.streamVersion(id), 2)
        assert.strictEqual(yield* store.streamVersion(other), 1)
        assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.read(id))), 2)
      }))

    it.scoped("migrations run concurrently from several pools are safe", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const results = yield* Effect.all(
          Array.from({ length: 5 }, (_, i) => Effect.either(storeOn(`boot-${i}`, { schema: "boot_race" }))),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(results.filter(Either.isRight).length, 5)
        const rows = yield* sql<{ migration_id: number }>`select migration_id from boot_race.migrations
          order by migration_id`
        // every migration of the loader recorded (and so run) exactly once (its ids need not be contiguous: numbers
        // are reserved per branch)
        const loaded = yield* migrations("boot_race")
        assert.deepStrictEqual(rows.map((r) => r.migration_id), loaded.map(([id]) => id))
        assert.isTrue(rows.length >= 1)
        const store = Either.getOrThrow(results[0]!)
        const id = stream("boot")
        yield* store.append(id, [ev(1)], ExpectedVersion.NoStream)
        assert.strictEqual(yield* store.streamVersion(id), 1)
      }))

    it.scoped("layerConfig reads its options from Config", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const context = yield* Layer.build(
          PostgresEventStore.layerConfig({ schema: Config.string("EVENT_STORE_SCHEMA"), pageSize: Config.succeed(2) })
            .pipe(Layer.provideMerge(Database.pool({ applicationName: "config" })))
        ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["EVENT_STORE_SCHEMA", "from_config"]]))))
        const store = Context.get(context, EventStore.EventStore)
        const id = stream("config")
        yield* store.append(id, [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
        assert.strictEqual((yield* collect(store.read(id))).length, 3)
        const rows = yield* sql<{ n: string }>`select count(*) as n from from_config.events`
        assert.strictEqual(Number(rows[0]!.n), 3)
        const missing = yield* Effect.flip(
          Layer.build(
            PostgresEventStore.layerConfig({ schema: Config.string("EVENT_STORE_SCHEMA") }).pipe(
              Layer.provideMerge(Database.pool({ applicationName: "config" }))
            )
          ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map())))
        )
        assert.strictEqual(missing._tag, "ConfigError")
      }))

    it.effect("a hostile schema name is refused with a typed error, creating nothing", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (const schema of ["x\"; drop table y; --", "Upper", "", "a".repeat(64), "1abc"]) {
          const error = yield* Effect.flip(Effect.scoped(PostgresEventStore.make({ schema })))
          assert.strictEqual(error._tag, "EventStoreError")
          assert.strictEqual(error.method, "make")
        }
        const schemas = yield* sql`select nspname from pg_namespace where nspname like 'x%' or nspname = 'Upper'`
        assert.strictEqual(schemas.length, 0)
      }))

    it.scoped("hostile filter values and stream ids are bound parameters", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const id = StreamId.unsafeMake("acc", `'; drop table event_store.events; --${++counter}`)
        yield* store.append(id, [{ type: "x'); --", data: { amount: 1 } }], ExpectedVersion.NoStream)
        const found = yield* collect(store.readAll({ filter: { streamIds: [id], types: ["x'); --"] } }))
        assert.strictEqual(found.length, 1)
        assert.strictEqual(found[0]!.streamId, id)
      }))

    it.scoped("invalid input is refused with a typed error and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* PostgresEventStore.make()
        const id = stream("bad")
        const notUuid = yield* Effect.flip(
          store.append(id, [{ id: "not-a-uuid", type: "Deposited", data: {} }], ExpectedVersion.Any)
        )
        assert.strictEqual(notUuid._tag, "InvalidArgument")
        const noType = yield* Effect.flip(store.append(id, [{ type: "", data: {} }], ExpectedVersion.Any))
        assert.strictEqual(noType._tag, "InvalidArgument")
        const badExact = yield* Effect.flip(store.append(id, [ev(1)], ExpectedVersion.Exact(-3)))
        assert.strictEqual(badExact._tag, "InvalidArgument")
        assert.strictEqual(yield* store.streamVersion(id), 0)
      }))
  }
)
