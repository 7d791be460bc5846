// A consumer app written as a user would, against the published packages (ES modules, compiled by tsc, run by node)
import { Aggregate, CommandHandler, InMemoryEventStore, Repository } from "@effect-eventsourcing/core"
import type { EventStore } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import type { DeciderLaws, EventStoreContract } from "@effect-eventsourcing/testing"
import * as DeciderSpec from "@effect-eventsourcing/testing/DeciderSpec"
import { PgClient } from "@effect/sql-pg"
import { Config, Console, Effect, Either, Layer, Schema } from "effect"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Int }) {}
class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Schema.Int }) {}
class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", { amount: Schema.Int }) {}
class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int
}) {}

const Account = Aggregate.make({
  name: "account",
  events: Schema.Union(Deposited, Withdrawn),
  commands: Schema.Union(Deposit, Withdraw),
  initialState: { balance: 0 },
  decide: (command, state) => {
    switch (command._tag) {
      case "Deposit":
        return Either.right([new Deposited({ amount: command.amount })])
      case "Withdraw":
        return command.amount > state.balance
          ? Either.left(new InsufficientFunds({ balance: state.balance }))
          : Either.right([new Withdrawn({ amount: command.amount })])
    }
  },
  evolve: (state, event) =>
    event._tag === "Deposited" ? { balance: state.balance + event.amount } : { balance: state.balance - event.amount }
})

// the testing kit's types must be usable under the app's strict flags too
export type Laws = DeciderLaws.Options<{ readonly balance: number }, Deposit | Withdraw, Deposited | Withdrawn>
export type Suite = typeof EventStoreContract.suite
export type Store = EventStore.EventStore

const handle = CommandHandler.make(Account)
const accounts = Repository.make(Account)

const run = (store: string) =>
  Effect.gen(function*() {
    const id = `a${Date.now().toString(36)}`
    yield* handle(id, new Deposit({ amount: 100 }))
    const refused = yield* Effect.flip(handle(id, new Withdraw({ amount: 500 })))
    const { events, version } = yield* handle(id, new Withdraw({ amount: 30 }))
    const loaded = yield* accounts.load(id)
    yield* Console.log(
      `esm ${store}: version ${version}, balance ${loaded.state.balance}, last event ${events[0]?._tag}, refused ${
        refused._tag === "InsufficientFunds" ? `InsufficientFunds(balance ${refused.balance})` : refused._tag
      }`
    )
  })

const spec = DeciderSpec.given(Account, [new Deposited({ amount: 10 })])
  .when(new Withdraw({ amount: 20 }))
  .thenFails(new InsufficientFunds({ balance: 10 }))

const Postgres = PostgresEventStore.layerConfig({ schema: Config.succeed("smoke_esm") }).pipe(
  Layer.provide(PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") }))
)

const program = Effect.gen(function*() {
  yield* spec
  yield* Console.log("esm DeciderSpec: overdraft refused")
  yield* run("memory").pipe(Effect.provide(InMemoryEventStore.layer))
  yield* run("postgres").pipe(Effect.provide(Postgres))
})

Effect.runPromise(program).catch((error: unknown) => {
  console.error("esm app failed:", error)
  process.exitCode = 1
})
