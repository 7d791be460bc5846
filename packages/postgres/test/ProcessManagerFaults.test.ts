/**
 * A process manager rides out a database outage in the middle of its handler (the loopback fault proxy cuts every
 * connection of its process while it dispatches a command): the stores' failures are retried as infrastructure,
 * never counted against its `retry` Schedule.
 */
import { Aggregate, EventStore, ExpectedVersion, ProcessManager, StreamId } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresTimerStore } from "@effect-eventsourcing/postgres"
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Either, Layer, Redacted, Ref, Schedule, Schema } from "effect"
import * as FaultProxy from "./faults/proxy.js"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("pm_faults")

class Added extends Schema.TaggedClass<Added>()("Added", { n: Schema.Int }) {}
class Add extends Schema.TaggedClass<Add>()("Add", { n: Schema.Int }) {}
const Counter = Aggregate.make({
  name: "counter",
  events: Added,
  initialState: 0,
  decide: (command: Add) => Either.right([new Added({ n: command.n })]),
  evolve: (state, event) => state + event.n
})
class Placed extends Schema.TaggedClass<Placed>()("Placed", { n: Schema.Int }) {}
const Orders = ProcessManager.make({
  name: "orders",
  events: Placed,
  filter: { categories: ["order"] },
  correlate: (_event, recorded) => StreamId.id(recorded.streamId),
  initialState: 0,
  evolve: (state) => state + 1,
  react: (_state, input) => input._tag === "Placed" ? [ProcessManager.send(Counter, "c1", new Add({ n: input.n }))] : []
})

/** The stores on a pool that connects through `proxy`. */
const throughProxy = (proxy: FaultProxy.FaultProxy) =>
  Layer.unwrapEffect(
    Effect.map(
      Database.url,
      (url) =>
        Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresTimerStore.layer()).pipe(
          Layer.provideMerge(
            PgClient.layer({
              url: Redacted.make(proxy.rewrite(url)),
              maxConnections: 4,
              connectTimeout: Duration.seconds(2)
            })
          )
        )
    )
  ).pipe(Layer.orDie)

describe("ProcessManager on PostgreSQL", () => {
  it.live(
    "an outage while it dispatches is retried as infrastructure: it resumes and the command is handled once",
    () =>
      Effect.gen(function*() {
        const url = yield* Database.url
        const proxy = yield* FaultProxy.make(url)
        const outages = yield* Ref.make(0)
        yield* Effect.gen(function*() {
          // the first dispatch cuts the process off the database for a second
          const onStep = (step: ProcessManager.Step) =>
            step.step !== "dispatch" ? Effect.void : Effect.flatMap(
              Ref.getAndUpdate(outages, (n) => n + 1),
              (n) =>
                n > 0 ? Effect.void : Effect.gen(function*() {
                  yield* proxy.refuse(true)
                  yield* proxy.cut
                  yield* Effect.forkDaemon(Effect.delay(proxy.refuse(false), "1 second"))
                })
            )
          // no retry of its own failures: before the fix, the outage stopped it at once
          const running = yield* ProcessManager.forkScoped(Orders, { retry: Schedule.stop, onStep })
          const store = yield* EventStore.EventStore
          const { position } = yield* store.append(
            StreamId.unsafeMake("order", "o1"),
            [{ type: "Placed", data: { n: 3 } }],
            ExpectedVersion.NoStream
          )
          yield* Effect.raceFirst(
            running.subscription.awaitPosition(position),
            Effect.flatMap(running.join, () => Effect.void)
          ).pipe(Effect.timeout("30 seconds"))
          const status = yield* running.subscription.status
          assert.strictEqual(status.state, "running")
          assert.isAbove(status.retries, 0, "the outage was retried as infrastructure")
          assert.isAbove(yield* Ref.get(outages), 1, "the dispatch ran again after the outage")
          assert.strictEqual(yield* store.streamVersion(StreamId.unsafeMake("counter", "c1")), 1)
        }).pipe(Effect.provide(throughProxy(proxy)))
      }).pipe(Effect.scoped),
    60_000
  )
})
