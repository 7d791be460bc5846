/**
 * The Account aggregate specified with the testing kit: `DeciderSpec` for given / when / then examples, and
 * `DeciderLaws` for properties checked over generated command sequences.
 */
import { DeciderLaws, DeciderSpec } from "@effect-eventsourcing/testing"
import { describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  Account,
  AccountAlreadyOpened,
  AccountClosed,
  AccountNotOpen,
  AccountOpened,
  type AccountState,
  BalanceNotZero,
  CloseAccount,
  Deposit,
  Deposited,
  InsufficientFunds,
  OpenAccount,
  Withdraw,
  Withdrawn
} from "../src/Account.js"

const opened = [new AccountOpened({ owner: "Ada" })]
const funded = [...opened, new Deposited({ amount: 100 })]

describe("Account: given / when / then", () => {
  it.effect("opening a new account records its owner", () =>
    DeciderSpec.given(Account).when(new OpenAccount({ owner: "Ada" })).then([new AccountOpened({ owner: "Ada" })]))

  it.effect("an account cannot be opened twice", () =>
    DeciderSpec.given(Account, opened).when(new OpenAccount({ owner: "Bob" })).thenFails(new AccountAlreadyOpened()))

  it.effect("deposits need an open account", () =>
    Effect.gen(function*() {
      yield* DeciderSpec.given(Account).when(new Deposit({ amount: 10 })).thenFails(
        new AccountNotOpen({ status: "new" })
      )
      yield* DeciderSpec.given(Account, opened).when(new Deposit({ amount: 10 })).then([new Deposited({ amount: 10 })])
    }))

  it.effect("a withdrawal within the balance is recorded and lowers it", () =>
    Effect.gen(function*() {
      const withdraw = DeciderSpec.given(Account, funded).when(new Withdraw({ amount: 30 }))
      yield* withdraw.then([new Withdrawn({ amount: 30 })])
      yield* withdraw.thenState({ status: "open", owner: "Ada", balance: 70 })
    }))

  it.effect("a withdrawal above the balance is refused with the balance and the amount", () =>
    DeciderSpec.given(Account, funded).when(new Withdraw({ amount: 101 })).thenFails(
      new InsufficientFunds({ balance: 100, requested: 101 })
    ))

  it.effect("an account with money cannot be closed; once emptied it can", () =>
    Effect.gen(function*() {
      yield* DeciderSpec.given(Account, funded).when(new CloseAccount()).thenFails(BalanceNotZero)
      yield* DeciderSpec.given(Account, [...funded, new Withdrawn({ amount: 100 })])
        .when(new CloseAccount())
        .then([new AccountClosed()])
    }))

  it.effect("closing a closed account again is accepted and does nothing", () =>
    DeciderSpec.given(Account, [...opened, new AccountClosed()]).when(new CloseAccount()).thenNothing())

  it.effect("the state folds the whole history", () =>
    DeciderSpec.given(Account, [...funded, new Withdrawn({ amount: 40 }), new Deposited({ amount: 5 })])
      .thenState({ status: "open", owner: "Ada", balance: 65 }))
})

/** What must hold on every state an account can reach through its commands. */
const invariants = {
  "the balance is never negative": (state: AccountState) => state.balance >= 0,
  "a closed account holds no money": (state: AccountState) => state.status !== "closed" || state.balance === 0,
  "a new account has no owner and no money": (state: AccountState) =>
    state.status !== "new" || (state.owner === "" && state.balance === 0)
}

describe("Account: laws over generated command sequences", () => {
  DeciderLaws.suite(Account, { invariants, numRuns: 200 })
})
