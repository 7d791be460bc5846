/**
 * The example program: a few commands against whatever `EventStore` Layer is provided.
 */
import { CommandHandler, EventStore, Repository } from "@effect-eventsourcing/core"
import { Console, Effect, Stream } from "effect"
import { Account, CloseAccount, Deposit, OpenAccount, Withdraw } from "./Account.js"

export const handle = CommandHandler.make(Account)
export const accounts = Repository.make(Account)

/**
 * A command arriving from outside (an HTTP body, a queue message): decoded with the aggregate's `commands` Schema
 * before `decide` sees it, so malformed input is a typed `CommandDecodeError` and writes nothing. The request id
 * makes the command safe to send again after an unknown outcome (its events get ids derived from it).
 */
export const handleRequest = (accountId: string, body: unknown, requestId?: string) =>
  handle.handleUnknown(accountId, body, requestId === undefined ? undefined : { commandId: requestId })

export const program = (id: string) =>
  Effect.gen(function*() {
    yield* handle(id, new OpenAccount({ owner: "Ada" }))
    yield* handle(id, new Deposit({ amount: 100 }))
    yield* handle(id, new Withdraw({ amount: 30 }))

    // a command the domain refuses: the typed error flows through unchanged, nothing is written
    const refused = yield* handle(id, new Withdraw({ amount: 1_000 })).pipe(
      Effect.catchTag("InsufficientFunds", (e) =>
        Effect.as(Console.log(`refused: balance ${e.balance}, requested ${e.requested}`), "refused" as const))
    )

    // input from outside is decoded first: a malformed command is a typed error, and nothing is written
    yield* handleRequest(id, { _tag: "Deposit", amount: -5 }).pipe(
      Effect.catchTag("CommandDecodeError", (e) =>
        Console.log(`rejected input: ${e.message}`))
    )

    const { state, version } = yield* accounts.load(id)
    yield* Console.log(`account ${id} at version ${version}:`, state)

    const store = yield* EventStore.EventStore
    const streamId = yield* accounts.streamId(id)
    yield* Stream.runForEach(
      store.read(streamId),
      (e) => Console.log(`  #${e.version} (position ${e.position}) ${e.type} ${JSON.stringify(e.data)}`)
    )

    // a closed account refuses deposits
    yield* handle(id, new Withdraw({ amount: 70 }))
    const closed = yield* handle(id, new CloseAccount())
    yield* Console.log(`withdrew 70 and closed the account at version ${closed.version}`)
    const afterClose = yield* handle(id, new Deposit({ amount: 5 })).pipe(Effect.either)
    yield* Console.log(`deposit after close:`, afterClose._tag === "Left" ? afterClose.left._tag : "accepted")

    return { state, version, refused }
  })
