/**
 * The transfer example: four transfers run by the `transfers` process manager, against whatever stores are provided
 * (an EventStore, a CheckpointStore and a TimerStore).
 */
import { CommandHandler, type EventStore, ProcessManager } from "@effect-eventsourcing/core"
import { Console, Effect } from "effect"
import { CloseAccount, Deposit, OpenAccount } from "./Account.js"
import { accounts, handle } from "./program.js"
import { isFinished, makeTransferProcess, RequestTransfer, Transfer } from "./Transfer.js"
import type { TransferState } from "./Transfer.js"

export const handleTransfer = CommandHandler.make(Transfer)

/** Records a transfer request: the process manager takes it from there. */
export const requestTransfer = (id: string, from: string, to: string, amount: number) =>
  handleTransfer(id, new RequestTransfer({ from, to, amount }))

/** Waits (polling every 10 ms, for at most `within`) until the transfer has finished, and returns its state. */
export const awaitTransfer = <Event>(
  process: ProcessManager.ProcessManager<TransferState, Event>,
  id: string,
  within: `${number} seconds` = "20 seconds"
) => {
  const poll: Effect.Effect<
    TransferState,
    Effect.Effect.Error<ReturnType<typeof ProcessManager.load>>,
    EventStore.EventStore
  > = Effect.flatMap(
    ProcessManager.load(process, id),
    (instance) =>
      isFinished(instance.state.status) && instance.pending === 0
        ? Effect.succeed(instance.state)
        : Effect.zipRight(Effect.sleep("10 millis"), poll)
  )
  return poll.pipe(
    Effect.timeoutFail({
      duration: within,
      onTimeout: () => new Error(`transfer ${id} did not finish within ${within}`)
    })
  )
}

/** The demo: short durations, so that the deadline path runs in a couple of seconds. */
export const DemoProcess = makeTransferProcess({ deadline: "2 seconds", retryEvery: "200 millis" })

export const transfers = (prefix: string) =>
  Effect.scoped(Effect.gen(function*() {
    const [a, b, c, d, e] = ["a", "b", "c", "d", "e"].map((name) => `${prefix}-${name}`) as [
      string,
      string,
      string,
      string,
      string
    ]
    yield* handle(a, new OpenAccount({ owner: "Ada" }))
    yield* handle(a, new Deposit({ amount: 100 }))
    yield* handle(b, new OpenAccount({ owner: "Bob" }))
    yield* handle(c, new OpenAccount({ owner: "Cy" }))
    yield* handle(c, new CloseAccount())
    yield* ProcessManager.forkScoped(DemoProcess, { timerInterval: "50 millis" })

    yield* requestTransfer(`${prefix}-1`, a, b, 30) // completes
    yield* requestTransfer(`${prefix}-2`, a, c, 20) // c is closed: refunded
    yield* requestTransfer(`${prefix}-3`, a, d, 10) // d opens a moment later: the credit is tried again, completes
    yield* requestTransfer(`${prefix}-4`, a, e, 5) // e never opens: refunded after the deadline
    yield* Effect.sleep("500 millis")
    yield* handle(d, new OpenAccount({ owner: "Di" }))

    const outcomes: Array<string> = []
    for (const n of [1, 2, 3, 4]) {
      const state = yield* awaitTransfer(DemoProcess, `${prefix}-${n}`)
      outcomes.push(state.status)
      yield* Console.log(`transfer ${n}: ${state.amount} from ${state.from} to ${state.to}: ${state.status}`)
    }
    const balances: Array<number> = []
    for (const account of [a, b, c, d]) balances.push((yield* accounts.load(account)).state.balance)
    yield* Console.log(`balances: ${[a, b, c, d].map((x, i) => `${x} ${balances[i]}`).join(", ")}`)
    return { outcomes, balances }
  }))
