/**
 * Commands with a `commandId`: their events get ids derived from it, so a command handled again after an unknown
 * outcome replays instead of writing twice (issue 12, item 5). The unknown outcome is simulated by a store that
 * commits, then reports `CommitOutcomeUnknown`.
 */
import { CommandHandler, EventStore, InMemoryEventStore, Repository, StreamId } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Schedule, Stream } from "effect"
import * as Uuid from "../src/internal/uuid.js"
import { Deposit, Open, Wallet } from "./fixtures.js"

const wallets = Repository.make(Wallet)
const streamOf = (id: string) => StreamId.unsafeMake("wallet", id)

const lost = () =>
  new EventStore.CommitOutcomeUnknown({ method: "append", cause: new Error("connection lost while committing") })

/**
 * `inner`, except that its next `times` appends (or, with `locks`, its next `times` locked runs) commit, then report
 * an unknown outcome.
 */
const unknownAfterCommit = (
  inner: EventStore.EventStore.Service,
  times: number,
  locks = false
): EventStore.EventStore.Service => {
  let left = times
  const report = <A>(a: A) => left-- > 0 ? Effect.fail(lost()) : Effect.succeed(a)
  return EventStore.make({
    ...inner,
    append: (streamId, events, expected) =>
      locks
        ? inner.append(streamId, events, expected)
        : Effect.flatMap(inner.append(streamId, events, expected), report),
    withLock: (streamId, effect, options) =>
      locks
        ? Effect.flatMap(inner.withLock(streamId, effect, options), report)
        : inner.withLock(streamId, effect, options)
  })
}

const recorded = (id: string) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => Effect.map(Stream.runCollect(store.read(streamOf(id))), Chunk.toReadonlyArray)
  )

