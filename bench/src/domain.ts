/**
 * The benchmark's aggregate for our library: an account whose state is the sum of its deposits.
 */
import { Aggregate } from "@effect-eventsourcing/core"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

export const Deposited = Schema.TaggedStruct("Deposited", { amount: Schema.Number, note: Schema.String })
export type Deposited = typeof Deposited.Type

export interface Deposit {
  readonly amount: number
  readonly note: string
}

/** how often `decide` ran (W3 counts conflicts as decisions minus successes) */
export const counters = { decisions: 0 }

const decide = (command: Deposit, _state: number) => {
  counters.decisions++
  return Either.right([Deposited.make({ amount: command.amount, note: command.note })])
}

export const Account = Aggregate.make({
  name: "account",
  events: Deposited,
  initialState: 0,
  decide,
  evolve: (state, event) => state + event.amount
})

/** The same aggregate with a state Schema and a snapshot every 100 events (the `*-snapshots` targets). */
export const SnapshottedAccount = Aggregate.make({
  name: "account",
  events: Deposited,
  state: Schema.Number,
  initialState: 0,
  decide,
  evolve: (state, event) => state + event.amount,
  snapshotEvery: 100
})
