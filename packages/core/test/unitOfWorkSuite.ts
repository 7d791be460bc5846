/**
 * The behaviour of `Repository.unitOfWork`, as one suite run on every store: the in-memory one here
 * (UnitOfWork.test.ts) and PostgreSQL (packages/postgres/test/UnitOfWork.test.ts), with real fibers and, on
 * PostgreSQL, real connections.
 */
import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  Repository,
  StreamId
} from "@effect-eventsourcing/core"
import { assert, layer } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Deferred,
  Effect,
  Either,
  Exit,
  Fiber,
  type Layer,
  Option,
  Schedule,
  Schema,
  Stream
} from "effect"

class Deposited extends Schema.TaggedClass<Deposited>()("Deposited", { amount: Schema.Int }) {}
class Withdrawn extends Schema.TaggedClass<Withdrawn>()("Withdrawn", { amount: Schema.Int }) {}
class Insufficient extends Schema.TaggedError<Insufficient>()("Insufficient", { balance: Schema.Int }) {}

/** A positive amount is a deposit, a negative one a withdrawal (refused below a zero balance). */
const Account = Aggregate.make({
  name: "uowaccount",
  events: Schema.Union(Deposited, Withdrawn),
  initialState: { balance: 0 },
  decide: (amount: number, state: { readonly balance: number }) =>
    state.balance + amount < 0
      ? Either.left(new Insufficient({ balance: state.balance }))
      : Either.right([amount < 0 ? new Withdrawn({ amount: -amount }) : new Deposited({ amount })]),
  evolve: (state, event) => ({ balance: state.balance + (event._tag === "Deposited" ? event.amount : -event.amount) })
})

/** Another aggregate type taking part in the same units: one event per transfer. */
class Recorded extends Schema.TaggedClass<Recorded>()("Recorded", { amount: Schema.Int }) {}
const Ledger = Aggregate.make({
  name: "uowledger",
  events: Recorded,
  initialState: { count: 0, total: 0 },
  decide: (amount: number) => Either.right([new Recorded({ amount })]),
  evolve: (state, event) => ({ count: state.count + 1, total: state.total + event.amount })
})

const accounts = Repository.make(Account)
const ledgers = Repository.make(Ledger)
const handle = CommandHandler.make(Account)
/**
 * No per-command retry: within a unit it could not help (nothing is committed before the end); without a unit, a
 * conflict on a transfer's second leg would leave the first one committed.
 */
const leg = CommandHandler.make(Account, { retry: Schedule.stop })
const record = CommandHandler.make(Ledger)
const streamOf = (id: string) => StreamId.unsafeMake("uowaccount", id)

const versionOf = (id: string) => Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion(streamOf(id)))

const eventsOf = (id: string) =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) => Effect.map(Stream.runCollect(store.read(streamOf(id))), Chunk.toReadonlyArray)
  )

/** A transfer as one unit: both legs and the ledger entry, tagged with `correlationId`. */
const transfer = (from: string, to: string, amount: number, correlationId: string) =>
  Effect.gen(function*() {
    yield* leg(from, -amount)
    // let the other units run between the loads and the commit
    yield* Effect.yieldNow()
    yield* leg(to, amount)
    yield* record(`${from}`, amount)
  }).pipe(CommandHandler.withMetadata({ correlationId }))

