import { DeciderSpec } from "@effect-eventsourcing/testing"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  Deposit,
  Deposited,
  Insufficient,
  Noop,
  NotOpen,
  Open,
  Opened,
  Wallet,
  Withdraw,
  Withdrawn
} from "./fixtures.js"

const opened = [new Opened({ owner: "Ada" }), new Deposited({ amount: 10 })]

describe("DeciderSpec", () => {
  it.effect("passes when the command emits the expected events", () =>
    DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 4 })).then([new Withdrawn({ amount: 4 })]))

  it.effect("passes on the expected error, by value or by class", () =>
    Effect.gen(function*() {
      const when = DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 11 }))
      yield* when.thenFails(new Insufficient({ balance: 10, requested: 11 }))
      yield* when.thenFails(Insufficient)
      yield* DeciderSpec.given(Wallet).when(new Deposit({ amount: 1 })).thenFails(new NotOpen())
    }))

  it.effect("thenNothing, thenState after a command and given(...).thenState", () =>
    Effect.gen(function*() {
      yield* DeciderSpec.given(Wallet, opened).when(new Noop()).thenNothing()
      yield* DeciderSpec.given(Wallet, opened).when(new Deposit({ amount: 5 })).thenState({
        open: true,
        owner: "Ada",
        balance: 15
      })
      yield* DeciderSpec.given(Wallet, opened).thenState({ open: true, owner: "Ada", balance: 10 })
      yield* DeciderSpec.given(Wallet).thenState(Wallet.initialState)
    }))

  it.effect("make binds the aggregate once: spec.given(events).when(command).then(events)", () =>
    Effect.gen(function*() {
      const spec = DeciderSpec.make(Wallet)
      assert.strictEqual(spec.aggregate, Wallet)
      yield* spec.given(opened).when(new Withdraw({ amount: 4 })).then([new Withdrawn({ amount: 4 })])
      yield* spec.given().when(new Deposit({ amount: 1 })).thenFails(NotOpen)
      yield* spec.given(opened).thenState({ open: true, owner: "Ada", balance: 10 })
      const failure = yield* Effect.flip(spec.given(opened).when(new Withdraw({ amount: 4 })).thenNothing())
      assert.instanceOf(failure, DeciderSpec.SpecFailure)
    }))

  it.effect("other events fail with a report of given, when, expected, actual and a diff", () =>
    Effect.gen(function*() {
      const failure = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 4 })).then([new Withdrawn({ amount: 5 })])
      )
      assert.instanceOf(failure, DeciderSpec.SpecFailure)
      assert.strictEqual(failure.reason, "the emitted events differ")
      assert.deepStrictEqual(failure.expected, [{ _tag: "Withdrawn", amount: 5 }])
      assert.deepStrictEqual(failure.actual, [{ _tag: "Withdrawn", amount: 4 }])
      const message = failure.message
      assert.include(message, "DeciderSpec(wallet): the emitted events differ")
      assert.include(message, "given:\n  #1 Opened { \"owner\": \"Ada\" }\n  #2 Deposited { \"amount\": 10 }")
      assert.include(message, "when:\n  Withdraw { \"amount\": 4 }")
      assert.include(message, "- Withdrawn { \"amount\": 5 }\n  + Withdrawn { \"amount\": 4 }")
    }))

  it.effect("a refusal, an acceptance and other errors are reported", () =>
    Effect.gen(function*() {
      const refused = yield* Effect.flip(
        DeciderSpec.given(Wallet).when(new Deposit({ amount: 1 })).then([new Deposited({ amount: 1 })])
      )
      assert.strictEqual(refused.reason, "the command was refused")
      assert.include(refused.message, "actual error:\n  NotOpen")
      assert.include(refused.message, "given:\n  (no events: the initial state)")

      const accepted = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 1 })).thenFails(Insufficient)
      )
      assert.strictEqual(accepted.reason, "the command was accepted, expected a failure")
      assert.include(accepted.message, "expected error:\n  an instance of Insufficient")

      const other = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 11 })).thenFails(
          new Insufficient({ balance: 10, requested: 12 })
        )
      )
      assert.strictEqual(other.reason, "the command failed with another error")
      assert.include(other.message, "\"requested\": 12")
      assert.include(other.message, "\"requested\": 11")

      const something = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Deposit({ amount: 3 })).thenNothing()
      )
      assert.strictEqual(something.reason, "expected no events")

      const state = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).thenState({
          open: true,
          owner: "Ada",
          balance: 11
        })
      )
      assert.strictEqual(state.reason, "the state differs")
      assert.deepStrictEqual(state.actual, { open: true, owner: "Ada", balance: 10 })
    }))

  it.effect("an emitted event that the events Schema cannot encode is reported", () =>
    Effect.gen(function*() {
      // Withdrawn requires a positive amount; `make` with validation off builds an invalid instance
      const failure = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Open({ owner: "Bob" })).then([
          new Opened({ owner: "Bob" }),
          new Withdrawn({ amount: 0 }, true)
        ])
      )
      assert.strictEqual(failure.reason, "expected event #2 does not encode with the events Schema")
      assert.include(failure.message, "problem:")
      const invalid = yield* Effect.flip(
        DeciderSpec.given(Wallet, opened).when(new Open({ owner: "Bob" })).then([new Withdrawn({ amount: -1 }, true)])
      )
      assert.include(invalid.reason, "expected event #1 does not encode")
    }))

  it("awaiting a When by mistake rejects with a hint instead of hanging", async () => {
    const when = DeciderSpec.given(Wallet, opened).when(new Withdraw({ amount: 4 }))
    const error = await Promise.resolve(when as unknown as PromiseLike<unknown>).then(
      () => undefined,
      (e: unknown) => e
    )
    assert.instanceOf(error, Error)
    assert.include(error.message, "run the Effect of .then(events)")
  })

  it("types are inferred from the aggregate", () => {
    const when = DeciderSpec.given(Wallet, opened).when(new Deposit({ amount: 1 }))
    // @ts-expect-error an event is not a command of the wallet
    DeciderSpec.given(Wallet).when(new Deposited({ amount: 1 }))
    // @ts-expect-error a command is not an event of the wallet
    DeciderSpec.given(Wallet, [new Deposit({ amount: 1 })])
    // @ts-expect-error NotOpen | Insufficient are the wallet's errors
    when.thenFails(new Error("other"))
    // @ts-expect-error the state has a balance
    when.thenState({ open: true, owner: "Ada" })
    assert.strictEqual(when.command._tag, "Deposit")
  })
})
