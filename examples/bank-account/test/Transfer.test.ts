/**
 * The transfer process manager on both stores: the demo, a crash between every pair of steps (the process manager's
 * fibers interrupted at the step; on PostgreSQL its connection's backend terminated there too) followed by a
 * restart, timers that fire once across a restart, and a property over random interleavings of transfers with a crash
 * at a random step. Each prints or checks: money conserved, every transfer in exactly one final state, no command's
 * events twice.
 */
import { EventStore, ProcessManager, StreamId, TimerStore } from "@effect-eventsourcing/core"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Chunk, Deferred, Effect, Exit, FastCheck, Option, Scope, Stream } from "effect"
import { CloseAccount, Deposit, OpenAccount } from "../src/Account.js"
import { accounts, handle } from "../src/program.js"
import { makeTransferProcess } from "../src/Transfer.js"
import type { TransferStatus } from "../src/Transfer.js"
import { awaitTransfer, requestTransfer, transfers } from "../src/transfers.js"
import { stores } from "./database.js"

/** A deadline short enough to wait for, retries of the credit never (so that every run takes the same steps). */
const Process = makeTransferProcess({ deadline: "300 millis", retryEvery: "1 hour" })
const runOptions = { timerInterval: "20 millis" } as const

type Scenario = "completed" | "refunded" | "deadline"

/**
 * The test's own reads and set-up after a crash: a connection whose backend the crash terminated may still be handed
 * out once by the pool (an `EventStoreError`), so they are tried again, as a real client would.
 */
const again = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(self, {
    times: 5,
    while: (error) => typeof error === "object" && error !== null && "_tag" in error && error._tag === "EventStoreError"
  })

/** Accounts `<p>-a` (100) and `<p>-b`: open (completed), closed (refunded by the credit's refusal), never opened. */
const setUp = (scenario: Scenario, p: string) =>
  Effect.gen(function*() {
    yield* again(handle(`${p}-a`, new OpenAccount({ owner: "Ada" })))
    yield* again(handle(`${p}-a`, new Deposit({ amount: 100 })))
    if (scenario === "deadline") return
    yield* again(handle(`${p}-b`, new OpenAccount({ owner: "Bob" })))
    if (scenario === "refunded") yield* again(handle(`${p}-b`, new CloseAccount()))
  })

/** The events a transfer's commands wrote, per account, and whether any event id appears twice. */
const written = (transferId: string, ids: ReadonlyArray<string>) =>
  again(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const out: Record<string, Array<string>> = {}
    let duplicates = 0
    for (const id of ids) {
      const events = Chunk.toArray(yield* Stream.runCollect(store.read(StreamId.unsafeMake("account", id))))
      duplicates += events.length - new Set(events.map((e) => e.id)).size
      out[id] = events.filter((e) => e.metadata.correlationId === transferId).map((e) => e.type)
    }
    return { out, duplicates }
  }))

/** What a finished transfer must have written (and nothing more). */
const expected = (status: TransferStatus, p: string): Record<string, Array<string>> =>
  status === "completed"
    ? { [`${p}-a`]: ["Withdrawn"], [`${p}-b`]: ["Deposited"] }
    : status === "refunded"
    ? { [`${p}-a`]: ["Withdrawn", "Deposited"], [`${p}-b`]: [] }
    : { [`${p}-a`]: [], [`${p}-b`]: [] }

const balanceOf = (id: string) =>
  accounts.load(id).pipe(
    Effect.map((loaded) => loaded.state.balance),
    Effect.catchTag("AggregateNotFound", () => Effect.succeed(0)),
    again
  )

/** How often each timer fired in the instance's stream. */
const firings = (transferId: string) =>
  again(Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    const events = yield* Stream.runCollect(store.read(StreamId.unsafeMake(Process.name, transferId)))
    const counts = new Map<string, number>()
    for (const e of events) {
      if (e.type !== "TimerFired") continue
      const timerId = (e.data as { readonly timerId: string }).timerId
      counts.set(timerId, (counts.get(timerId) ?? 0) + 1)
    }
    return Array.from(counts.values())
  }))

