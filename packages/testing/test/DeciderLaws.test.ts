import { Aggregate } from "@effect-eventsourcing/core"
import { DeciderLaws } from "@effect-eventsourcing/testing"
import { assert, describe, it } from "@effect/vitest"
import { Either, FastCheck, Schema } from "effect"
import { BuggyWallet, Deposit, invariants, Open, type State, Wallet, walletDefinition, Withdraw } from "./fixtures.js"

describe("DeciderLaws on a correct aggregate", () => {
  DeciderLaws.suite(Wallet, { invariants, numRuns: 100 })
})

const failing = <A>(law: DeciderLaws.Law<A>, seed = 42) => {
  const details = FastCheck.check(DeciderLaws.property(law), { seed, numRuns: 300 })
  assert.isTrue(details.failed, `the law "${law.name}" should have found a counterexample`)
  const counterexample = details.counterexample![0]
  const violation = law.check(counterexample)
  assert(Either.isLeft(violation))
  assert.instanceOf(violation.left, DeciderLaws.LawViolation)
  assert.strictEqual(violation.left.law, law.name)
  return { counterexample, details, violation: violation.left }
}

describe("DeciderLaws find planted bugs", () => {
  it("the invariant law finds a withdrawal that overdraws, and shrinks it to open + withdraw", () => {
    const laws = DeciderLaws.laws(BuggyWallet, { invariants })
    const { counterexample, details, violation } = failing(laws.invariants)
    assert.deepStrictEqual(counterexample.map((c) => c._tag), ["Open", "Withdraw"])
    assert.deepStrictEqual(counterexample[1], new Withdraw({ amount: 1 }))
    assert.include(FastCheck.defaultReportMessage(details) ?? "", "Counterexample")
    assert.include(violation.message, "invariant \"balance is never negative\" does not hold")
    assert.include(violation.message, "#1 Open { \"owner\": \"\" } → accepted: Opened { \"owner\": \"\" }")
    assert.include(violation.message, "#2 Withdraw { \"amount\": 1 } → accepted: Withdrawn { \"amount\": 1 }")
    assert.include(violation.message, "state after it:  { \"open\": true, \"owner\": \"\", \"balance\": -1 }")
    // the correct aggregate passes the same property with the same seed
    const ok = FastCheck.check(DeciderLaws.property(DeciderLaws.laws(Wallet, { invariants }).invariants), {
      seed: 42,
      numRuns: 300
    })
    assert.isFalse(ok.failed)
  })

  it("an initial state that breaks an invariant is reported", () => {
    const laws = DeciderLaws.laws(Wallet, { invariants: { "owner is set": (state: State) => state.owner !== "" } })
    const violation = laws.invariants.check([])
    assert(Either.isLeft(violation))
    assert.include(violation.left.description, "on the initial state")
  })

  it("decide is deterministic: a decision that depends on hidden mutable state is caught", () => {
    let calls = 0
    const Flaky = Aggregate.make({
      ...walletDefinition,
      decide: (command, state) => {
        calls++
        return command._tag === "Deposit" && calls % 2 === 0 ? Either.right([]) : Wallet.decide(command, state)
      }
    })
    const { violation } = failing(DeciderLaws.laws(Flaky).deterministic)
    assert.include(violation.description, "decided twice with different results")
  })

  it("a rejection that mutates the state is caught", () => {
    const Mutating = Aggregate.make({
      ...walletDefinition,
      decide: (command, state) => {
        const decision = Wallet.decide(command, state)
        if (Either.isLeft(decision)) (state as { balance: number }).balance += 0.5
        return decision
      }
    })
    const { violation } = failing(DeciderLaws.laws(Mutating).rejectionEmitsNothing)
    assert.include(violation.description, "decide mutated the state it was given (while refusing)")
  })

  it("a decide that throws is caught", () => {
    const Throwing = Aggregate.make({
      ...walletDefinition,
      decide: (command, state) => {
        if (command._tag === "Deposit" && command.amount > 500) throw new RangeError("too much")
        return Wallet.decide(command, state)
      }
    })
    const { counterexample, violation } = failing(DeciderLaws.laws(Throwing).rejectionEmitsNothing)
    assert.deepStrictEqual(counterexample, [new Deposit({ amount: 501 })])
    assert.include(violation.description, "decide threw RangeError: too much")
  })

  it("evolve is total: an event it does not handle is caught", () => {
    const Partial = Aggregate.make({
      ...walletDefinition,
      evolve: (state, event) => (event._tag === "Withdrawn" ? undefined : Wallet.evolve(state, event)) as State
    })
    const { counterexample, violation } = failing(DeciderLaws.laws(Partial).evolveTotal)
    assert.deepStrictEqual(counterexample.map((e) => e._tag), ["Withdrawn"])
    assert.include(violation.description, "evolve returned undefined on event #1")
  })

  it("fold consistency: an evolve that mutates the state in place is caught", () => {
    const InPlace = Aggregate.make({
      ...walletDefinition,
      initialState: { open: false, owner: "", balance: 0 },
      evolve: (state, event) => {
        if (event._tag === "Deposited") {
          ;(state as { balance: number }).balance += event.amount
          return state
        }
        return Wallet.evolve(state, event)
      }
    })
    const { violation } = failing(DeciderLaws.laws(InPlace).foldConsistent)
    assert.include(violation.description, "differs from evolving event by event")
  })

  it("an aggregate without a commands Schema needs a commands arbitrary", () => {
    const { commands: _, ...rest } = walletDefinition
    const NoCommands = Aggregate.make(rest)
    const missing = DeciderLaws.laws(NoCommands).invariants.check([])
    assert(Either.isLeft(missing))
    assert.include(missing.left.description, "no arbitrary for commands")
    const given = DeciderLaws.laws(NoCommands, {
      commands: FastCheck.oneof(
        FastCheck.constant(new Open({ owner: "Ada" })),
        FastCheck.integer({ min: 1, max: 9 }).map((amount) => new Deposit({ amount }))
      )
    })
    assert.isFalse(FastCheck.check(DeciderLaws.property(given.invariants), { numRuns: 50 }).failed)
  })

  it("laws infer their types from the aggregate", () => {
    const laws = DeciderLaws.laws(Wallet)
    const sample = FastCheck.sample(laws.invariants.arbitrary, { numRuns: 5, seed: 1 })
    for (const commands of sample) for (const command of commands) assert(Schema.is(Wallet.commands!)(command))
  })
})
