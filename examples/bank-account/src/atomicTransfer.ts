/**
 * A transfer between two accounts of the same store, made atomic by ONE unit of work: the withdrawal and the
 * deposit are committed together (one `appendMany`, each account at the version the unit loaded), or not at all. A
 * refused leg (insufficient funds, a closed account) or a concurrent writer on either account leaves both untouched.
 * (Across stores, or over time, a process manager is the tool instead.)
 */
import { CommandHandler, Repository } from "@effect-eventsourcing/core"
import { Effect, Schedule } from "effect"
import { Account, Deposit, Withdraw } from "./Account.js"

const handle = CommandHandler.make(Account)

/**
 * Moves `amount` from one account to another. `transferId` tags both events (`correlationId`) and derives their
 * ids, so sending the same transfer again after an unknown outcome is recognised instead of moving the money twice.
 * A conflict with another writer runs the whole unit again (up to 5 times).
 */
export const transfer = (from: string, to: string, amount: number, transferId: string) =>
  Repository.unitOfWork(
    Effect.zipRight(
      handle(from, new Withdraw({ amount }), { commandId: `${transferId}/withdraw` }),
      handle(to, new Deposit({ amount }), { commandId: `${transferId}/deposit` })
    ).pipe(CommandHandler.withMetadata({ correlationId: transferId })),
    { retry: Schedule.recurs(5) }
  )
