/**
 * Fault injection: the store talks to PostgreSQL through a loopback TCP proxy (test/faults/proxy.ts) that can cut
 * every connection, stall traffic and add latency. Every test is bounded in time; the proxy closes with its Scope.
 */
import {
  CheckpointStore,
  EventStore,
  Projection,
  SnapshotStore,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresSnapshotStore } from "@effect-eventsourcing/postgres"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import {
  Cause,
  Context,
  DateTime,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  Queue,
  Redacted,
  Ref,
  Schedule,
  Scope,
  Stream
} from "effect"
import { startEmbedded } from "./embeddedServer.js"
import * as FaultProxy from "./faults/proxy.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("faults")

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

/** The store (and checkpoint store) on a pool that connects through `proxy`. */
const throughProxy = (proxy: FaultProxy.FaultProxy, options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrapEffect(
    Effect.map(
      Database.url,
      (url) =>
        Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresSnapshotStore.layer()).pipe(
          Layer.provideMerge(
            PgClient.layer({
              url: Redacted.make(proxy.rewrite(url)),
              maxConnections: options.maxConnections ?? 4,
              connectTimeout: Duration.seconds(2)
            })
          )
        )
    )
  ).pipe(Layer.orDie)

/** A store straight on the database (no proxy): the writer that is never cut. */
const direct = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
  Layer.provideMerge(Database.layer),
  Layer.orDie
)

const isDefectFree = <A, E>(exit: Exit.Exit<A, E>): boolean =>
  Exit.isSuccess(exit) || (Cause.isFailType(exit.cause) || Cause.failures(exit.cause).length > 0) &&
    Cause.defects(exit.cause).length === 0

describe("fault proxy", () => {
  it.live("cuts every open connection and accepts new ones after", () =>
    Effect.gen(function*() {
      const url = yield* Database.url
      const proxy = yield* FaultProxy.make(url)
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.append(s("proxy-1"), [ev(1)], { _tag: "Any" })
        assert.isAbove(yield* proxy.open, 0)
        const cut = yield* proxy.cut
        assert.isAbove(cut, 0)
        assert.strictEqual(yield* proxy.open, 0)
        // the pool notices the dead clients and connects again
        const version = yield* store.streamVersion(s("proxy-1")).pipe(
          Effect.retry({ times: 5 }),
          Effect.timeout("10 seconds")
        )
        assert.strictEqual(version, 1)
      }).pipe(Effect.provide(throughProxy(proxy)))
    }).pipe(Effect.scoped))

  it.live("stalls traffic for the given time, then lets it through", () =>
    Effect.gen(function*() {
      const url = yield* Database.url
      const proxy = yield* FaultProxy.make(url)
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.streamVersion(s("stall-1"))
        yield* proxy.stall(600)
        const started = Date.now()
        yield* store.streamVersion(s("stall-1"))
        assert.isAtLeast(Date.now() - started, 500)
      }).pipe(Effect.provide(throughProxy(proxy)))
    }).pipe(Effect.scoped))
})