/**
 * Runs the process manager until its `k`-th step of the transfer (from 0), where it stops for good (the backend of
 * its connection terminated first on PostgreSQL), then closes it: the step it died before, or `None` when the
 * transfer finished first.
 */
const runUntilStep = (
  k: number | ((step: ProcessManager.Step) => boolean),
  transferId: string,
  start: Effect.Effect<unknown, unknown, EventStore.EventStore>
) =>
  Effect.gen(function*() {
    const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
    const crashed = yield* Deferred.make<ProcessManager.Step>()
    let count = 0
    const onStep = (step: ProcessManager.Step) =>
      Effect.suspend(() => {
        if (step.correlationId !== transferId) return Effect.void
        const index = count++
        if (typeof k === "number" ? index !== k : !k(step)) return Effect.void
        return Deferred.succeed(crashed, step).pipe(
          Effect.zipRight(
            Option.isSome(sql) ? Effect.ignore(sql.value`select pg_terminate_backend(pg_backend_pid())`) : Effect.void
          ),
          Effect.zipRight(Effect.never)
        )
      })
    const scope = yield* Scope.make()
    yield* Scope.extend(ProcessManager.forkScoped(Process, { ...runOptions, onStep }), scope)
    yield* Effect.orDie(start)
    const outcome = yield* Effect.raceFirst(
      Effect.map(Deferred.await(crashed), Option.some),
      Effect.as(Effect.orDie(again(awaitTransfer(Process, transferId))), Option.none<ProcessManager.Step>())
    )
    yield* Scope.close(scope, Exit.void)
    return outcome
  })

/** Restarts the process manager and waits for the transfer to finish. */
const restart = (transferId: string) =>
  Effect.scoped(Effect.zipRight(
    ProcessManager.forkScoped(Process, runOptions),
    Effect.orDie(again(awaitTransfer(Process, transferId)))
  ))

const transfer = FastCheck.record({
  from: FastCheck.integer({ min: 0, max: 3 }),
  to: FastCheck.integer({ min: 0, max: 4 }), // 3 is closed, 4 never opened
  amount: FastCheck.integer({ min: 1, max: 60 })
}).filter((t) => t.from !== t.to && t.from !== 3)

let runs = 0

/**
 * Accounts `a`, `b`, `c` with 100 each, `d` closed, `e` never opened; the transfers are requested concurrently while
 * the process manager runs, which dies at step `crashAt` (of any transfer; its backend terminated on PostgreSQL) and is
 * restarted. Then: the money of a, b and c is conserved, every transfer is completed, refunded or failed, and its
 * commands wrote exactly what its final state says, once.
 */
