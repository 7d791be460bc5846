/**
 * The balances view: one document per account (owner, status, balance), kept by a subscription in the view store
 * (memory, or the `event_store.views` table on PostgreSQL, exactly-once there).
 */
import { View } from "@effect-eventsourcing/core"
import { Schema } from "effect"
import { Account } from "./Account.js"

export const BalanceDocument = Schema.Struct({
  owner: Schema.String,
  status: Schema.Literal("open", "closed"),
  balance: Schema.Int
})

export const Balances = View.fromAggregate(Account, {
  name: "balances",
  schema: BalanceDocument,
  initial: { owner: "", status: "open", balance: 0 },
  evolve: (view, event) => {
    switch (event._tag) {
      case "AccountOpened":
        return { owner: event.owner, status: "open" as const, balance: 0 }
      case "Deposited":
        return { ...view, balance: view.balance + event.amount }
      case "Withdrawn":
        return { ...view, balance: view.balance - event.amount }
      case "AccountClosed":
        return { ...view, status: "closed" as const }
    }
  }
})
