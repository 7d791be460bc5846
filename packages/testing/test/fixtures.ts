import { Aggregate } from "@effect-eventsourcing/core"
import { Either, Schema } from "effect"

export class Opened extends Schema.TaggedClass<Opened>()("Opened", { owner: Schema.String }) {}
export class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}
export class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class Open extends Schema.TaggedClass<Open>()("Open", { owner: Schema.String }) {}
export class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", {
  amount: Schema.Int.pipe(Schema.between(1, 1000))
}) {}
export class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", {
  amount: Schema.Int.pipe(Schema.between(1, 1000))
}) {}
export class Noop extends Schema.TaggedClass<Noop>()("Noop", {}) {}

export class NotOpen extends Schema.TaggedError<NotOpen>()("NotOpen", {}) {}
export class Insufficient extends Schema.TaggedError<Insufficient>()("Insufficient", {
  balance: Schema.Int,
  requested: Schema.Int
}) {}

export const State = Schema.Struct({ open: Schema.Boolean, owner: Schema.String, balance: Schema.Int })
export type State = typeof State.Type

export const Events = Schema.Union(Opened, Deposited, Withdrawn)
export const Commands = Schema.Union(Open, Deposit, Withdraw, Noop)

const evolve = (state: State, event: Opened | Deposited | Withdrawn): State => {
  switch (event._tag) {
    case "Opened":
      return { open: true, owner: event.owner, balance: 0 }
    case "Deposited":
      return { ...state, balance: state.balance + event.amount }
    case "Withdrawn":
      return { ...state, balance: state.balance - event.amount }
  }
}

/** The parts of a correct wallet: withdrawals above the balance are refused. */
export const walletDefinition = {
  name: "wallet",
  events: Events,
  commands: Commands,
  state: State,
  initialState: { open: false, owner: "", balance: 0 },
  decide: (command: Open | Deposit | Withdraw | Noop, state: State) => {
    switch (command._tag) {
      case "Open":
        return Either.right([new Opened({ owner: command.owner })])
      case "Deposit":
        return state.open ? Either.right([new Deposited({ amount: command.amount })]) : Either.left(new NotOpen())
      case "Withdraw":
        return !state.open
          ? Either.left(new NotOpen())
          : command.amount > state.balance
          ? Either.left(new Insufficient({ balance: state.balance, requested: command.amount }))
          : Either.right([new Withdrawn({ amount: command.amount })])
      case "Noop":
        return Either.right([])
    }
  },
  evolve
}

export const Wallet = Aggregate.make(walletDefinition)

/** The planted bug: the overdraft check is missing, so a withdrawal can make the balance negative. */
export const BuggyWallet = Aggregate.make({
  name: "wallet",
  events: Events,
  commands: Commands,
  state: State,
  initialState: { open: false, owner: "", balance: 0 },
  decide: (command, state) => {
    switch (command._tag) {
      case "Open":
        return Either.right([new Opened({ owner: command.owner })])
      case "Deposit":
        return state.open ? Either.right([new Deposited({ amount: command.amount })]) : Either.left(new NotOpen())
      case "Withdraw":
        return state.open ? Either.right([new Withdrawn({ amount: command.amount })]) : Either.left(new NotOpen())
      case "Noop":
        return Either.right([])
    }
  },
  evolve
})

export const invariants = { "balance is never negative": (state: State) => state.balance >= 0 }
