import { CommandHandler, EventStore, InMemoryEventStore } from "@effect-eventsourcing/core"
import { assert, describe, it, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Stream } from "effect"
import { Account, Deposit, OpenAccount, Withdraw } from "../src/Account.js"
import { accounts, handle, handleRequest, program } from "../src/program.js"
import * as quickstart from "../src/quickstart.js"
import { stores } from "./database.js"

for (const [storeName, store] of stores("bank_program")) {
  layer(store, { excludeTestServices: true, timeout: "60 seconds" })(`bank-account example on ${storeName}`, (it) => {
    it.effect("runs the program: open, deposit, withdraw, a refused withdrawal, then the account closed", () =>
      Effect.gen(function*() {
        const result = yield* program("1")
        assert.strictEqual(result.refused, "refused")
        assert.deepStrictEqual(result.state, { status: "open", owner: "Ada", balance: 70 })
        assert.strictEqual(result.version, 3)
        const final = yield* accounts.load("1")
        assert.deepStrictEqual(final.state, { status: "closed", owner: "Ada", balance: 0 })
        assert.strictEqual(final.version, 5)
      }))

    it.effect("a refused command writes nothing", () =>
      Effect.gen(function*() {
        yield* handle("2", new OpenAccount({ owner: "Bob" }))
        const refused = yield* Effect.either(handle("2", new Withdraw({ amount: 1 })))
        assert(Either.isLeft(refused) && refused.left._tag === "InsufficientFunds")
        const store = yield* EventStore.EventStore
        assert.strictEqual(yield* store.streamVersion(yield* accounts.streamId("2")), 1)
      }))

    it.effect("input from outside is decoded: a malformed command is a CommandDecodeError and writes nothing", () =>
      Effect.gen(function*() {
        yield* handleRequest("4", { _tag: "OpenAccount", owner: "Di" })
        for (
          const body of [{ _tag: "Deposit", amount: -5 }, { _tag: "Deposit", amount: "5" }, { _tag: "Steal" }, "x"]
        ) {
          const error = yield* Effect.flip(handleRequest("4", body))
          assert.strictEqual(error._tag, "CommandDecodeError")
        }
        const store = yield* EventStore.EventStore
        assert.strictEqual(yield* store.streamVersion(yield* accounts.streamId("4")), 1)
        // a request sent twice (its outcome unknown the first time) deposits once
        const first = yield* handleRequest("4", { _tag: "Deposit", amount: 5 }, "request-1")
        const second = yield* handleRequest("4", { _tag: "Deposit", amount: 5 }, "request-1")
        assert.deepStrictEqual([first.version, second.version, second.state.balance], [2, 2, 5])
        assert.strictEqual(yield* store.streamVersion(yield* accounts.streamId("4")), 2)
      }))

    it.effect("concurrent deposits all land: conflicts are retried against the reloaded state", () =>
      Effect.gen(function*() {
        yield* handle("3", new OpenAccount({ owner: "Cy" }))
        const deposit = CommandHandler.make(Account, { retry: CommandHandler.defaultRetry })
        yield* Effect.all(Array.from({ length: 8 }, () => deposit("3", new Deposit({ amount: 5 }))), {
          concurrency: "unbounded"
        })
        const loaded = yield* accounts.load("3")
        assert.strictEqual(loaded.state.balance, 40)
        assert.strictEqual(loaded.version, 9)
        const store = yield* EventStore.EventStore
        const events = yield* Stream.runCollect(store.read(loaded.streamId))
        assert.deepStrictEqual(Chunk.toArray(events).map((e) => e.version), [1, 2, 3, 4, 5, 6, 7, 8, 9])
      }))
  })
}

describe("README quickstart", () => {
  it.effect("runs", () =>
    Effect.gen(function*() {
      const { state, version } = yield* quickstart.program
      assert.deepStrictEqual(state, { balance: 100 })
      assert.strictEqual(version, 1)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