const property = (list: ReadonlyArray<{ from: number; to: number; amount: number }>, crashAt: number) =>
  Effect.gen(function*() {
    const p = `pbt${runs++}`
    const names = ["a", "b", "c", "d", "e"].map((x) => `${p}-${x}`)
    for (const [i, name] of names.slice(0, 4).entries()) {
      yield* handle(name, new OpenAccount({ owner: name }))
      if (i < 3) yield* handle(name, new Deposit({ amount: 100 }))
    }
    yield* handle(names[3]!, new CloseAccount())
    const ids = list.map((_, i) => `${p}-t${i}`)
    const sql = yield* Effect.serviceOption(SqlClient.SqlClient)
    const scope = yield* Scope.make()
    let count = 0
    const died = yield* Deferred.make<void>()
    const onStep = (step: ProcessManager.Step) =>
      Effect.suspend(() =>
        !step.correlationId.startsWith(`${p}-`) || count++ !== crashAt ?
          Effect.void :
          Deferred.succeed(died, void 0).pipe(
            Effect.zipRight(
              Option.isSome(sql) ? Effect.ignore(sql.value`select pg_terminate_backend(pg_backend_pid())`) : Effect.void
            ),
            Effect.zipRight(Effect.never)
          )
      )
    yield* Scope.extend(ProcessManager.forkScoped(Process, { ...runOptions, onStep }), scope)
    yield* Effect.forEach(
      list,
      (t, i) => Effect.orDie(requestTransfer(ids[i]!, names[t.from]!, names[t.to]!, t.amount)),
      { concurrency: "unbounded" }
    )
    yield* Effect.raceFirst(
      Deferred.await(died),
      Effect.forEach(ids, (id) => Effect.orDie(again(awaitTransfer(Process, id))), { discard: true })
    )
    yield* Scope.close(scope, Exit.void)
    const states = yield* Effect.scoped(Effect.zipRight(
      ProcessManager.forkScoped(Process, runOptions),
      Effect.forEach(ids, (id) => Effect.orDie(again(awaitTransfer(Process, id))))
    ))
    let total = 0
    for (const name of names.slice(0, 3)) total += yield* balanceOf(name)
    assert.strictEqual(total, 300)
    const store = yield* EventStore.EventStore
    const events: Array<EventStore.RecordedEvent> = []
    for (const name of names.slice(0, 4)) {
      events.push(...Chunk.toArray(yield* Stream.runCollect(store.read(StreamId.unsafeMake("account", name)))))
    }
    assert.strictEqual(new Set(events.map((e) => e.id)).size, events.length)
    for (const [i, state] of states.entries()) {
      assert.include(["completed", "refunded", "failed"], state.status)
      const got = events.filter((e) => e.metadata.correlationId === ids[i]).sort((x, y) => x.position - y.position)
        .map((e) => `${StreamId.id(e.streamId)} ${e.type}`)
      const from = names[list[i]!.from]!
      const to = names[list[i]!.to]!
      assert.deepStrictEqual(
        got,
        state.status === "completed"
          ? [`${from} Withdrawn`, `${to} Deposited`]
          : state.status === "refunded"
          ? [`${from} Withdrawn`, `${from} Deposited`]
          : []
      )
      if (state.status === "completed") assert.notInclude([names[3], names[4]], to)
    }
  })

