/**
 * Group commit: concurrent appends forced into one `append_batch` statement (the statements in flight are held up on
 * the positions lock, taken by the test on a connection of its own, while the others queue), each with its own
 * outcome; and the log afterwards has no gap in any stream and no duplicate.
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, Stream, Tracer } from "effect"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("group_commit")

const positionsKey = "hashtextextended('effect-eventsourcing:event_store:positions', 0)"

let counter = 0
const stream = (label: string) => StreamId.unsafeMake("acc", `${label}${++counter}`)
const ev = (n: number, id?: string): EventStore.EventData =>
  id === undefined ? { type: "Deposited", data: { amount: n } } : { id, type: "Deposited", data: { amount: n } }

/** Records the `db.query.text` of every `sql.execute` span of the effect it wraps (and of fibers it forks). */
const recordingQueries = <A, E, R>(effect: Effect.Effect<A, E, R>, texts: Array<string> = []) =>
  Effect.flatMap(Effect.tracer, (tracer) => {
    const recording = Tracer.make({
      context: tracer.context,
      span: (name, parent, context, links, startTime, kind, options) => {
        const span = tracer.span(name, parent, context, links, startTime, kind, options)
        if (name !== "sql.execute") return span
        const attribute = span.attribute.bind(span)
        return Object.assign(span, {
          attribute: (key: string, value: unknown) => {
            if (key === "db.query.text" && typeof value === "string") texts.push(value)
            attribute(key, value)
          }
        })
      }
    })
    return Effect.map(Effect.withTracer(effect, recording), (a) => [a, texts] as const)
  })

type Outcome = Either.Either<EventStore.AppendResult, EventStore.AppendError>

/**
 * Runs `appends` concurrently while two blocker appends wait on the positions lock (with `maxInFlight` 2, each alone in
 * a statement; with 1, the first alone and the second queued): every one of `appends` queues, and they go together
 * in the statement after a blocker's.
 */
const forcedBatch = (
  store: EventStore.EventStore.Service,
  appends: ReadonlyArray<Effect.Effect<EventStore.AppendResult, EventStore.AppendError>>,
  meanwhile: Effect.Effect<void, unknown> = Effect.void
) =>
  Effect.scoped(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const holder = yield* sql.reserve
    yield* holder.executeUnprepared(`select pg_advisory_lock(${positionsKey})`, [], undefined)
    const blockers = yield* Effect.forEach(
      [1, 2],
      (n) => Effect.fork(store.append(stream("blocker"), [ev(n)], ExpectedVersion.NoStream))
    )
    yield* Effect.sleep("300 millis")
    const fibers = yield* Effect.forEach(appends, (append) => Effect.fork(Effect.either(append)))
    yield* Effect.sleep("300 millis")
    yield* meanwhile
    yield* holder.executeUnprepared(`select pg_advisory_unlock(${positionsKey})`, [], undefined)
    for (const blocker of blockers) yield* Fiber.join(blocker)
    return yield* Effect.forEach(fibers, Fiber.join) as Effect.Effect<ReadonlyArray<Outcome>>
  }))

const conflictOf = (outcome: Outcome): EventStore.ConcurrencyConflict => {
  assert(Either.isLeft(outcome), `expected a conflict, got ${JSON.stringify(outcome)}`)
  assert(outcome.left instanceof EventStore.ConcurrencyConflict, `expected a conflict, got ${outcome.left._tag}`)
  return outcome.left
}

const okOf = (outcome: Outcome): EventStore.AppendResult => {
  assert(Either.isRight(outcome), `expected success, got ${JSON.stringify(outcome)}`)
  return outcome.right
}

