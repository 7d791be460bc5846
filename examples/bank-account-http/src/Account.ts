/**
 * The bank-account domain of `examples/bank-account` (copied: an example app is not a library to import from):
 * commands, events, state, domain errors (with messages, the `detail` of their problem documents) and the `Account`
 * aggregate.
 */
import { Aggregate } from "@effect-eventsourcing/core"
import { Either, Schema } from "effect"

// ---------------------------------------------------------------------------
// events
// ---------------------------------------------------------------------------

export class AccountOpened extends Schema.TaggedClass<AccountOpened>()("AccountOpened", {
  owner: Schema.NonEmptyTrimmedString
}) {}

export class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class AccountClosed extends Schema.TaggedClass<AccountClosed>()("AccountClosed", {}) {}

export const AccountEvent = Schema.Union(AccountOpened, Deposited, Withdrawn, AccountClosed)
export type AccountEvent = typeof AccountEvent.Type

// ---------------------------------------------------------------------------
// commands
// ---------------------------------------------------------------------------

export class OpenAccount extends Schema.TaggedClass<OpenAccount>()("OpenAccount", {
  owner: Schema.NonEmptyTrimmedString
}) {}

export class Deposit extends Schema.TaggedClass<Deposit>()("Deposit", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class Withdraw extends Schema.TaggedClass<Withdraw>()("Withdraw", {
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class CloseAccount extends Schema.TaggedClass<CloseAccount>()("CloseAccount", {}) {}

export const AccountCommand = Schema.Union(OpenAccount, Deposit, Withdraw, CloseAccount)
export type AccountCommand = typeof AccountCommand.Type

// ---------------------------------------------------------------------------
// state
// ---------------------------------------------------------------------------

export const AccountState = Schema.Struct({
  status: Schema.Literal("new", "open", "closed"),
  owner: Schema.String,
  balance: Schema.Int
})
export type AccountState = typeof AccountState.Type

export const initialState: AccountState = { status: "new", owner: "", balance: 0 }

// ---------------------------------------------------------------------------
// domain errors
// ---------------------------------------------------------------------------

export class AccountAlreadyOpened extends Schema.TaggedError<AccountAlreadyOpened>()("AccountAlreadyOpened", {}) {
  override get message() {
    return "The account is already open"
  }
}

export class AccountNotOpen extends Schema.TaggedError<AccountNotOpen>()("AccountNotOpen", {
  status: Schema.Literal("new", "closed")
}) {
  override get message() {
    return this.status === "new" ? "The account is not open yet" : "The account is closed"
  }
}

export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int,
  requested: Schema.Int
}) {
  override get message() {
    return `Insufficient funds: balance ${this.balance}, requested ${this.requested}`
  }
}

export class BalanceNotZero extends Schema.TaggedError<BalanceNotZero>()("BalanceNotZero", {
  balance: Schema.Int
}) {
  override get message() {
    return `The balance is ${this.balance}, not 0`
  }
}

export type AccountError = AccountAlreadyOpened | AccountNotOpen | InsufficientFunds | BalanceNotZero

// ---------------------------------------------------------------------------
// aggregate
// ---------------------------------------------------------------------------

const requireOpen = (state: AccountState): Either.Either<void, AccountNotOpen> =>
  state.status === "open" ? Either.void : Either.left(new AccountNotOpen({ status: state.status }))

export const Account = Aggregate.make({
  name: "account",
  events: AccountEvent,
  commands: AccountCommand,
  state: AccountState,
  initialState,
  snapshotEvery: 100,
  decide: (command, state) => {
    switch (command._tag) {
      case "OpenAccount":
        return state.status === "new"
          ? Either.right([new AccountOpened({ owner: command.owner })])
          : Either.left(new AccountAlreadyOpened())
      case "Deposit":
        return Either.map(requireOpen(state), () => [new Deposited({ amount: command.amount })])
      case "Withdraw":
        return Either.flatMap(requireOpen(state), () =>
          command.amount > state.balance
            ? Either.left(new InsufficientFunds({ balance: state.balance, requested: command.amount }))
            : Either.right([new Withdrawn({ amount: command.amount })]))
      case "CloseAccount":
        if (state.status === "closed") return Either.right([]) // already closed: nothing to do
        return Either.flatMap(requireOpen(state), () =>
          state.balance !== 0
            ? Either.left(new BalanceNotZero({ balance: state.balance }))
            : Either.right([new AccountClosed()]))
    }
  },
  evolve: (state, event) => {
    switch (event._tag) {
      case "AccountOpened":
        return { status: "open" as const, owner: event.owner, balance: 0 }
      case "Deposited":
        return { ...state, balance: state.balance + event.amount }
      case "Withdrawn":
        return { ...state, balance: state.balance - event.amount }
      case "AccountClosed":
        return { ...state, status: "closed" as const }
    }
  }
})