for (const [storeName, store] of stores("bank_transfer")) {
  layer(store, { excludeTestServices: true, timeout: "120 seconds" })(`transfers on ${storeName}`, (it) => {
    it.effect(
      "the demo: completed, refunded (closed target), completed (late target), refunded (deadline)",
      () =>
        Effect.gen(function*() {
          const { balances, outcomes } = yield* transfers("demo")
          assert.deepStrictEqual(outcomes, ["completed", "refunded", "completed", "refunded"])
          assert.deepStrictEqual(balances, [60, 30, 0, 10])
        }),
      60_000
    )

    for (const scenario of ["completed", "refunded", "deadline"] as const) {
      it.effect(`crash before every step, then restart: ${scenario}`, () =>
        Effect.gen(function*() {
          const rows: Array<string> = []
          for (let k = 0; k < 100; k++) {
            const p = `${scenario}${k}`
            const transferId = `${p}-t`
            yield* setUp(scenario, p)
            const crashed = yield* runUntilStep(k, transferId, requestTransfer(transferId, `${p}-a`, `${p}-b`, 30))
            if (Option.isNone(crashed)) {
              assert.isAtLeast(k, 4, "a transfer takes at least four steps")
              break
            }
            const state = yield* restart(transferId)
            const { duplicates, out } = yield* written(transferId, [`${p}-a`, `${p}-b`])
            const total = (yield* balanceOf(`${p}-a`)) + (yield* balanceOf(`${p}-b`))
            const fired = yield* firings(transferId)
            rows.push(
              `| ${storeName} | ${scenario} | ${k} | ${crashed.value.step} ${crashed.value.detail} | ${state.status} | ` +
                `${total === 100 ? "conserved" : `NOT conserved: ${total}`} | ${duplicates} | ${
                  fired.every((n) => n === 1) ? "once" : `fired ${fired.join(",")}`
                } |`
            )
            assert.strictEqual(state.status, scenario === "completed" ? "completed" : "refunded")
            assert.deepStrictEqual(out, expected(state.status, p))
            assert.strictEqual(total, 100)
            assert.strictEqual(duplicates, 0)
            assert(fired.every((n) => n === 1), `a timer fired ${fired.join(",")} times`)
          }
          assert.isAtLeast(rows.length, 4)
          yield* Effect.sync(() =>
            console.log(
              [
                `crash before step k, then restart (${storeName}, ${scenario}):`,
                "| store | scenario | k | crashed before | outcome | money | duplicate events | timers |",
                "|---|---|---|---|---|---|---|---|",
                ...rows
              ].join("\n")
            )
          )
        }))
    }

    it.effect("a timer due while the process manager is down fires once after the restart", () =>
      Effect.gen(function*() {
        const p = "downtime"
        yield* setUp("deadline", p)
        // the process manager dies as the deadline (300 ms) comes due, before it fires it
        const crashed = yield* runUntilStep(
          (step) => step.step === "fire",
          `${p}-t`,
          requestTransfer(`${p}-t`, `${p}-a`, `${p}-b`, 30)
        )
        assert(Option.isSome(crashed))
        const timers = yield* TimerStore.TimerStore
        const pending = yield* timers.pending(Process.name, `${p}-t`)
        assert.deepStrictEqual(pending.map((t) => t.name), ["deadline", "retry-credit"])
        assert.deepStrictEqual(yield* firings(`${p}-t`), [])
        yield* Effect.sleep("400 millis")
        const state = yield* restart(`${p}-t`)
        assert.strictEqual(state.status, "refunded")
        assert.deepStrictEqual(yield* firings(`${p}-t`), [1])
        assert.deepStrictEqual((yield* timers.pending(Process.name, `${p}-t`)).map((t) => t.name), ["retry-credit"])
        // running again fires nothing twice
        yield* Effect.scoped(
          Effect.zipRight(ProcessManager.forkScoped(Process, runOptions), Effect.sleep("100 millis"))
        )
        assert.deepStrictEqual(yield* firings(`${p}-t`), [1])
      }))

    it.effect("two process managers at once (two processes): every timer fires once, every refund happens once", () =>
      Effect.gen(function*() {
        const ids = Array.from({ length: 6 }, (_, i) => `twice${i}`)
        for (const p of ids) yield* setUp("deadline", p)
        // both poll for timers every 5 ms; one holds the subscription's lease, the other waits for it
        let fires = 0
        const fast = {
          timerInterval: "5 millis",
          onStep: (step: ProcessManager.Step) =>
            Effect.sync(() => step.step === "fire" && step.detail === "deadline" && fires++)
        } as const
        const states = yield* Effect.scoped(Effect.gen(function*() {
          yield* ProcessManager.forkScoped(Process, fast)
          yield* ProcessManager.forkScoped(Process, fast)
          yield* Effect.forEach(ids, (p) => requestTransfer(`${p}-t`, `${p}-a`, `${p}-b`, 30), { discard: true })
          return yield* Effect.forEach(ids, (p) => awaitTransfer(Process, `${p}-t`))
        }))
        for (const [i, p] of ids.entries()) {
          assert.strictEqual(states[i]!.status, "refunded")
          assert.deepStrictEqual((yield* written(`${p}-t`, [`${p}-a`, `${p}-b`])).out, expected("refunded", p))
          assert.deepStrictEqual(yield* firings(`${p}-t`), [1])
          assert.strictEqual(yield* balanceOf(`${p}-a`), 100)
        }
        yield* Effect.sync(() => console.log(`two process managers: ${fires} firings of ${ids.length} deadlines`))
      }))

    it.effect.prop(
      "random interleavings of transfers with a crash at a random step: money conserved, each finished once",
      { list: FastCheck.array(transfer, { minLength: 1, maxLength: 6 }), crashAt: FastCheck.nat({ max: 40 }) },
      ({ crashAt, list }) => property(list, crashAt),
      { timeout: 120_000, fastCheck: { numRuns: storeName === "memory" ? 25 : 8 } }
    )
  })
}
