/**
 * Commands with a `commandId` on PostgreSQL: a command handled again after an unknown outcome replays instead of
 * writing twice (issue 12, item 5). The unknown outcome is simulated by a store that commits, then reports
 * `CommitOutcomeUnknown`.
 */
import { Aggregate, CommandHandler, EventStore, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { assert, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Exit, Layer, Schedule, Schema, Stream } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("command_id")

class Added extends Schema.TaggedClass<Added>()("Added", { amount: Schema.Number }) {}

const Counter = Aggregate.make({
  name: "counter",
  events: Added,
  initialState: { total: 0 },
  decide: (command: { readonly amount: number }) => Either.right([new Added({ amount: command.amount })]),
  evolve: (state, event) => ({ total: state.total + event.amount })
})

const streamOf = (id: string) => StreamId.unsafeMake("counter", id)

/**
 * `inner`, except that its next `times` appends (or, with `locks`, its next `times` locked runs) commit, then report
 * an unknown outcome.
 */
const unknownAfterCommit = (
  inner: EventStore.EventStore.Service,
  times: number,
  locks = false
): EventStore.EventStore.Service => {
  let left = times
  const report = <A>(a: A) =>
    left-- > 0
      ? Effect.fail(new EventStore.CommitOutcomeUnknown({ method: "append", cause: new Error("connection lost") }))
      : Effect.succeed(a)
  return EventStore.make({
    ...inner,
    append: (streamId, events, expected) =>
      locks
        ? inner.append(streamId, events, expected)
        : Effect.flatMap(inner.append(streamId, events, expected), report),
    withLock: (streamId, effect, options) =>
      locks
        ? Effect.flatMap(inner.withLock(streamId, effect, options), report)
        : inner.withLock(streamId, effect, options)
  })
}

const recorded = (id: string) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => Effect.map(Stream.runCollect(store.read(streamOf(id))), Chunk.toReadonlyArray)
  )

const Store = PostgresEventStore.layer().pipe(Layer.provideMerge(Database.layer), Layer.orDie)

layer(Store, { excludeTestServices: true, timeout: "60 seconds" })("CommandHandler commandId (PostgreSQL)", (it) => {
  it.effect("a command re-sent after CommitOutcomeUnknown (it had committed) replays: one set of events, the original result", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Counter, { resend: Schedule.stop })
      yield* handle("a", { amount: 1 })
      const first = yield* handle("a", { amount: 5 }, { commandId: "add-a" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1)),
        Effect.exit
      )
      assert(Exit.isFailure(first), "the outcome is reported unknown")
      const again = yield* handle("a", { amount: 5 }, { commandId: "add-a" })
      const events = yield* recorded("a")
      assert.deepStrictEqual(events.map((e) => e.version), [1, 2])
      assert.deepStrictEqual(
        { version: again.version, position: again.position, total: again.state.total },
        { version: 2, position: events[1]!.position, total: 6 }
      )
    }))

  it.effect("a re-send whose decide now yields other events fails with EventIdConflict and writes nothing", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Counter, { resend: Schedule.stop })
      yield* Effect.exit(
        handle("b", { amount: 5 }, { commandId: "add-b" }).pipe(
          Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1))
        )
      )
      const error = yield* Effect.flip(handle("b", { amount: 6 }, { commandId: "add-b" }))
      assert(error instanceof EventStore.EventIdConflict, `got ${error._tag}`)
      assert.deepStrictEqual((yield* recorded("b")).map((e) => e.data), [{ amount: 5 }])
    }))

  it.effect("the handler re-sends the same append itself after CommitOutcomeUnknown", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Counter)
      const result = yield* handle("c", { amount: 2 }, { commandId: "add-c" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 2))
      )
      assert.deepStrictEqual([result.version, result.state.total], [1, 2])
      assert.deepStrictEqual((yield* recorded("c")).map((e) => e.version), [1])
    }))

  it.effect("with lock: true, an unknown outcome of the locked transaction is resolved by re-sending its append", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Counter, { lock: true })
      yield* handle("d", { amount: 1 })
      const result = yield* handle("d", { amount: 4 }, { commandId: "add-d" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1, true))
      )
      assert.deepStrictEqual([result.version, result.state.total], [2, 5])
      // and the command handled once more (by its caller) replays too
      const again = yield* handle("d", { amount: 4 }, { commandId: "add-d" })
      assert.deepStrictEqual([again.version, again.state.total], [2, 5])
      assert.deepStrictEqual((yield* recorded("d")).map((e) => e.version), [1, 2])
    }))
})
