/**
 * Schema evolution by example: how an aggregate keeps reading events written by older versions of itself.
 */
import {
  Aggregate,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Either, Schema, Stream } from "effect"

// v2 of the events. Older rows in the store were written by v1:
//   v1 Deposited  { amount: "10" }             (amount was a string; no `currency` field)
//   v1 MoneyAdded { value: 5 }                 (renamed to Deposited in v2)
//   v1 Audited    { by: "bot" }                (retired: no longer part of the domain)
class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  // 1. a changed shape: accept the old string form when decoding, always write numbers
  amount: Schema.Union(Schema.Number, Schema.NumberFromString),
  // 2. an added field: old rows get the default
  currency: Schema.optionalWith(Schema.String, { default: () => "EUR" })
}) {}

// 3. a renamed event: the old type decodes into the new class (listed AFTER Deposited, so new events encode as
//    "Deposited")
const MoneyAdded = Schema.transform(
  Schema.TaggedStruct("MoneyAdded", { value: Schema.Number }),
  Schema.typeSchema(Deposited),
  {
    strict: true,
    decode: (old) => new Deposited({ amount: old.value, currency: "EUR" }),
    encode: (deposited) => ({ _tag: "MoneyAdded" as const, value: deposited.amount })
  }
)

const Ledger = Aggregate.make({
  name: "ledger",
  events: Schema.Union(Deposited, MoneyAdded),
  initialState: { total: 0, currencies: [] as ReadonlyArray<string> },
  // 4. a retired event type is skipped on load instead of failing with EventDecodeError
  retired: ["Audited"],
  decide: (command: { readonly amount: number }, _state) =>
    Either.right([new Deposited({ amount: command.amount, currency: "USD" })]),
  evolve: (state, event) => ({
    total: state.total + event.amount,
    currencies: state.currencies.includes(event.currency) ? state.currencies : [...state.currencies, event.currency]
  })
})

const ledgers = Repository.make(Ledger)

describe("schema evolution", () => {
  it.effect("old rows decode into the new shape; new events are written in the new shape", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      const streamId = StreamId.unsafeMake("ledger", "1")
      // rows as v1 wrote them
      yield* store.append(streamId, [
        { type: "Deposited", data: { amount: "10" } },
        { type: "MoneyAdded", data: { value: 5 } },
        { type: "Audited", data: { by: "bot" } }
      ], ExpectedVersion.NoStream)

      const loaded = yield* ledgers.load("1")
      assert.deepStrictEqual(loaded.state, { total: 15, currencies: ["EUR"] })
      assert.strictEqual(loaded.version, 3, "the retired event still counts for the version")

      const decoded = Chunk.toArray(yield* Stream.runCollect(ledgers.events("1")))
      assert.deepStrictEqual(decoded, [
        new Deposited({ amount: 10, currency: "EUR" }),
        new Deposited({ amount: 5, currency: "EUR" })
      ])

      yield* ledgers.append("1", [new Deposited({ amount: 7, currency: "USD" })], ExpectedVersion.Exact(3))
      const last = Chunk.toArray(yield* Stream.runCollect(store.read(streamId, { direction: "backward", limit: 1 })))
      assert.deepStrictEqual(last.map((e) => [e.type, e.data]), [["Deposited", { amount: 7, currency: "USD" }]])
      assert.deepStrictEqual((yield* ledgers.load("1")).state, { total: 22, currencies: ["EUR", "USD"] })
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("a type that is neither known nor retired is an EventDecodeError, never a defect", () =>
    Effect.gen(function*() {
      const store = yield* EventStore.EventStore
      yield* store.append(StreamId.unsafeMake("ledger", "2"), [{ type: "Frozen", data: {} }], ExpectedVersion.NoStream)
      const error = yield* Effect.flip(ledgers.load("2"))
      assert(error instanceof EventStore.EventDecodeError)
      assert.deepStrictEqual([error.streamId, error.version, error.type], ["ledger-2", 1, "Frozen"])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
