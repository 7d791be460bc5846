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

export const Account = Aggregate.make({
  name: "account",
  events: Deposited,
  initialState: 0,
  decide: (command: Deposit, _state: number) => {
    counters.decisions++
    return Either.right([Deposited.make({ amount: command.amount, note: command.note })])
  },
  evolve: (state, event) => state + event.amount
})
