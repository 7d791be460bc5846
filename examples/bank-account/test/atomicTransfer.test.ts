import { EventStore } from "@effect-eventsourcing/core"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { CloseAccount, Deposit, OpenAccount } from "../src/Account.js"
import { transfer } from "../src/atomicTransfer.js"
import { accounts, handle } from "../src/program.js"
import { stores } from "./database.js"

const balances = (...ids: ReadonlyArray<string>) =>
  Effect.forEach(ids, (id) => Effect.map(accounts.load(id), (loaded) => loaded.state.balance))

for (const [storeName, store] of stores("bank_transfer")) {
  layer(store, { excludeTestServices: true, timeout: "60 seconds" })(`atomic transfer on ${storeName}`, (it) => {
    it.effect("moves money between two accounts in one commit; a refused leg moves nothing", () =>
      Effect.gen(function*() {
        for (const id of ["t1", "t2", "t3"]) yield* handle(id, new OpenAccount({ owner: id }))
        yield* handle("t1", new Deposit({ amount: 100 }))
        yield* handle("t3", new CloseAccount())
        yield* transfer("t1", "t2", 30, "tr-1")
        assert.deepStrictEqual(yield* balances("t1", "t2"), [70, 30])
        // the deposit leg is refused (t3 is closed) after the withdrawal was decided: nothing is written
        const refused = yield* Effect.flip(transfer("t1", "t3", 10, "tr-2"))
        assert.strictEqual(refused._tag, "AccountNotOpen")
        assert.deepStrictEqual(yield* balances("t1"), [70])
        const store = yield* EventStore.EventStore
        assert.strictEqual(yield* store.streamVersion(yield* accounts.streamId("t1")), 3)
        // the same transfer again (an unknown outcome, re-sent): recognised, not applied twice
        yield* transfer("t1", "t2", 30, "tr-1")
        assert.deepStrictEqual(yield* balances("t1", "t2"), [70, 30])
      }))

    it.effect("concurrent transfers in both directions conserve the total", () =>
      Effect.gen(function*() {
        for (const id of ["c1", "c2"]) {
          yield* handle(id, new OpenAccount({ owner: id }))
          yield* handle(id, new Deposit({ amount: 500 }))
        }
        yield* Effect.all(
          Array.from({ length: 10 }, (_, i) =>
            Effect.either(transfer(i % 2 === 0 ? "c1" : "c2", i % 2 === 0 ? "c2" : "c1", 10 + i, `ct-${i}`))),
          { concurrency: "unbounded" }
        )
        const [a, b] = yield* balances("c1", "c2")
        assert.strictEqual(a! + b!, 1000)
      }))
  })
}