describe("no store method lets a lost connection escape as a defect", () => {
  it.live("readAll with a filter (runs in a transaction) fails with a typed error when the connection is cut", () =>
    Effect.gen(function*() {
      const url = yield* Database.url
      const proxy = yield* FaultProxy.make(url)
      yield* Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* store.append(s("filtered-1"), [ev(1), ev(2)], { _tag: "Any" })
        // every round trip takes 2 × 400 ms: BEGIN is answered after ~800 ms, the page query is in flight until
        // ~1,600 ms; the cut comes in between
        yield* proxy.latency(400)
        const fiber = yield* Effect.fork(
          Stream.runCollect(store.readAll({ filter: { types: ["Deposited"] } })).pipe(Effect.timeout("15 seconds"))
        )
        yield* Effect.sleep("1200 millis")
        yield* proxy.cut
        yield* proxy.latency(0)
        const exit = yield* Fiber.await(fiber)
        assert.isTrue(Exit.isFailure(exit), "the read cannot succeed on a cut connection")
        assert.isTrue(
          isDefectFree(exit),
          `expected a typed failure, got ${Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""}`
        )
      }).pipe(Effect.provide(throughProxy(proxy)))
    }).pipe(Effect.scoped))

  it.live(
    "every method of the three stores fails with a typed error (or succeeds), never a defect or a hang, when cut in flight",
    () =>
      Effect.gen(function*() {
        const url = yield* Database.url
        const proxy = yield* FaultProxy.make(url)
        yield* Effect.gen(function*() {
          const store = yield* EventStore.EventStore
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const snapshots = yield* SnapshotStore.SnapshotStore
          const sql = yield* SqlClient.SqlClient
          yield* sql`create table if not exists faults_handled (name text, position bigint)`
          yield* store.append(s("every-1"), [ev(1), ev(2)], { _tag: "Any" })
          const snapshot: SnapshotStore.Snapshot = {
            streamId: s("every-1"),
            version: 2,
            fingerprint: "f",
            state: { total: 3 },
            takenAt: DateTime.unsafeMake(1_700_000_000_000)
          }
          yield* snapshots.save(snapshot)
          // a pool of live connections before each case (the previous cut killed them all)
          const warm = Effect.all(
            Array.from({ length: 4 }, () =>
              store.streamVersion(s("every-1")).pipe(
                Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds")))
              )),
            { concurrency: 4, discard: true }
          )
          const lease = (name: string) =>
            checkpoints.acquire(name).pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("10 seconds"))))
          // each round trip takes 2 × 150 ms: a cut at 225 + k × 300 ms hits the (k+1)-th statement in flight
          const cutAt = (k: number) => 225 + k * 300
          const cases: ReadonlyArray<
            readonly [string, Effect.Effect<unknown, unknown, Scope.Scope>, ReadonlyArray<number>]
          > = [
            ["append", store.append(s("every-2"), [ev(1)], { _tag: "Any" }), [0]],
            [
              "appendMany",
              store.appendMany([
                { streamId: s("every-3"), events: [ev(1)], expected: { _tag: "Any" } },
                { streamId: s("every-4"), events: [ev(1)], expected: { _tag: "Any" } }
              ]),
              [0]
            ],
            ["read", Stream.runCollect(store.read(s("every-1"))), [0]],
            ["streamVersion", store.streamVersion(s("every-1")), [0]],
            ["readAll", Stream.runCollect(store.readAll()), [0, 1]],
            // BEGIN, set local, the page, COMMIT
            ["readAll with a filter", Stream.runCollect(store.readAll({ filter: { types: ["Deposited"] } })), [
              0,
              1,
              2,
              3
            ]],
            ["subscribe", Stream.runCollect(Stream.take(store.subscribe(), 2)), [0]],
            [
              "subscribe with a filter",
              Stream.runCollect(Stream.take(store.subscribe({ filter: { categories: ["acc"] } }), 2)),
              [0, 1, 2, 3]
            ],
            // BEGIN, delete, COMMIT
            ["delete", store.delete(s("every-4")), [0, 1, 2]],
            ["lock", store.lock(s("every-1")), [0]],
            ["checkpoint save", checkpoints.save("every", 1), [0]],
            ["checkpoint load", checkpoints.load("every"), [0]],
            // reserve (+ connect), lock, upsert
            ["checkpoint acquire", checkpoints.acquire("every"), [0, 1, 2]],
            [
              "lease.save",
              Effect.flatMap(lease("every-lease"), (l) => l.save(2)),
              [0]
            ],
            [
              // BEGIN, the handler's insert, the fenced update, COMMIT
              "lease.transaction",
              Effect.flatMap(
                lease("every-tx"),
                (l) => l.transaction(Effect.zipRight(sql`insert into faults_handled values ('every-tx', 1)`, l.save(1)))
              ),
              [0, 1, 2, 3]
            ],
            ["snapshot save", snapshots.save({ ...snapshot, version: 3 }), [0]],
            ["snapshot load", snapshots.load(s("every-1")), [0]],
            ["snapshot delete", snapshots.delete(s("every-1")), [0]]
          ]
          for (const [label, run, steps] of cases) {
            for (const step of steps) {
              yield* warm
              // the lease cases acquire their lease before the latency (only the measured call is slow)
              const fiber = yield* Effect.gen(function*() {
                const scope = yield* Effect.scope
                return yield* Effect.forkIn(
                  Effect.zipRight(
                    proxy.latency(150),
                    run.pipe(
                      Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => "hang" as const }),
                      Effect.scoped
                    )
                  ),
                  scope
                )
              })
              yield* Effect.sleep(cutAt(step))
              const cut = yield* proxy.cut
              yield* proxy.latency(0)
              const exit = yield* Fiber.await(fiber)
              const what = `${label} (cut at ${cutAt(step)} ms)`
              assert.isAbove(cut, 0, `${what}: nothing to cut`)
              assert.isTrue(
                isDefectFree(exit) &&
                  !(Exit.isFailure(exit) && Option.contains(Cause.failureOption(exit.cause), "hang")),
                `${what}: expected success or a typed failure, got ${
                  Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
                }`
              )
            }
          }
        }).pipe(Effect.provide(throughProxy(proxy)))
      }).pipe(Effect.scoped),
    180_000
  )

  it.live(
    "a filtered subscription survives a cut connection and delivers what is written after",
    () =>
      Effect.gen(function*() {
        const url = yield* Database.url
        const proxy = yield* FaultProxy.make(url)
        const seen = yield* Ref.make<ReadonlyArray<number>>([])
        const projection = Projection.make({
          name: "faults-filtered",
          handle: (event) => Ref.update(seen, (xs) => [...xs, event.position])
        })
        const writer = yield* Layer.build(direct)
        const append = (id: string) =>
          Effect.flatMap(
            EventStore.EventStore,
            (store) => store.append(StreamId.unsafeMake("faultsub", id), [ev(1)], { _tag: "Any" })
          ).pipe(
            Effect.provide(writer)
          )
        yield* Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const subscription = yield* Subscription.forkScoped(projection, {
            filter: { categories: ["faultsub"] },
            checkpoints
          })
          const first = yield* append("sub-1")
          yield* subscription.awaitPosition(first.position).pipe(Effect.timeout("10 seconds"))
          // cut while the subscription's page queries are in flight: every round trip is slow, the subscription
          // keeps polling (pollInterval), and every connection is cut several times at different moments
          yield* proxy.latency(150)
          for (let i = 0; i < 6; i++) {
            yield* Effect.sleep(`${170 + i * 97} millis`)
            yield* proxy.cut
          }
          yield* proxy.latency(0)
          const last = yield* append("sub-2")
          yield* subscription.awaitPosition(last.position).pipe(Effect.timeout("20 seconds"))
          const positions = yield* Ref.get(seen)
          assert.deepStrictEqual(positions, [first.position, last.position])
        }).pipe(Effect.provide(throughProxy(proxy)))
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("subscriptions ride out database outages", () => {
  it.live(
    "a 60 s outage with writes during and after: every subscription resumes on its own and delivers everything, once",
    () =>
      Effect.gen(function*() {
        const url = yield* Database.url
        const proxy = yield* FaultProxy.make(url)
        const writer = yield* Layer.build(direct)
        const append = (id: string) =>
          Effect.flatMap(
            EventStore.EventStore,
            (store) => store.append(StreamId.unsafeMake("outage", id), [ev(1), ev(2)], { _tag: "Any" })
          ).pipe(Effect.provide(writer))
        const recorder = (name: string) =>
          Effect.map(Ref.make<ReadonlyArray<number>>([]), (seen) => ({
            seen,
            projection: Projection.make({ name, handle: (event) => Ref.update(seen, (xs) => [...xs, event.position]) })
          }))
        const filtered = yield* recorder("outage-filtered")
        const everything = yield* recorder("outage-all")
        // exactly-once: the handler's row commits with the checkpoint (the lease's transaction)
        const exactlyOnce = Projection.make({
          name: "outage-exactly-once",
          handle: (event) =>
            Effect.flatMap(
              SqlClient.SqlClient,
              (sql) => sql`insert into outage_handled (position) values (${event.position})`
            )
        })
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`create table outage_handled (position bigint not null)`
          const subscriptions = [
            yield* Subscription.forkScoped(filtered.projection, { filter: { categories: ["outage"] } }),
            yield* Subscription.forkScoped(everything.projection),
            yield* Subscription.forkScoped(exactlyOnce, { filter: { categories: ["outage"] }, batchSize: 1 })
          ]
          const awaitAll = (position: number) =>
            Effect.forEach(subscriptions, (sub) => sub.awaitPosition(position), { discard: true })
          const first = yield* append("before")
          yield* awaitAll(first.position).pipe(Effect.timeout("15 seconds"))

          // the database becomes unreachable for the subscribers' process for 60 s: every connection cut, new ones
          // reset; the writer (another process) keeps writing
          yield* proxy.refuse(true)
          yield* proxy.cut
          const started = Date.now()
          for (let i = 0; Date.now() - started < 60_000; i++) {
            yield* Effect.sleep("5 seconds")
            yield* append(`during-${i}`)
            yield* proxy.cut
            const states = yield* Effect.forEach(subscriptions, (sub) => sub.status)
            assert.isFalse(states.some((status) => status.state === "stopped"), "no subscription stops")
          }
          yield* proxy.refuse(false)
          for (let i = 0; i < 3; i++) yield* append(`after-${i}`)
          const last = yield* append("last")
          yield* awaitAll(last.position).pipe(Effect.timeout("30 seconds"))

          const log = yield* Effect.flatMap(EventStore.EventStore, (store) => Stream.runCollect(store.readAll())).pipe(
            Effect.provide(writer)
          )
          const all = [...log].map((event) => event.position)
          const outage = [...log].filter((event) => event.streamId.startsWith("outage-")).map((e) => e.position)
          assert.deepStrictEqual(yield* Ref.get(everything.seen), all)
          assert.deepStrictEqual(yield* Ref.get(filtered.seen), outage)
          const handled = yield* sql<{ position: string }>`select position from outage_handled order by position`
          assert.deepStrictEqual(handled.map((row) => Number(row.position)), outage)
          for (const sub of subscriptions) {
            const status = yield* sub.status
            assert.strictEqual(status.state, "running", sub.name)
            assert.isAbove(status.retries, 0, sub.name)
            const counted = yield* Metric.value(
              Metric.tagged(Subscription.infrastructureRetries, "subscription", sub.name)
            )
            assert.strictEqual(counted.count, status.retries, sub.name)
          }
        }).pipe(Effect.provide(throughProxy(proxy, { maxConnections: 8 })))
      }).pipe(Effect.scoped),
    150_000
  )
})

