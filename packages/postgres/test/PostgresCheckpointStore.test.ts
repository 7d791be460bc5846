import { CheckpointStore, EventStore } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Deferred, Effect, Either, Exit, Fiber, Layer, Option, Schedule, Scope } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("checkpoints")

/** A second, separate pool on the same database (another "process"). */
const pool = (applicationName: string) => Database.pool({ applicationName, maxConnections: 4 })

const storeIn = (applicationName: string, schema?: string) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(pool(applicationName))
    return yield* PostgresCheckpointStore.make(schema === undefined ? undefined : { schema }).pipe(
      Effect.provide(context)
    )
  })

const terminate = (applicationName: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${applicationName}`
  )

layer(Database.layer, { excludeTestServices: true, timeout: "60 seconds" })("PostgresCheckpointStore", (it) => {
  it.effect("loads, saves and resets checkpoints by name", () =>
    Effect.gen(function*() {
      const store = yield* PostgresCheckpointStore.make()
      assert.deepStrictEqual(yield* store.load("a"), Option.none())
      yield* store.save("a", 5)
      yield* store.save("b", 7)
      assert.deepStrictEqual(yield* store.load("a"), Option.some(5))
      yield* store.reset("a", 2)
      assert.deepStrictEqual(yield* store.load("a"), Option.some(2))
      yield* store.reset("a")
      assert.deepStrictEqual(yield* store.load("a"), Option.none())
      assert.deepStrictEqual(yield* store.load("b"), Option.some(7))
    }))

  it.scoped("refuses NaN, infinities, fractions and negative positions with InvalidArgument, writing nothing", () =>
    Effect.gen(function*() {
      const store = yield* PostgresCheckpointStore.make()
      yield* store.save("inv", 3)
      const lease = yield* store.acquire("inv")
      for (const bad of [-5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.5, 2 ** 53]) {
        for (
          const [method, attempt] of [
            ["CheckpointStore.save", store.save("inv", bad)],
            ["CheckpointStore.reset", store.reset("inv", bad)],
            ["CheckpointStore.save", store.save("inv-fresh", bad)],
            ["CheckpointStore.Lease.save", lease.save(bad)],
            ["CheckpointStore.Lease.reset", lease.reset(bad)]
          ] as const
        ) {
          const error = yield* Effect.flip(attempt)
          assert(error instanceof EventStore.InvalidArgument, `${method}(${bad})`)
          assert.strictEqual(error.method, method)
          assert.strictEqual(error.argument, "position")
        }
      }
      assert.deepStrictEqual(yield* store.load("inv"), Option.some(3))
      assert.deepStrictEqual(yield* store.load("inv-fresh"), Option.none())
      yield* lease.save(4)
      assert.deepStrictEqual(yield* store.load("inv"), Option.some(4))
    }))

  it.effect("an infrastructure failure is a CheckpointStoreError naming the method, never the connection", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* PostgresCheckpointStore.make({ schema: "cp_broken" })
      yield* sql`drop table cp_broken.checkpoints`
      for (
        const [method, attempt] of [
          ["load", Effect.asVoid(store.load("a"))],
          ["save", store.save("a", 1)],
          ["reset", store.reset("a")]
        ] as const
      ) {
        const error = yield* Effect.flip(attempt)
        assert(error instanceof CheckpointStore.CheckpointStoreError, method)
        assert.strictEqual(error.method, method)
        assert.match(error.message, new RegExp(`^CheckpointStore\\.${method} failed: `))
        assert.notInclude(error.message, "EventStore")
        assert.notInclude(error.message, "postgres://")
      }
    }))

  it.effect("refuses an invalid schema name with a typed error, creating nothing", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const error = yield* Effect.flip(PostgresCheckpointStore.make({ schema: "x\"; drop table y; --" }))
      assert.strictEqual(error._tag, "CheckpointStoreError")
      assert.match(error.message, /^CheckpointStore\.make failed: invalid schema name/)
      const schemas = yield* sql`select nspname from pg_namespace where nspname like 'x%'`
      assert.strictEqual(schemas.length, 0)
    }))

  it.scoped("creates its table safely when several processes start at once", () =>
    Effect.gen(function*() {
      const results = yield* Effect.all(
        Array.from({ length: 6 }, (_, i) => Effect.either(storeIn(`boot-${i}`, "boot_race"))),
        { concurrency: "unbounded" }
      )
      assert.strictEqual(results.filter(Either.isRight).length, 6)
    }))

  it.scoped("a lease is exclusive across pools; the waiter gets it when the holder's scope closes", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const a = yield* storeIn("lease-a")
      const b = yield* storeIn("lease-b")
      const scopeA = yield* Scope.make()
      const leaseA = yield* a.acquire("x").pipe(Scope.extend(scopeA))
      const acquired = yield* Deferred.make<CheckpointStore.Lease>()
      const waiter = yield* Effect.forkScoped(
        Effect.flatMap(b.acquire("x"), (lease) => Effect.zipRight(Deferred.succeed(acquired, lease), Effect.never))
      )
      // b's backend is blocked on the advisory lock
      yield* Effect.repeat(
        sql<{ n: string }>`select count(*) as n from pg_locks l join pg_stat_activity a using (pid)
          where l.locktype = 'advisory' and not l.granted and a.application_name = 'lease-b'`,
        { until: (rows) => Number(rows[0]!.n) === 1 }
      )
      yield* leaseA.save(3)
      yield* leaseA.save(4)
      assert.isFalse(yield* Deferred.isDone(acquired))
      yield* Scope.close(scopeA, Exit.void)
      const leaseB = yield* Deferred.await(acquired)
      assert.deepStrictEqual(leaseB.position, Option.some(4))
      // the old lease is fenced off
      assert.strictEqual((yield* Effect.flip(leaseA.save(5)))._tag, "LeaseLost")
      yield* leaseB.save(5)
      assert.deepStrictEqual(yield* a.load("x"), Option.some(5))
      yield* Fiber.interrupt(waiter)
    }))

  it.scoped("a waiter takes over when the holder's connection is terminated; the old holder cannot save", () =>
    Effect.gen(function*() {
      const a = yield* storeIn("dead-a")
      const b = yield* storeIn("dead-b")
      const leaseA = yield* a.acquire("y")
      yield* leaseA.save(1)
      const waiter = yield* Effect.fork(b.acquire("y"))
      yield* terminate("dead-a")
      const leaseB = yield* Fiber.join(waiter)
      assert.deepStrictEqual(leaseB.position, Option.some(1))
      // A's pool may first hand out one of its dead connections (a store error); once it reaches the database the
      // save is fenced off
      const lost = yield* Effect.flip(
        leaseA.transaction(leaseA.save(2)).pipe(
          Effect.retry({ times: 3, while: (e) => e._tag === "CheckpointStoreError" })
        )
      )
      assert.strictEqual(lost._tag, "LeaseLost")
      yield* leaseB.save(2)
      assert.deepStrictEqual(yield* b.load("y"), Option.some(2))
    }))

  it.scoped("tryAcquire answers None at once while another session holds the name, the lease once it is free", () =>
    Effect.gen(function*() {
      const a = yield* storeIn("try-a")
      const b = yield* storeIn("try-b")
      // a refusal holds nothing (no connection of b's pool of 4 stays reserved), a lease lives in a scope of its own
      const tryB = (name: string) => Effect.flatMap(Scope.make(), (scope) => Scope.extend(b.tryAcquire!(name), scope))
      const held = yield* Scope.make()
      const leaseA = yield* Scope.extend(a.acquire("t"), held)
      yield* leaseA.save(3)
      yield* a.acquire("held-by-a")
      for (let i = 0; i < 8; i++) assert.isTrue(Option.isNone(yield* tryB("held-by-a")))
      // does not wait: the holder keeps the name for as long as it lives
      const refused = yield* tryB("t").pipe(Effect.timeout("5 seconds"))
      assert.isTrue(Option.isNone(refused))
      // another name is free
      assert.isTrue(Option.isSome(yield* tryB("u")))
      yield* Scope.close(held, Exit.void)
      const taken = yield* tryB("t")
      assert.isTrue(Option.isSome(taken) && Option.getOrNull(taken.value.position) === 3)
      // the holder that died (its connection terminated) loses the name too
      const c = yield* storeIn("try-c")
      yield* c.acquire("v")
      assert.isTrue(Option.isNone(yield* tryB("v")))
      yield* terminate("try-c")
      const after = yield* tryB("v").pipe(
        Effect.flatMap((lease) => Option.isSome(lease) ? Effect.succeed(lease.value) : Effect.fail("held" as const)),
        Effect.retry(Schedule.spaced("50 millis")),
        Effect.timeout("10 seconds")
      )
      assert.strictEqual(after.name, "v")
    }))

  it.scoped("writes in lease.transaction commit or roll back together with the checkpoint", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const store = yield* PostgresCheckpointStore.make()
      yield* sql`create table tx_probe (n int)`
      const lease = yield* store.acquire("tx")
      yield* lease.transaction(Effect.zipRight(sql`insert into tx_probe values (1)`, lease.save(1)))
      const failed = yield* Effect.flip(
        lease.transaction(
          sql`insert into tx_probe values (2)`.pipe(
            Effect.zipRight(lease.save(2)),
            Effect.zipRight(Effect.fail("boom"))
          )
        )
      )
      assert.strictEqual(failed, "boom")
      assert.deepStrictEqual(yield* store.load("tx"), Option.some(1))
      const rows = yield* sql<{ n: number }>`select n from tx_probe order by n`
      assert.deepStrictEqual(rows.map((r) => r.n), [1])
      // the lease still works after the rollback: its expected position did not move
      yield* lease.transaction(Effect.zipRight(sql`insert into tx_probe values (3)`, lease.save(3)))
      assert.deepStrictEqual(yield* store.load("tx"), Option.some(3))
      // a reset from outside fences the lease
      yield* store.reset("tx")
      assert.strictEqual((yield* Effect.flip(lease.save(4)))._tag, "LeaseLost")
    }))
})