describe("name-based uuids", () => {
  it("SHA-1 test vectors (FIPS 180-4)", () => {
    const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("")
    const text = (s: string) => new TextEncoder().encode(s)
    assert.strictEqual(hex(Uuid.sha1(text(""))), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert.strictEqual(hex(Uuid.sha1(text("abc"))), "a9993e364706816aba3e25717850c26c9cd0d89d")
    assert.strictEqual(
      hex(Uuid.sha1(text("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
      "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    )
    assert.strictEqual(hex(Uuid.sha1(new Uint8Array(1_000_000).fill(0x61))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f")
  })

  it("version 5 uuids as RFC 9562 and Python's uuid5 give them; event ids are stable", () => {
    const dns = Uuid.parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8")
    assert.strictEqual(Uuid.v5(dns, "www.example.com"), "2ed6657d-e927-568b-95e1-2665a8aea6a2")
    assert.strictEqual(Uuid.v5(dns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d")
    // pinned: a change would make re-sent commands of stored events conflict instead of replaying
    assert.strictEqual(Uuid.eventId("wallet", "wallet-1", "cmd-1", 0), "a184ac72-5996-5b78-807f-e2c452cd8355")
    assert.notStrictEqual(
      Uuid.eventId("wallet", "wallet-1", "cmd-1", 1),
      Uuid.eventId("wallet", "wallet-1", "cmd-1", 0)
    )
    assert.notStrictEqual(
      Uuid.eventId("wallet", "wallet-1", "cmd-2", 0),
      Uuid.eventId("wallet", "wallet-1", "cmd-1", 0)
    )
  })
})

describe("CommandHandler commandId (in-memory)", () => {
  it.effect("events carry the ids derived from the commandId", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      yield* handle("ids", new Open({ owner: "A" }), { commandId: "open-1" })
      const [event] = yield* recorded("ids")
      assert.strictEqual(event?.id, Uuid.eventId("wallet", "wallet-ids", "open-1", 0))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("a command re-sent after CommitOutcomeUnknown (it had committed) replays: one set of events, the original result", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Wallet, { resend: Schedule.stop })
      yield* handle("a", new Open({ owner: "A" }))
      const first = yield* handle("a", new Deposit({ amount: 5 }), { commandId: "deposit-1" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1)),
        Effect.exit
      )
      assert(Exit.isFailure(first), "the outcome is reported unknown")
      const again = yield* handle("a", new Deposit({ amount: 5 }), { commandId: "deposit-1" })
      const events = yield* recorded("a")
      assert.deepStrictEqual(events.map((e) => e.type), ["Opened", "Deposited"])
      assert.deepStrictEqual(
        { version: again.version, position: again.position, balance: again.state.balance },
        { version: 2, position: events[1]!.position, balance: 5 }
      )
      assert.strictEqual((yield* wallets.load("a")).state.balance, 5)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("after later commands, the re-sent command returns the state at its own version", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Wallet, { resend: Schedule.stop })
      yield* handle("b", new Open({ owner: "B" }))
      yield* Effect.exit(
        handle("b", new Deposit({ amount: 5 }), { commandId: "deposit-b" }).pipe(
          Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1))
        )
      )
      yield* handle("b", new Deposit({ amount: 3 }))
      const again = yield* handle("b", new Deposit({ amount: 5 }), { commandId: "deposit-b" })
      assert.deepStrictEqual([again.version, again.state.balance], [2, 5])
      assert.deepStrictEqual((yield* recorded("b")).map((e) => e.version), [1, 2, 3])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("a re-send whose decide now yields other events fails with EventIdConflict and writes nothing", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Wallet, { resend: Schedule.stop })
      yield* handle("c", new Open({ owner: "C" }))
      yield* Effect.exit(
        handle("c", new Deposit({ amount: 5 }), { commandId: "deposit-c" }).pipe(
          Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1))
        )
      )
      const error = yield* Effect.flip(handle("c", new Deposit({ amount: 6 }), { commandId: "deposit-c" }))
      assert(error instanceof EventStore.EventIdConflict, `got ${error._tag}`)
      assert.deepStrictEqual((yield* recorded("c")).map((e) => e.type), ["Opened", "Deposited"])
      assert.strictEqual((yield* wallets.load("c")).state.balance, 5)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("the handler re-sends the same append itself after CommitOutcomeUnknown (only with a commandId)", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Wallet)
      yield* handle("d", new Open({ owner: "D" }))
      const result = yield* handle("d", new Deposit({ amount: 5 }), { commandId: "deposit-d" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 2))
      )
      assert.deepStrictEqual([result.version, result.state.balance], [2, 5])
      assert.deepStrictEqual((yield* recorded("d")).map((e) => e.type), ["Opened", "Deposited"])
      // without a commandId a re-send could write twice: the unknown outcome is the caller's
      const unsafe = yield* Effect.flip(
        handle("d", new Deposit({ amount: 1 })).pipe(
          Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1))
        )
      )
      assert.strictEqual(unsafe._tag, "CommitOutcomeUnknown")
      // more unknown outcomes than re-sends: the caller gets CommitOutcomeUnknown, and may send the command again
      const givenUp = yield* Effect.flip(
        handle("d", new Deposit({ amount: 7 }), { commandId: "deposit-d2" }).pipe(
          Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 10))
        )
      )
      assert.strictEqual(givenUp._tag, "CommitOutcomeUnknown")
      const again = yield* handle("d", new Deposit({ amount: 7 }), { commandId: "deposit-d2" })
      assert.deepStrictEqual([again.version, again.state.balance], [4, 13])
      assert.deepStrictEqual((yield* recorded("d")).map((e) => e.version), [1, 2, 3, 4])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("with lock: true, an unknown outcome of the locked cycle is resolved by re-sending its append", () =>
    Effect.gen(function*() {
      const inner = yield* EventStore.EventStore
      const handle = CommandHandler.make(Wallet, { lock: true })
      yield* handle("e", new Open({ owner: "E" }))
      const result = yield* handle("e", new Deposit({ amount: 4 }), { commandId: "deposit-e" }).pipe(
        Effect.provideService(EventStore.EventStore, unknownAfterCommit(inner, 1, true))
      )
      assert.deepStrictEqual([result.version, result.state.balance], [2, 4])
      const events = yield* recorded("e")
      assert.deepStrictEqual(events.map((e) => e.type), ["Opened", "Deposited"])
      assert.strictEqual(events[1]?.id, Uuid.eventId("wallet", "wallet-e", "deposit-e", 0))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))
})
