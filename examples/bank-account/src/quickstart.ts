/**
 * The README's quickstart, compiled and tested so it cannot rot.
 */
import { Aggregate, CommandHandler, InMemoryEventStore, Repository } from "@effect-eventsourcing/core"
import { Effect, Either, Schema } from "effect"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Int }) {}
class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", { amount: Schema.Int }) {}
class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", { amount: Schema.Int }) {}
class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int
}) {}

// State, Command, Event and the domain error are all inferred
const Account = Aggregate.make({
  name: "account", // streams are "account-<id>"
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
    event._tag === "Deposited"
      ? { balance: state.balance + event.amount }
      : { balance: state.balance - event.amount }
})

const handle = CommandHandler.make(Account) // load → decide → append(Exact(version)), retried on conflicts
const accounts = Repository.make(Account)

export const program = Effect.gen(function*() {
  yield* handle("42", new Deposit({ amount: 100 }))
  yield* handle("42", new Withdraw({ amount: 500 })).pipe(
    Effect.catchTag("InsufficientFunds", (e) => Effect.log(`refused, balance ${e.balance}`))
  )
  const { state, version } = yield* accounts.load("42")
  return { state, version }
})

export const run = () => program.pipe(Effect.provide(InMemoryEventStore.layer), Effect.runPromise)
