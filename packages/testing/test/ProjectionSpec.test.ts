import { Projection, View } from "@effect-eventsourcing/core"
import { ProjectionSpec } from "@effect-eventsourcing/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref, Schema } from "effect"
import { Deposited, Opened, Wallet, Withdrawn } from "./fixtures.js"

/** An in-memory read model: balances by stream, in a Ref, updated by a projection of the aggregate. */
const balancesModel = Effect.gen(function*() {
  const balances = yield* Ref.make(new Map<string, number>())
  const projection = Projection.fromAggregate(Wallet, {
    name: "balances",
    handle: (event, recorded) =>
      Ref.update(balances, (map) => {
        const next = new Map(map)
        const current = next.get(recorded.streamId) ?? 0
        if (event._tag === "Deposited") next.set(recorded.streamId, current + event.amount)
        else if (event._tag === "Withdrawn") next.set(recorded.streamId, current - event.amount)
        else next.set(recorded.streamId, current)
        return next
      })
  })
  const read = Effect.map(Ref.get(balances), (map) => Object.fromEntries([...map].sort()))
  return { projection, read }
})

const Summary = View.fromAggregate(Wallet, {
  name: "summaries",
  schema: Schema.Struct({ owner: Schema.String, balance: Schema.Int }),
  initial: { owner: "", balance: 0 },
  evolve: (view, event) =>
    event._tag === "Opened"
      ? { ...view, owner: event.owner }
      : { ...view, balance: view.balance + (event._tag === "Deposited" ? event.amount : -event.amount) }
})

const history = [
  ...ProjectionSpec.events(Wallet, "1", [new Opened({ owner: "Ada" }), new Deposited({ amount: 100 })]),
  ...ProjectionSpec.events(Wallet, "2", [new Opened({ owner: "Bob" }), new Deposited({ amount: 5 })]),
  ...ProjectionSpec.events(Wallet, "1", [new Withdrawn({ amount: 30 })])
]

describe("ProjectionSpec", () => {
  it.effect("given events, a projection's in-memory read model is the expected one", () =>
    Effect.gen(function*() {
      const { projection, read } = yield* balancesModel
      yield* ProjectionSpec.given(history).project(projection).then(read, { "wallet-1": 70, "wallet-2": 5 })
    }))

  it.effect("records the events as a store would: positions from 1, versions per stream, encoded data", () =>
    Effect.gen(function*() {
      const recorded = yield* ProjectionSpec.given(history).recorded
      assert.deepStrictEqual(
        recorded.map((e) => [e.streamId, e.version, e.position, e.type, e.data]),
        [
          ["wallet-1", 1, 1, "Opened", { owner: "Ada" }],
          ["wallet-1", 2, 2, "Deposited", { amount: 100 }],
          ["wallet-2", 1, 3, "Opened", { owner: "Bob" }],
          ["wallet-2", 2, 4, "Deposited", { amount: 5 }],
          ["wallet-1", 3, 5, "Withdrawn", { amount: 30 }]
        ]
      )
    }))

  it.effect("a read model that differs fails with a readable report and a line diff", () =>
    Effect.gen(function*() {
      const { projection, read } = yield* balancesModel
      const failure = yield* Effect.flip(
        ProjectionSpec.given(history).project(projection).then(read, { "wallet-1": 100, "wallet-2": 5 })
      )
      assert.instanceOf(failure, ProjectionSpec.SpecFailure)
      assert.strictEqual(
        failure.message,
        [
          "ProjectionSpec balances: the read model differs",
          "given events:",
          "  #1 wallet-1 v1 Opened { \"owner\": \"Ada\" }",
          "  #2 wallet-1 v2 Deposited { \"amount\": 100 }",
          "  #3 wallet-2 v1 Opened { \"owner\": \"Bob\" }",
          "  #4 wallet-2 v2 Deposited { \"amount\": 5 }",
          "  #5 wallet-1 v3 Withdrawn { \"amount\": 30 }",
          "expected:",
          "  { \"wallet-1\": 100, \"wallet-2\": 5 }",
          "actual:",
          "  { \"wallet-1\": 70, \"wallet-2\": 5 }",
          "diff (- expected, + actual):",
          "  - wallet-1: 100",
          "  + wallet-1: 70",
          "    wallet-2: 5"
        ].join("\n")
      )
      assert.deepStrictEqual(failure.expected, { "wallet-1": 100, "wallet-2": 5 })
      assert.deepStrictEqual(failure.actual, { "wallet-1": 70, "wallet-2": 5 })
    }))

  it.effect("rows (arrays) are diffed row by row", () =>
    Effect.gen(function*() {
      const rows = yield* Ref.make<Array<{ readonly id: string; readonly type: string }>>([])
      const log = Projection.make({
        name: "log",
        handle: (event) => Ref.update(rows, (all) => [...all, { id: event.streamId, type: event.type }])
      })
      const failure = yield* Effect.flip(
        ProjectionSpec.given(history.slice(0, 2)).project(log).then(Ref.get(rows), [
          { id: "wallet-1", type: "Opened" },
          { id: "wallet-1", type: "Withdrawn" }
        ])
      )
      assert.include(
        failure.message,
        [
          "diff (- expected, + actual):",
          "    { \"id\": \"wallet-1\", \"type\": \"Opened\" }",
          "  - { \"id\": \"wallet-1\", \"type\": \"Withdrawn\" }",
          "  + { \"id\": \"wallet-1\", \"type\": \"Deposited\" }"
        ].join("\n")
      )
    }))

  it.effect("a view's documents by key (in a fresh in-memory view store), and a failing case", () =>
    Effect.gen(function*() {
      yield* ProjectionSpec.given(history).view(Summary).then({
        "1": { owner: "Ada", balance: 70 },
        "2": { owner: "Bob", balance: 5 }
      })
      const failure = yield* Effect.flip(
        ProjectionSpec.given(history).view(Summary).then({ "1": { owner: "Ada", balance: 70 } })
      )
      assert.strictEqual(failure._tag, "ProjectionSpecFailure")
      assert.include(failure.message, "ProjectionSpec summaries: the view's documents differ")
      assert.include(failure.message, "+ 2: { \"owner\": \"Bob\", \"balance\": 5 }")
    }))

  it.effect("a projection failure is the projection's own error, not a SpecFailure", () =>
    Effect.gen(function*() {
      class Broken extends Schema.TaggedError<Broken>()("Broken", {}) {}
      const broken = Projection.make({ name: "broken", handle: () => Effect.fail(new Broken()) })
      const error = yield* Effect.flip(ProjectionSpec.given(history).project(broken).then(Effect.succeed(1), 1))
      assert.instanceOf(error, Broken)
    }))
})
