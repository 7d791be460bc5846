/**
 * Fault injection: the store talks to PostgreSQL through a loopback TCP proxy (test/faults/proxy.ts) that can cut
 * every connection, stall traffic and add latency. Every test is bounded in time; the proxy closes with its Scope.
 */
import { CheckpointStore, EventStore, Projection, StreamId, Subscription } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, Layer, Redacted, Ref, Stream } from "effect"
import * as FaultProxy from "./faults/proxy.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("faults")

const s = (id: string) => StreamId.unsafeMake("acc", id)
const ev = (amount: number): EventStore.EventData => ({ type: "Deposited", data: { amount } })

/** The store (and checkpoint store) on a pool that connects through `proxy`. */
const throughProxy = (proxy: FaultProxy.FaultProxy, options: { readonly maxConnections?: number } = {}) =>
  Layer.unwrapEffect(
    Effect.map(Database.url, (url) =>
      Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
        Layer.provideMerge(
          PgClient.layer({
            url: Redacted.make(proxy.rewrite(url)),
            maxConnections: options.maxConnections ?? 4,
            connectTimeout: Duration.seconds(2)
          })
        )
      ))
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
    "an outage much longer than the retry schedule: the subscription resumes and delivers everything once",
    () =>
      Effect.gen(function*() {
        const url = yield* Database.url
        const proxy = yield* FaultProxy.make(url)
        const seen = yield* Ref.make<ReadonlyArray<number>>([])
        const projection = Projection.make({
          name: "faults-outage",
          handle: (event) => Ref.update(seen, (xs) => [...xs, event.position])
        })
        const writer = yield* Layer.build(direct)
        const append = (id: string) =>
          Effect.flatMap(
            EventStore.EventStore,
            (store) => store.append(StreamId.unsafeMake("outage", id), [ev(1)], { _tag: "Any" })
          ).pipe(Effect.provide(writer))
        yield* Effect.gen(function*() {
          const checkpoints = yield* CheckpointStore.CheckpointStore
          const subscription = yield* Subscription.forkScoped(projection, {
            filter: { categories: ["outage"] },
            checkpoints
          })
          const first = yield* append("o-1")
          yield* subscription.awaitPosition(first.position).pipe(Effect.timeout("10 seconds"))
          // the database becomes unreachable for the subscription's process (every connection cut, new ones reset)
          yield* proxy.refuse(true)
          yield* proxy.cut
          const during: Array<number> = []
          for (let i = 0; i < 8; i++) {
            yield* Effect.sleep("1 second")
            during.push((yield* append(`o-during-${i}`)).position)
            yield* proxy.cut
          }
          yield* proxy.refuse(false)
          const last = yield* append("o-last")
          yield* subscription.awaitPosition(last.position).pipe(Effect.timeout("30 seconds"))
          assert.deepStrictEqual(yield* Ref.get(seen), [first.position, ...during, last.position])
        }).pipe(Effect.provide(throughProxy(proxy)))
      }).pipe(Effect.scoped),
    90_000
  )
})