export const unitOfWorkSuite = <E>(name: string, store: Layer.Layer<EventStore.EventStore, E>) =>
  layer(store, { excludeTestServices: true, timeout: "60 seconds" })(name, (it) => {
    it.effect("identity: a load within the unit sees the unit's own uncommitted appends, as the same state", () =>
      Effect.gen(function*() {
        yield* handle("id-a", 100)
        yield* handle("id-c", 1)
        yield* Repository.unitOfWork(Effect.gen(function*() {
          // two concurrent first loads of one stream: one entry, the same state
          const [c1, c2] = yield* accounts.loadMany(["id-c", "id-c"])
          assert.strictEqual(c1?.state, c2?.state)
          const first = yield* accounts.load("id-a")
          assert.deepStrictEqual([first.version, first.state.balance], [1, 100])
          const written = yield* handle("id-a", -30)
          assert.deepStrictEqual([written.version, written.position], [2, 0])
          const again = yield* accounts.load("id-a")
          assert.deepStrictEqual([again.version, again.state.balance], [2, 70])
          assert.strictEqual(again.state, written.state)
          assert.strictEqual((yield* accounts.load("id-a")).state, again.state)
          // a second append chains on the unit's version
          const chained = yield* handle("id-a", -20)
          assert.deepStrictEqual([chained.version, chained.state.balance], [3, 50])
          // a stream the unit created exists for the unit only
          yield* handle("id-b", 5)
          assert.isTrue(yield* accounts.exists("id-b"))
          const [b] = yield* accounts.loadMany(["id-b"])
          assert.deepStrictEqual(b?.state.balance, 5)
          // nothing reached the store yet
          assert.deepStrictEqual([yield* versionOf("id-a"), yield* versionOf("id-b")], [1, 0])
        }))
        // committed together, in order
        const events = yield* eventsOf("id-a")
        assert.deepStrictEqual(events.map((e) => [e.version, e.type]), [[1, "Deposited"], [2, "Withdrawn"], [
          3,
          "Withdrawn"
        ]])
        assert.deepStrictEqual((yield* accounts.load("id-a")).state.balance, 50)
        assert.deepStrictEqual(yield* versionOf("id-b"), 1)
      }))

    it.effect("Repository.append in a unit checks the unit's version; another aggregate's load folds the pending", () =>
      Effect.gen(function*() {
        yield* handle("ap-a", 10)
        yield* Repository.unitOfWork(Effect.gen(function*() {
          // appended without a load first: the unit's state of the stream is rebuilt from the store and the pending
          yield* accounts.append("ap-a", [new Deposited({ amount: 5 })], ExpectedVersion.Exact(1))
          const stale = yield* Effect.flip(
            accounts.append("ap-a", [new Deposited({ amount: 1 })], ExpectedVersion.Exact(1))
          )
          assert.deepStrictEqual([stale._tag, stale._tag === "ConcurrencyConflict" && stale.actual], [
            "ConcurrencyConflict",
            2
          ])
          const loaded = yield* accounts.load("ap-a")
          assert.deepStrictEqual([loaded.version, loaded.state.balance], [2, 15])
          yield* accounts.append("ap-a", [new Withdrawn({ amount: 3 })], ExpectedVersion.Exact(2))
          assert.deepStrictEqual((yield* accounts.load("ap-a")).state.balance, 12)
          assert.deepStrictEqual(yield* versionOf("ap-a"), 1)
        }))
        assert.deepStrictEqual((yield* accounts.load("ap-a")).state.balance, 12)
        assert.deepStrictEqual(yield* versionOf("ap-a"), 3)
      }))

    it.effect("metadata and command ids apply to the events the unit commits", () =>
      Effect.gen(function*() {
        const unit = Repository.unitOfWork(
          Effect.zipRight(handle("md-a", 10, { commandId: "cmd-1" }), record("md-a", 10, { commandId: "cmd-1" }))
        ).pipe(CommandHandler.withMetadata({ correlationId: "corr-md", causationId: "cause-md" }))
        yield* unit
        const [event] = yield* eventsOf("md-a")
        assert(event !== undefined)
        assert.deepStrictEqual([event.metadata.correlationId, event.metadata.causationId], ["corr-md", "cause-md"])
        assert.isString(event.metadata.traceId)
        // the same unit again (as after an unknown outcome): the store recognises the events by their ids
        yield* unit
        assert.deepStrictEqual(yield* versionOf("md-a"), 1)
        assert.deepStrictEqual((yield* ledgers.load("md-a")).version, 1)
      }))

    it.effect("a unit that fails writes nothing", () =>
      Effect.gen(function*() {
        yield* handle("fail-a", 100)
        const store = yield* EventStore.EventStore
        const logged = Effect.map(
          Stream.runCollect(store.readAll({ filter: { categories: ["uowaccount", "uowledger"] } })),
          (events) => Chunk.filter(events, (e) => e.streamId.includes("-fail-")).length
        )
        const before = yield* logged
        const failed = yield* Effect.flip(
          Repository.unitOfWork(Effect.gen(function*() {
            yield* transfer("fail-a", "fail-b", 40, "fail")
            // the second transfer is refused by the domain (insufficient funds): the whole unit fails
            yield* transfer("fail-a", "fail-b", 80, "fail")
          }))
        )
        assert.strictEqual(failed._tag, "Insufficient")
        assert.deepStrictEqual([yield* versionOf("fail-a"), yield* versionOf("fail-b")], [1, 0])
        assert.strictEqual(yield* logged, before)
        assert.isFalse(yield* ledgers.exists("fail-a"))
      }))

    it.effect("a conflict on any stream fails the whole unit with the typed conflict; nothing is written", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* handle("cf-a", 100)
        yield* handle("cf-b", 100)
        const exit = yield* Effect.exit(Repository.unitOfWork(Effect.gen(function*() {
          yield* transfer("cf-a", "cf-b", 10, "cf")
          // another writer (the raw store: not part of the unit) appends to cf-b meanwhile
          yield* store.append(streamOf("cf-b"), [{ type: "Deposited", data: { amount: 1 } }], ExpectedVersion.Exact(1))
        })))
        assert(Exit.isFailure(exit))
        const error = yield* Effect.flip(exit)
        assert(error instanceof EventStore.ConcurrencyConflict)
        assert.deepStrictEqual([error.streamId, error.expected, error.actual], [
          streamOf("cf-b"),
          ExpectedVersion.Exact(1),
          2
        ])
        assert.deepStrictEqual([yield* versionOf("cf-a"), yield* versionOf("cf-b")], [1, 2])
        assert.isFalse(yield* ledgers.exists("cf-a"))
      }))

    it.effect("the identity map is dropped when the unit ends: a fiber that outlives it reads the store", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        yield* handle("end-a", 100)
        const go = yield* Deferred.make<void>()
        const late = yield* Repository.unitOfWork(Effect.gen(function*() {
          yield* handle("end-a", -1)
          return yield* Effect.forkDaemon(Effect.zipRight(Deferred.await(go), accounts.load("end-a")))
        }))
        yield* store.append(streamOf("end-a"), [{ type: "Deposited", data: { amount: 50 } }], ExpectedVersion.Exact(2))
        yield* Deferred.succeed(go, undefined)
        const loaded = yield* Fiber.join(late)
        assert.deepStrictEqual([loaded.version, loaded.state.balance], [3, 149])
        // and a later unit starts empty
        yield* Repository.unitOfWork(Effect.gen(function*() {
          assert.deepStrictEqual((yield* accounts.load("end-a")).version, 3)
        }))
      }))

    it.effect("concurrent units over overlapping accounts: each all-or-nothing, conflicts typed, total conserved", () =>
      Effect.gen(function*() {
        const store = yield* EventStore.EventStore
        const ids = ["cc-0", "cc-1", "cc-2", "cc-3"]
        yield* Effect.forEach(ids, (id) => handle(id, 1000), { discard: true })
        const units = 24
        const exits = yield* Effect.all(
          Array.from({ length: units }, (_, i) =>
            Effect.exit(Repository.unitOfWork(
              // most transfers go to cc-0: without the unit, their second legs conflict after the first committed
              transfer(ids[i % 4]!, ids[i % 4 === 0 ? 1 : 0]!, 10 + i, `cc-${i}`)
            ))),
          { concurrency: "unbounded" }
        )
        const committed = new Set<number>()
        exits.forEach((exit, i) => {
          if (Exit.isSuccess(exit)) return committed.add(i)
          const error = Cause.failureOption(exit.cause)
          assert(Option.isSome(error) && error.value instanceof EventStore.ConcurrencyConflict, `unit ${i}: ${exit}`)
        })
        assert.isAbove(committed.size, 0)
        const balances = yield* Effect.forEach(ids, (id) => Effect.map(accounts.load(id), (l) => l.state.balance))
        assert.strictEqual(balances.reduce((a, b) => a + b, 0), 4000)
        // every unit wrote all three of its events or none
        const log = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
        for (let i = 0; i < units; i++) {
          const written = log.filter((e) => e.metadata.correlationId === `cc-${i}`).length
          assert.strictEqual(written, committed.has(i) ? 3 : 0, `unit ${i}`)
        }
        const ledger = yield* Effect.forEach(ids, (id) => Effect.map(ledgers.loadOrInitial(id), (l) => l.state.count))
        assert.strictEqual(ledger.reduce((a, b) => a + b, 0), committed.size)
      }))

    it.effect("with a retry Schedule, every concurrent unit eventually commits; the total is conserved", () =>
      Effect.gen(function*() {
        const ids = ["rt-0", "rt-1", "rt-2"]
        yield* Effect.forEach(ids, (id) => handle(id, 1000), { discard: true })
        const units = 12
        yield* Effect.all(
          Array.from(
            { length: units },
            (_, i) =>
              Repository.unitOfWork(transfer(ids[i % 3]!, ids[(i + 1) % 3]!, 1 + i, `rt-${i}`), {
                retry: Schedule.recurs(100)
              })
          ),
          { concurrency: "unbounded", discard: true }
        )
        const balances = yield* Effect.forEach(ids, (id) => Effect.map(accounts.load(id), (l) => l.state.balance))
        assert.strictEqual(balances.reduce((a, b) => a + b, 0), 3000)
        const ledger = yield* Effect.forEach(ids, (id) => Effect.map(ledgers.loadOrInitial(id), (l) => l.state.count))
        assert.strictEqual(ledger.reduce((a, b) => a + b, 0), units)
      }))
  })
