import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  InMemoryEventStore,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Either, Exit, Fiber, Schedule, Stream } from "effect"
import { Deposit, Deposited, Insufficient, Noop, Open, Opened, Wallet, Withdraw } from "./fixtures.js"

const wallets = Repository.make(Wallet)
const streamOf = (id: string) => StreamId.unsafeMake("wallet", id)

describe("CommandHandler", () => {
  it.effect("load → decide → append; returns the new events, state, version and position", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      yield* handle("1", new Open({ owner: "A" }))
      const result = yield* handle("1", new Deposit({ amount: 7 }))
      assert.strictEqual(result.version, 2)
      assert.strictEqual(result.position, 2)
      assert.deepStrictEqual(result.state, { open: true, owner: "A", balance: 7 })
      assert.strictEqual(result.events.length, 1)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("a domain error flows through unchanged and nothing is written", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      yield* handle("2", new Open({ owner: "A" }))
      const error = yield* Effect.flip(handle("2", new Withdraw({ amount: 1 })))
      assert(error instanceof Insufficient)
      assert.strictEqual(error.balance, 0)
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion(streamOf("2")), 1)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("a command that decides no events writes nothing", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      yield* handle("3", new Open({ owner: "A" }))
      const result = yield* handle("3", new Noop())
      assert.deepStrictEqual([result.events.length, result.version, result.position], [0, 1, 0])
      const store = yield* EventStore.EventStore
      assert.strictEqual(Chunk.size(yield* Stream.runCollect(store.readAll())), 1)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("concurrent commands conflict without retries, and all succeed with the default retry", () =>
    Effect.gen(function*() {
      const noRetry = CommandHandler.make(Wallet, { retry: Schedule.stop })
      const withRetry = CommandHandler.make(Wallet)
      yield* withRetry("4", new Open({ owner: "A" }))
      const deposits = (handle: typeof noRetry) =>
        Effect.all(Array.from({ length: 10 }, () => Effect.exit(handle("4", new Deposit({ amount: 1 })))), {
          concurrency: "unbounded"
        })
      const failing = yield* deposits(noRetry)
      const conflicts = failing.filter(Exit.isFailure)
      assert.isAbove(conflicts.length, 0, "without retries concurrent handlers must conflict")
      const retried = yield* deposits(withRetry)
      assert.isTrue(retried.every(Exit.isSuccess))
      const loaded = yield* wallets.load("4")
      assert.strictEqual(loaded.state.balance, 10 - conflicts.length + 10)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("lock: true serialises the cycle, so concurrent commands never conflict even with no retries", () =>
    Effect.gen(function*() {
      const locked = CommandHandler.make(Wallet, { retry: Schedule.stop, lock: true })
      yield* locked("5", new Open({ owner: "A" }))
      const exits = yield* Effect.all(
        Array.from({ length: 10 }, () => Effect.exit(locked("5", new Deposit({ amount: 1 })))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(exits.every(Exit.isSuccess))
      assert.strictEqual((yield* wallets.load("5")).state.balance, 10)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("stores static, per-command and ambient metadata, plus the trace and span ids", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet, {
        metadata: (command) => ({ command: command._tag })
      })
      yield* handle("6", new Open({ owner: "A" })).pipe(
        CommandHandler.withMetadata({ correlationId: "req-1", causationId: "msg-9" }),
        CommandHandler.withMetadata({ userId: "u-1" }),
        Effect.withSpan("request")
      )
      const store = yield* EventStore.EventStore
      const [event] = Chunk.toArray(yield* Stream.runCollect(store.read(streamOf("6"))))
      assert(event !== undefined)
      assert.strictEqual(event.metadata.correlationId, "req-1")
      assert.strictEqual(event.metadata.causationId, "msg-9")
      assert.strictEqual(event.metadata.userId, "u-1")
      assert.strictEqual(event.metadata.command, "Open")
      assert.isString(event.metadata.traceId)
      assert.isString(event.metadata.spanId)
      const request = yield* Effect.withSpan(Effect.currentSpan, "probe")
      assert.notStrictEqual(request.traceId, event.metadata.traceId)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("an invalid aggregate id is a typed InvalidStreamId", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      const error = yield* Effect.flip(handle("", new Open({ owner: "A" })))
      assert(error instanceof StreamId.InvalidStreamId)
      assert(Either.isLeft(StreamId.make("bad-category", "1")))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("withMetadata applies to Repository.append too, under the metadata given to the call", () =>
    Effect.gen(function*() {
      yield* wallets.append("7", [new Opened({ owner: "A" })], ExpectedVersion.NoStream).pipe(
        CommandHandler.withMetadata({ correlationId: "req-2", userId: "u-2" })
      )
      yield* wallets.append("7", [new Deposited({ amount: 1 })], ExpectedVersion.Exact(1), {
        userId: "u-own",
        source: "import"
      }).pipe(CommandHandler.withMetadata({ correlationId: "req-3", userId: "u-3" }))
      yield* wallets.append("7", [new Deposited({ amount: 2 })], ExpectedVersion.Exact(2), { source: "plain" })
      const store = yield* EventStore.EventStore
      const metadata = Chunk.toArray(yield* Stream.runCollect(store.read(streamOf("7")))).map((e) => e.metadata)
      assert.deepStrictEqual(metadata, [
        { correlationId: "req-2", userId: "u-2" },
        { correlationId: "req-3", userId: "u-own", source: "import" },
        { source: "plain" }
      ])
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("the retry Schedule is stepped with conflicts only, never with a domain error", () =>
    Effect.gen(function*() {
      const inputs: Array<unknown> = []
      // a Schedule that reads its input, as its type allows: it would throw on anything but a conflict
      const retry = Schedule.recurs(20).pipe(
        Schedule.whileInput((conflict: EventStore.ConcurrencyConflict) => {
          inputs.push(conflict)
          return conflict.expected._tag === "Exact" && conflict.actual >= 0
        })
      )
      const handle = CommandHandler.make(Wallet, { retry })
      yield* handle("9", new Open({ owner: "A" }))
      // a domain error ends the command at once, with the domain error (not a defect of the Schedule)
      const refused = yield* Effect.flip(handle("9", new Withdraw({ amount: 1 })))
      assert(refused instanceof Insufficient)
      assert.strictEqual(inputs.length, 0)
      // conflicts reach it (and are retried)
      const exits = yield* Effect.all(
        Array.from({ length: 10 }, () => Effect.exit(handle("9", new Deposit({ amount: 1 })))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(exits.every(Exit.isSuccess))
      assert.isAbove(inputs.length, 0, "concurrent commands must have conflicted")
      assert.isTrue(inputs.every((input) => input instanceof EventStore.ConcurrencyConflict))
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("handleUnknown decodes input with the commands Schema: malformed input is a CommandDecodeError, nothing is written", () =>
    Effect.gen(function*() {
      const handle = CommandHandler.make(Wallet)
      const opened = yield* handle.handleUnknown("10", { _tag: "Open", owner: "A" })
      assert.strictEqual(opened.version, 1)
      for (
        const input of [{ _tag: "Deposit", amount: "5" }, { _tag: "Deposit", amount: 1.5 }, { _tag: "Nope" }, null]
      ) {
        const error = yield* Effect.flip(handle.handleUnknown("10", input))
        assert(error instanceof Aggregate.CommandDecodeError, `got ${error._tag}`)
        assert.strictEqual(error.aggregate, "wallet")
      }
      const store = yield* EventStore.EventStore
      assert.strictEqual(yield* store.streamVersion(streamOf("10")), 1)
      const deposited = yield* handle.handleUnknown("10", { _tag: "Deposit", amount: 5 }, { commandId: "d-10" })
      assert.strictEqual(deposited.state.balance, 5)
    }).pipe(Effect.provide(InMemoryEventStore.layer)))

  it.effect("Aggregate.decodeCommand: commands decode to their classes; bad input or no commands Schema is typed", () =>
    Effect.gen(function*() {
      const decode = Aggregate.decodeCommand(Wallet)
      const ok = yield* decode({ _tag: "Withdraw", amount: 3 })
      assert(ok instanceof Withdraw)
      const bad = yield* Effect.flip(decode({ _tag: "Withdraw" }))
      assert.include(bad.message, "amount")
      const Schemaless = Aggregate.make({
        name: "schemaless",
        events: Wallet.events,
        initialState: 0,
        decide: (_: { readonly n: number }) => Either.right([]),
        evolve: (state) => state
      })
      const none = yield* Effect.flip(Aggregate.decodeCommand(Schemaless)({ n: 1 }))
      assert.strictEqual(none._tag, "CommandDecodeError")
    }))

  it.live(
    "lockTimeout: a locked command that cannot get the lock in time fails with LockTimeout, nothing written",
    () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const handle = CommandHandler.make(Wallet, { lock: true, lockTimeout: "100 millis" })
        yield* handle("11", new Open({ owner: "A" }))
        const held = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(
          Effect.scoped(
            Effect.zipRight(
              store.lock(streamOf("11")),
              Effect.zipRight(Deferred.succeed(held, undefined), Effect.never)
            )
          )
        )
        yield* Deferred.await(held)
        const error = yield* Effect.flip(handle("11", new Deposit({ amount: 1 })))
        assert(error instanceof EventStore.LockTimeout, `got ${error._tag}`)
        assert.strictEqual(error.streamId, streamOf("11"))
        const viaLock = yield* Effect.flip(Effect.scoped(store.lock(streamOf("11"), { timeout: "50 millis" })))
        assert.strictEqual(viaLock._tag, "LockTimeout")
        const viaWithLock = yield* Effect.flip(store.withLock(streamOf("11"), Effect.void, { timeout: "50 millis" }))
        assert.strictEqual(viaWithLock._tag, "LockTimeout")
        assert.strictEqual(yield* store.streamVersion(streamOf("11")), 1)
        yield* Fiber.interrupt(holder)
        assert.strictEqual((yield* handle("11", new Deposit({ amount: 1 }))).version, 2)
      }).pipe(Effect.provide(InMemoryEventStore.layer), Effect.timeout("10 seconds")),
    { timeout: 20_000 }
  )
})
