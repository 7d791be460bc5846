/**
 * The concurrency checks of `EventStoreContract` on one stream: lock exclusivity (reads and other streams never
 * wait) and racing appends with exactly one winner.
 *
 * @internal
 */
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { ensure, ensureEqual, ok, withPatience } from "./contract.js"
import { ev, expectConflict, fixture, numbered, readAllOf, readStream, settle, versions } from "./fixture.js"

export const lockExclusiveCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("locked")
    let firstReleased = false
    const firstHeld = yield* Deferred.make<void>()
    const releaseFirst = yield* Deferred.make<void>()
    const first = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      // runs before the lock's own finalizer (finalizers run in reverse order)
      yield* Effect.addFinalizer(() => Effect.sync(() => firstReleased = true))
      yield* Deferred.succeed(firstHeld, undefined)
      yield* Deferred.await(releaseFirst)
    })))
    yield* withPatience(Deferred.await(firstHeld), "taking a free lock")
    const secondAcquired = yield* Deferred.make<boolean>()
    const second = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "second lock")
      yield* Deferred.succeed(secondAcquired, firstReleased)
    })))
    yield* Effect.sleep(settle)
    const early = yield* Deferred.poll(secondAcquired)
    yield* ensure(Option.isNone(early), "a second lock on the same stream was granted while the first was held")
    yield* Deferred.succeed(releaseFirst, undefined)
    const sawRelease = yield* withPatience(
      Deferred.await(secondAcquired),
      "the second lock after the first is released"
    )
    yield* ensure(sawRelease, "a second lock on the same stream was granted while the first was held")
    yield* Fiber.join(first)
    yield* Fiber.join(second)

    // a waiter that is interrupted does not keep (or later take) the lock
    const holder = yield* Deferred.make<void>()
    const stop = yield* Deferred.make<void>()
    const holding = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      yield* Deferred.succeed(holder, undefined)
      yield* Deferred.await(stop)
    })))
    yield* withPatience(Deferred.await(holder), "taking the lock again")
    const waiter = yield* Effect.forkScoped(Effect.scoped(ok(store.lock(s), "waiting lock")))
    yield* Effect.sleep(settle)
    yield* Fiber.interrupt(waiter)
    yield* Deferred.succeed(stop, undefined)
    yield* Fiber.join(holding)
    yield* withPatience(Effect.scoped(ok(store.lock(s), "lock")), "a lock after an interrupted waiter")

    // a holder that is interrupted releases the lock
    const held = yield* Deferred.make<void>()
    const forever = yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
      yield* ok(store.lock(s), "lock")
      yield* Deferred.succeed(held, undefined)
      return yield* Effect.never
    })))
    yield* withPatience(Deferred.await(held), "taking the lock")
    yield* Fiber.interrupt(forever)
    yield* withPatience(Effect.scoped(ok(store.lock(s), "lock")), "a lock after its holder was interrupted")
  })
)

export const lockDoesNotBlockCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("locked")
    const other = stream("other")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.NoStream), "append")
    yield* ok(store.lock(s), "lock")
    const events = yield* withPatience(readStream(store, s), "read of a locked stream")
    yield* ensureEqual(versions(events), [1, 2], "a locked stream can be read")
    yield* ensureEqual(
      yield* withPatience(ok(store.streamVersion(s), "streamVersion"), "streamVersion of a locked stream"),
      2,
      "streamVersion of a locked stream"
    )
    const all = yield* withPatience(readAllOf(store, { filter: { streamIds: [s] } }), "readAll of a locked stream")
    yield* ensureEqual(all.length, 2, "readAll of a locked stream")
    yield* withPatience(Effect.scoped(ok(store.lock(other), "lock")), "locking another stream while one is locked")
  })
)

export const raceCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const contenders = 12
    for (const [existing, expected] of [[0, ExpectedVersion.NoStream], [3, ExpectedVersion.Exact(3)]] as const) {
      const s = stream(`race${existing}`)
      if (existing > 0) yield* ok(store.append(s, numbered(existing), ExpectedVersion.NoStream), "append")
      const results = yield* Effect.all(
        Array.from(
          { length: contenders },
          (_, i) => Effect.either(store.append(s, [ev("Contender", { i })], expected))
        ),
        { concurrency: "unbounded" }
      )
      const winners = results.filter(Either.isRight)
      yield* ensureEqual(
        winners.length,
        1,
        `${contenders} concurrent appends expecting ${ExpectedVersion.format(expected)}: winners`
      )
      for (const result of results) {
        if (Either.isLeft(result)) {
          yield* expectConflict(Effect.fail(result.left), s, expected, existing + 1, "a losing concurrent append")
        }
      }
      yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing + 1, "only the winner is written")
      const events = yield* readStream(store, s)
      yield* ensureEqual(events.filter((e) => e.type === "Contender").length, 1, "only the winner is written")
    }
  })
)
