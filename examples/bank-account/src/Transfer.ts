/**
 * A transfer between two accounts, as a process manager: debit the source, credit the target; when the target
 * refuses the credit (closed), refund the source; when the target is not open yet, try the credit again every
 * `retryEvery` until `deadline`, then refund. Every transfer ends in exactly one of completed / refunded (or failed,
 * when the debit is refused: nothing moved).
 *
 * A transfer starts with a `TransferRequested` event of the `Transfer` aggregate (`RequestTransfer`).
 */
import { Aggregate, ProcessManager, StreamId } from "@effect-eventsourcing/core"
import { Either, Schema } from "effect"
import type { Duration } from "effect"
import { Account, Deposit, Deposited, Withdraw, Withdrawn } from "./Account.js"

// ---------------------------------------------------------------------------
// the request: a `Transfer` aggregate that records it once
// ---------------------------------------------------------------------------

export class TransferRequested extends Schema.TaggedClass<TransferRequested>()("TransferRequested", {
  from: Schema.String,
  to: Schema.String,
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class RequestTransfer extends Schema.TaggedClass<RequestTransfer>()("RequestTransfer", {
  from: Schema.String,
  to: Schema.String,
  amount: Schema.Int.pipe(Schema.positive())
}) {}

export class TransferAlreadyRequested
  extends Schema.TaggedError<TransferAlreadyRequested>()("TransferAlreadyRequested", {})
{}

export class SameAccount extends Schema.TaggedError<SameAccount>()("SameAccount", {}) {}

export const Transfer = Aggregate.make({
  name: "transfer",
  events: TransferRequested,
  commands: RequestTransfer,
  initialState: { requested: false },
  decide: (command, state) =>
    state.requested
      ? Either.left(new TransferAlreadyRequested())
      : command.from === command.to
      ? Either.left(new SameAccount())
      : Either.right([new TransferRequested({ from: command.from, to: command.to, amount: command.amount })]),
  evolve: () => ({ requested: true })
})

// ---------------------------------------------------------------------------
// the process
// ---------------------------------------------------------------------------

export type TransferStatus =
  | "new"
  | "debiting" // Withdraw sent to the source
  | "crediting" // debited; Deposit sent to the target
  | "waiting" // the target is not open yet: the credit is tried again
  | "refunding" // the credit was refused or timed out; Deposit sent back to the source
  | "completed"
  | "refunded"
  | "failed" // the debit was refused: nothing moved
  | "stuck" // the refund was refused (the source closed meanwhile): needs an operator

export interface TransferState {
  readonly status: TransferStatus
  readonly from: string
  readonly to: string
  readonly amount: number
}

export const isFinished = (status: TransferStatus): boolean =>
  status === "completed" || status === "refunded" || status === "failed" || status === "stuck"

const initialState: TransferState = { status: "new", from: "", to: "", amount: 0 }

type Input = ProcessManager.Input<TransferRequested | Withdrawn | Deposited>

const evolve = (state: TransferState, input: Input): TransferState => {
  switch (input._tag) {
    case "TransferRequested":
      return { status: "debiting", from: input.from, to: input.to, amount: input.amount }
    case "Withdrawn":
      return state.status === "debiting" ? { ...state, status: "crediting" } : state
    case "Deposited":
      return state.status === "crediting"
        ? { ...state, status: "completed" }
        : state.status === "refunding"
        ? { ...state, status: "refunded" }
        : state
    case "CommandRejected": {
      if (input.command === "Withdraw") return { ...state, status: "failed" }
      if (input.id === state.from) return { ...state, status: "stuck" }
      // the credit was refused: wait while the target is not open yet, refund when it is closed
      const notOpenYet = input.reason === "AccountNotOpen" &&
        (input.error as { readonly status?: unknown } | null)?.status === "new"
      return { ...state, status: notOpenYet ? "waiting" : "refunding" }
    }
    case "TimerFired":
      if (state.status !== "waiting") return state
      return { ...state, status: input.name === "deadline" ? "refunding" : "crediting" }
  }
}

/** The process, with its durations: `deadline` for the credit, `retryEvery` while the target is not open. */
export const makeTransferProcess = (options: {
  readonly deadline: Duration.DurationInput
  readonly retryEvery: Duration.DurationInput
}) =>
  ProcessManager.make({
    name: "transfers",
    events: Schema.Union(TransferRequested, Withdrawn, Deposited),
    filter: { categories: ["transfer", "account"] },
    // a request starts an instance; account events belong to the instance whose commands wrote them
    correlate: (event, recorded) =>
      event._tag === "TransferRequested"
        ? StreamId.id(recorded.streamId)
        : recorded.metadata.processManager === "transfers"
        ? recorded.metadata.correlationId
        : undefined,
    initialState,
    evolve,
    react: (state, input) => {
      switch (input._tag) {
        case "TransferRequested":
          return [ProcessManager.send(Account, state.from, new Withdraw({ amount: state.amount }))]
        case "Withdrawn":
          return [
            ProcessManager.send(Account, state.to, new Deposit({ amount: state.amount })),
            ProcessManager.schedule("deadline", options.deadline)
          ]
        case "CommandRejected":
          return state.status === "waiting"
            ? [ProcessManager.schedule("retry-credit", options.retryEvery)]
            : state.status === "refunding"
            ? [ProcessManager.send(Account, state.from, new Deposit({ amount: state.amount }))]
            : []
        case "TimerFired":
          // `evolve` moved the state when the timer still matters
          return state.status === "crediting" && input.name === "retry-credit"
            ? [ProcessManager.send(Account, state.to, new Deposit({ amount: state.amount }))]
            : state.status === "refunding" && input.name === "deadline"
            ? [ProcessManager.send(Account, state.from, new Deposit({ amount: state.amount }))]
            : []
        case "Deposited":
          return []
      }
    }
  })

/** The process as the example runs it: a one-hour deadline, the credit tried again every minute. */
export const TransferProcess = makeTransferProcess({ deadline: "1 hour", retryEvery: "1 minute" })