layer(Database.layer, { excludeTestServices: true, timeout: "60 seconds" })("PostgresEventStore group commit", (it) => {
  it.scoped("one statement for many requests, each with its own outcome; no gaps, no duplicates", () =>
    Effect.gen(function*() {
      const store = yield* PostgresEventStore.make()
      // streams that exist before the batch
      const existing = stream("existing")
      const exact = stream("exact")
      const replayed = stream("replayed")
      const elsewhere = stream("elsewhere")
      const raced = stream("raced")
      const replayId = globalThis.crypto.randomUUID()
      const takenId = globalThis.crypto.randomUUID()
      yield* store.append(existing, [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      yield* store.append(exact, [ev(1), ev(2), ev(3)], ExpectedVersion.NoStream)
      const original = yield* store.append(replayed, [ev(7, replayId)], ExpectedVersion.NoStream)
      yield* store.append(elsewhere, [ev(8, takenId)], ExpectedVersion.NoStream)
      // streams new to the batch
      const fresh = stream("fresh")
      const shared = stream("shared")
      const chained = stream("chained")
      const missing = stream("missing")
      const anyFresh = stream("any")
      const idConflict = stream("idconflict")

      const sql = yield* SqlClient.SqlClient
      const requests: ReadonlyArray<readonly [string, Effect.Effect<EventStore.AppendResult, EventStore.AppendError>]> =
        [
          ["fresh", store.append(fresh, [ev(1), ev(2)], ExpectedVersion.NoStream)],
          ["shared a", store.append(shared, [ev(1)], ExpectedVersion.NoStream)],
          ["existing", store.append(existing, [ev(4)], ExpectedVersion.NoStream)],
          ["shared b", store.append(shared, [ev(2)], ExpectedVersion.NoStream)],
          ["exact ok", store.append(exact, [ev(4)], ExpectedVersion.Exact(3))],
          ["exact stale", store.append(existing, [ev(5)], ExpectedVersion.Exact(1))],
          ["chained a", store.append(chained, [ev(1)], ExpectedVersion.Any)],
          ["missing", store.append(missing, [ev(1)], ExpectedVersion.StreamExists)],
          ["chained b", store.append(chained, [ev(2), ev(3)], ExpectedVersion.Any)],
          ["any", store.append(anyFresh, [ev(1)], ExpectedVersion.Any)],
          ["replay", store.append(replayed, [ev(7, replayId)], ExpectedVersion.NoStream)],
          ["id conflict", store.append(idConflict, [ev(9, takenId)], ExpectedVersion.Any)],
          ["raced", store.append(raced, [ev(2)], ExpectedVersion.Any)]
        ]
      // a writer outside the batch: its version 1 of `raced` is inserted (not yet committed) before the batch runs,
      // so the batch reads version 0 and its insert of version 1 waits for this transaction, then is skipped
      const outsider = yield* sql.reserve
      yield* outsider.executeUnprepared("begin", [], undefined)
      yield* outsider.executeUnprepared(
        `select * from event_store.append_one($1, 'acc', -1, $2::jsonb, now(), null)`,
        [raced, JSON.stringify([{ id: globalThis.crypto.randomUUID(), type: "Deposited", data: 1, metadata: {} }])],
        undefined
      )
      const commitOutsider = Effect.fork(
        Effect.zipRight(Effect.sleep("300 millis"), outsider.executeUnprepared("commit", [], undefined))
      )
      const [outcomes, texts] = yield* recordingQueries(
        forcedBatch(store, requests.map(([, append]) => append), Effect.asVoid(commitOutsider))
      )
      const by = new Map(requests.map(([name], i) => [name, outcomes[i]!]))
      const at = (name: string) => by.get(name)!

      // every queued request of the mix went in ONE statement (the second NoStream of `shared` and the Exact of
      // `existing` found a request of their stream waiting, and went alone: see the next test)
      assert.strictEqual(texts.filter((text) => text.includes(".append_batch(")).length, 1)

      assert.strictEqual(okOf(at("fresh")).version, 2)
      // two NoStream on one stream: exactly one of them wins; the other sees its version
      const sharedOutcomes = [at("shared a"), at("shared b")]
      assert.strictEqual(sharedOutcomes.filter(Either.isRight).length, 1)
      assert.strictEqual(conflictOf(sharedOutcomes.find(Either.isLeft)!).actual, 1)
      assert.strictEqual(conflictOf(at("existing")).actual, 3)
      assert.strictEqual(okOf(at("exact ok")).version, 4)
      assert.strictEqual(conflictOf(at("exact stale")).actual, 3)
      // Any after Any on one stream: the later one goes on from the earlier one's version, in either order
      const chainedVersions = [okOf(at("chained a")).version, okOf(at("chained b")).version].sort()
      assert.isTrue(
        JSON.stringify(chainedVersions) === "[1,3]" || JSON.stringify(chainedVersions) === "[2,3]",
        JSON.stringify(chainedVersions)
      )
      assert.strictEqual(conflictOf(at("missing")).actual, 0)
      assert.strictEqual(okOf(at("any")).version, 1)
      // the same event id re-sent: the original result, nothing written twice
      assert.deepStrictEqual(okOf(at("replay")), original)
      const idOutcome = at("id conflict")
      assert(Either.isLeft(idOutcome) && idOutcome.left instanceof EventStore.EventIdConflict)
      // raced by the outsider's version 1: sent again, appended after it
      assert.strictEqual(okOf(at("raced")).version, 2)

      // the log: every stream's versions are 1..n, no event twice, every success's position is its last event's
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
      const ids = new Set(all.map((event) => event.id))
      assert.strictEqual(ids.size, all.length)
      const versions = new Map<string, Array<number>>()
      for (const event of all) versions.set(event.streamId, [...(versions.get(event.streamId) ?? []), event.version])
      for (const [id, list] of versions) {
        assert.deepStrictEqual(list, list.map((_, i) => i + 1), `versions of ${id}`)
      }
      assert.deepStrictEqual(versions.get(shared), [1])
      assert.deepStrictEqual(versions.get(existing), [1, 2, 3])
      assert.deepStrictEqual(versions.get(missing), undefined)
      assert.deepStrictEqual(versions.get(idConflict), undefined)
      assert.deepStrictEqual(versions.get(chained), [1, 2, 3])
      for (const outcome of outcomes) {
        if (Either.isLeft(outcome)) continue
        const last = all.find((event) => event.position === outcome.right.position)
        assert.isDefined(last)
      }
      // positions ascend with no duplicates
      const positions = all.map((event) => event.position)
      assert.deepStrictEqual(positions, [...positions].sort((a, b) => a - b))
    }))

  it.scoped("an Exact or NoStream append to a stream with a request waiting is sent at once, alone; Any queues", () =>
    Effect.gen(function*() {
      const store = yield* PostgresEventStore.make()
      const contended = stream("contended")
      const other = stream("other")
      yield* store.append(contended, [ev(1)], ExpectedVersion.NoStream)
      const sql = yield* SqlClient.SqlClient
      const [outcomes, texts] = yield* recordingQueries(Effect.scoped(Effect.gen(function*() {
        const holder = yield* sql.reserve
        yield* holder.executeUnprepared(`select pg_advisory_lock(${positionsKey})`, [], undefined)
        // the first takes the free slot (its statement waits on the positions lock); the second and third find it
        // waiting: the Exact one is sent at once, the Any one queues behind the statement in flight
        const first = yield* Effect.fork(Effect.either(store.append(contended, [ev(2)], ExpectedVersion.Exact(1))))
        yield* Effect.sleep("200 millis")
        const second = yield* Effect.fork(Effect.either(store.append(contended, [ev(3)], ExpectedVersion.Exact(1))))
        const third = yield* Effect.fork(Effect.either(store.append(contended, [ev(4)], ExpectedVersion.Any)))
        const elsewhere = yield* Effect.fork(Effect.either(store.append(other, [ev(5)], ExpectedVersion.NoStream)))
        yield* Effect.sleep("300 millis")
        yield* holder.executeUnprepared(`select pg_advisory_unlock(${positionsKey})`, [], undefined)
        return yield* Effect.forEach([first, second, third, elsewhere], Fiber.join)
      })))
      // statements: the first's and the second's `append_one`, both sent before the lock was released (queued, the
      // second would have gone in the batch); then one `append_batch` for the Any request and the other stream's
      // (queued together), and the loser's `append_one` again (the unique key violated: its check runs again)
      const appends = texts.filter((text) => text.includes(".append_"))
      assert.isTrue(appends[0]!.includes(".append_one(") && appends[1]!.includes(".append_one("), appends.join("\n"))
      assert.strictEqual(appends.filter((text) => text.includes(".append_batch(")).length, 1)
      // one of the two Exact(1) wins, the other conflicts (with version 2, or 3 when the Any committed before its
      // check); the Any goes on after the winner
      const exacts = [outcomes[0]!, outcomes[1]!]
      assert.strictEqual(exacts.filter(Either.isRight).length, 1)
      assert.strictEqual(okOf(exacts.find(Either.isRight)!).version, 2)
      assert.include([2, 3], conflictOf(exacts.find(Either.isLeft)!).actual)
      assert.strictEqual(okOf(outcomes[2]!).version, 3)
      assert.strictEqual(okOf(outcomes[3]!).version, 1)
      assert.strictEqual(yield* store.streamVersion(contended), 3)
    }))

  it.scoped("an append of 16 events or more is sent at once, alone; smaller ones queue", () =>
    Effect.gen(function*() {
      const store = yield* PostgresEventStore.make()
      const sql = yield* SqlClient.SqlClient
      const events = (n: number) => Array.from({ length: n }, (_, i) => ev(i + 1))
      const texts: Array<string> = []
      const [[sentBefore, all]] = yield* recordingQueries(
        Effect.scoped(Effect.gen(function*() {
          const holder = yield* sql.reserve
          yield* holder.executeUnprepared(`select pg_advisory_lock(${positionsKey})`, [], undefined)
          const blocker = yield* Effect.fork(
            Effect.either(store.append(stream("blocker"), [ev(1)], ExpectedVersion.NoStream))
          )
          yield* Effect.sleep("200 millis")
          const appends = yield* Effect.forEach(
            [16, 15, 2],
            (n) => Effect.fork(Effect.either(store.append(stream(`size${n}_`), events(n), ExpectedVersion.NoStream)))
          )
          yield* Effect.sleep("300 millis")
          // while the lock is held: the blocker's statement and the 16-event one's have been sent, nothing else
          const sentBefore = texts.filter((text) => text.includes(".append_")).length
          yield* holder.executeUnprepared(`select pg_advisory_unlock(${positionsKey})`, [], undefined)
          const all = yield* Effect.forEach([blocker, ...appends], Fiber.join)
          return [sentBefore, all] as const
        })),
        texts
      )
      assert.strictEqual(sentBefore, 2)
      const appends = texts.filter((text) => text.includes(".append_"))
      assert.strictEqual(appends.filter((text) => text.includes(".append_one(")).length, 2)
      // the 15-event and the 2-event appends went together
      assert.strictEqual(appends.filter((text) => text.includes(".append_batch(")).length, 1)
      assert.deepStrictEqual(all.map((outcome) => okOf(outcome).version), [1, 16, 15, 2])
    }))

  it.scoped("groupCommit.maxBatch bounds a statement's requests; an invalid one is refused", () =>
    Effect.gen(function*() {
      for (const maxBatch of [0, -1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(PostgresEventStore.make({ groupCommit: { maxBatch } }))
        assert.strictEqual(error._tag, "EventStoreError")
      }
      // two statements in flight: both blockers go alone, the 7 appends queue
      const store = yield* PostgresEventStore.make({ groupCommit: { maxBatch: 3, maxInFlight: 2 } })
      const appends = [1, 2, 3, 4, 5, 6, 7].map((n) =>
        store.append(stream("bounded"), [ev(n)], ExpectedVersion.NoStream)
      )
      const [outcomes, texts] = yield* recordingQueries(forcedBatch(store, appends))
      // 7 queued requests: statements of 3, 3 and 1 (the last one alone, on the single-request path)
      assert.strictEqual(texts.filter((text) => text.includes(".append_batch(")).length, 2)
      for (const outcome of outcomes) assert.strictEqual(okOf(outcome).version, 1)
    }))

  it.scoped("groupCommit.maxInFlight: statements in flight at once (default 1); an invalid one is refused", () =>
    Effect.gen(function*() {
      for (const maxInFlight of [0, -1, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(PostgresEventStore.make({ groupCommit: { maxInFlight } }))
        assert.strictEqual(error._tag, "EventStoreError")
      }
      for (const [maxInFlight, alone] of [[undefined, 1], [1, 1], [2, 2]] as const) {
        const store = yield* PostgresEventStore.make({ groupCommit: { maxInFlight } })
        const appends = [1, 2, 3].map((n) => store.append(stream("inflight"), [ev(n)], ExpectedVersion.NoStream))
        const [outcomes, texts] = yield* recordingQueries(forcedBatch(store, appends))
        for (const outcome of outcomes) assert.strictEqual(okOf(outcome).version, 1)
        // the blockers that found a free slot went alone; the other blocker (if any) queued with the appends
        assert.strictEqual(texts.filter((text) => text.includes(".append_one(")).length, alone, String(maxInFlight))
        assert.strictEqual(texts.filter((text) => text.includes(".append_batch(")).length, 1, String(maxInFlight))
      }
    }))

  it.scoped("a queued append whose caller is interrupted before its statement is left out of it", () =>
    Effect.gen(function*() {
      const store = yield* PostgresEventStore.make()
      const id = stream("interrupted")
      const kept = [1, 2].map((n) => store.append(stream("kept"), [ev(n)], ExpectedVersion.NoStream))
      const queued = yield* Effect.forkDaemon(store.append(id, [ev(9)], ExpectedVersion.NoStream)).pipe(
        // forked before the blockers' statements end: it queues behind them
        Effect.delay("350 millis"),
        Effect.fork
      )
      const outcomes = yield* forcedBatch(
        store,
        kept,
        Effect.flatMap(Fiber.join(queued), (fiber) => Fiber.interrupt(fiber))
      )
      for (const outcome of outcomes) assert.strictEqual(okOf(outcome).version, 1)
      assert.strictEqual(yield* store.streamVersion(id), 0)
    }))

  it.scoped("groupCommit: false sends every append alone", () =>
    Effect.gen(function*() {
      const store = yield* PostgresEventStore.make({ groupCommit: false })
      const appends = [1, 2, 3, 4].map((n) => store.append(stream("alone"), [ev(n)], ExpectedVersion.NoStream))
      const [outcomes, texts] = yield* recordingQueries(forcedBatch(store, appends))
      assert.strictEqual(texts.filter((text) => text.includes(".append_batch(")).length, 0)
      for (const outcome of outcomes) assert.strictEqual(okOf(outcome).version, 1)
    }))
})
