import { ProjectionSpec } from "@effect-eventsourcing/testing"
import { it } from "@effect/vitest"
import { Account, AccountClosed, AccountOpened, Deposited, Withdrawn } from "../src/Account.js"
import { Balances } from "../src/Balances.js"

it.effect("the balances view: one document per account, folded from its events", () =>
  ProjectionSpec.given([
    ...ProjectionSpec.events(Account, "ada", [new AccountOpened({ owner: "Ada" }), new Deposited({ amount: 100 })]),
    ...ProjectionSpec.events(Account, "bob", [new AccountOpened({ owner: "Bob" })]),
    ...ProjectionSpec.events(Account, "ada", [new Withdrawn({ amount: 30 })]),
    ...ProjectionSpec.events(Account, "bob", [new AccountClosed()])
  ]).view(Balances).then({
    ada: { owner: "Ada", status: "open", balance: 70 },
    bob: { owner: "Bob", status: "closed", balance: 0 }
  }))