describe("a restart of the server", () => {
  it.live(
    "LISTEN comes back after an immediate restart: a write is delivered within seconds, not at the next poll",
    () =>
      Effect.gen(function*() {
        const server = yield* Effect.acquireRelease(
          Effect.promise(() => startEmbedded()),
          (server) => Effect.promise(() => server.destroy())
        )
        const url = Redacted.make(server.url)
        // reader and writer are two stores on two pools (two "processes"): only LISTEN/NOTIFY connects them
        const storeOn = (applicationName: string, options: PostgresEventStore.Options = {}) =>
          Layer.build(
            PostgresEventStore.layer(options).pipe(
              Layer.provide(PgClient.layer({ url, applicationName, connectTimeout: Duration.seconds(2) })),
              Layer.orDie
            )
          )
        const reader = Context.get(
          // neither the poll nor the watchdog (which would notice a dead LISTEN after 30-60 s) can help here
          yield* storeOn("restart-reader", { pollInterval: "60 seconds", watchdogInterval: "30 seconds" }),
          EventStore.EventStore
        )
        const writer = Context.get(yield* storeOn("restart-writer"), EventStore.EventStore)
        const delivered = yield* Queue.unbounded<number>()
        yield* reader.subscribe().pipe(
          Stream.runForEach((event) => Queue.offer(delivered, event.position)),
          Effect.forkScoped
        )
        const append = (id: string) =>
          writer.append(s(id), [ev(1)], { _tag: "Any" }).pipe(
            Effect.retry(Schedule.spaced("100 millis").pipe(Schedule.upTo("20 seconds")))
          )
        // the reader's LISTEN is up (the subscriber forks it at start)
        const admin = yield* Layer.build(PgClient.layer({ url, maxConnections: 1 }).pipe(Layer.orDie))
        const listening = Effect.flatMap(
          SqlClient.SqlClient,
          (sql) =>
            sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
              where application_name = 'restart-reader' and query like 'LISTEN%'`
        ).pipe(Effect.provide(admin), Effect.map((rows) => rows[0]!.n === 1))
        yield* Effect.repeat(listening, { until: (up) => up, schedule: Schedule.spaced("50 millis") }).pipe(
          Effect.timeout("10 seconds")
        )
        const first = yield* append("restart-1")
        assert.strictEqual(yield* Queue.take(delivered).pipe(Effect.timeout("10 seconds")), first.position)

        yield* Effect.promise(() => server.stop())
        yield* Effect.promise(() => server.start())
        // the writer's own pool comes back; the reader polls only every 60 s: only LISTEN can deliver this soon
        const second = yield* append("restart-2")
        const took = yield* Queue.take(delivered).pipe(Effect.timed, Effect.timeout("15 seconds"))
        assert.strictEqual(took[1], second.position)
      }).pipe(Effect.scoped),
    60_000
  )
})
