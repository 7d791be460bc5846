/**
 * The subscription checks of `EventStoreContract`: catch-up then live, a commit held in flight (through the
 * caller's `CommitHold`), and many concurrent writers: every event once, in position order.
 *
 * @internal
 */
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type { HeldCommit } from "../EventStoreContract.js"
import type { ContractViolation } from "./contract.js"
import { ensure, ensureEqual, fail, ok, withPatience } from "./contract.js"
import {
  collect,
  ensureExactlyOnceInOrder,
  ensureIncreasingPositions,
  ev,
  fixture,
  ids,
  numbered,
  positions,
  readAllOf,
  settle
} from "./fixture.js"
import { show } from "./values.js"

export const subscribeCatchUpThenLiveCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("sub")
    const other = stream("other")
    yield* ok(store.append(s, numbered(5), ExpectedVersion.NoStream), "append")
    yield* ok(store.append(other, numbered(2, "Other"), ExpectedVersion.NoStream), "append")
    const caughtUp = yield* Deferred.make<void>()
    const subscriber = yield* Effect.forkScoped(
      collect(
        store.subscribe({ filter: { categories: [category] } }),
        (event) => event.type === "End",
        "subscribe (catch-up then live)",
        (seen) => seen.length === 7 ? Deferred.succeed(caughtUp, undefined) : Effect.void
      )
    )
    yield* withPatience(Deferred.await(caughtUp), "the subscription catching up with 7 stored events")
    yield* ok(store.append(s, numbered(3, "Live"), ExpectedVersion.Exact(5)), "append")
    yield* ok(store.append(other, [ev("End", {})], ExpectedVersion.Exact(2)), "append")
    const delivered = yield* Fiber.join(subscriber)
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 11, "readAll of the category")
    yield* ensureExactlyOnceInOrder(delivered, all, "subscribe")

    const fromFourth = yield* collect(
      store.subscribe({ from: all[3]!.position, filter: { categories: [category] } }),
      (event) => event.type === "End",
      "subscribe from a position"
    )
    yield* ensureExactlyOnceInOrder(fromFourth, all.slice(3), "subscribe from a position (inclusive)")

    const filtered = yield* collect(
      store.subscribe({ filter: { streamIds: [s], types: ["Live"] } }),
      (_, seen) => seen.length === 3,
      "subscribe with a stream and type filter"
    )
    yield* ensureExactlyOnceInOrder(filtered, all.filter((e) => e.type === "Live"), "subscribe with a filter")
  })
)

/** `holdNextCommit`: the one of the caller's `CommitHold`, when it has one */
export const subscribeHeldCommitCheck = (holdNextCommit: Effect.Effect<Option.Option<Effect.Effect<HeldCommit>>>) =>
  fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const hold = yield* holdNextCommit
      // needs the CommitHold capability (suite() reports it as skipped); the real-concurrency check covers every store
      if (Option.isNone(hold)) return
      const a = stream("slow")
      const b = stream("fast")
      const held = yield* hold.value
      const slow = yield* Effect.forkScoped(ok(store.append(a, [ev("Slow", {})], ExpectedVersion.NoStream), "append"))
      const reserved = yield* withPatience(held.reserved, "the held commit reserving its position")
      yield* ok(store.append(b, [ev("Fast", {})], ExpectedVersion.NoStream), "append")
      const subscriber = yield* Effect.forkScoped(
        collect(
          store.subscribe({ filter: { categories: [category] } }),
          (_, seen) => seen.length === 2,
          "subscribe across a commit in flight"
        )
      )
      yield* Effect.sleep(settle) // let the subscriber poll while the hole is open
      const during = yield* readAllOf(store, { filter: { categories: [category] } })
      const headDuring = yield* ok(store.headPosition, "headPosition")
      yield* held.release
      yield* Fiber.join(slow)
      const delivered = yield* Fiber.join(subscriber)
      yield* ensureEqual(
        during.map((e) => e.type),
        [],
        `readAll must not pass a commit in flight (position ${show(reserved)} held, a later one committed)`
      )
      const all = yield* readAllOf(store, { filter: { categories: [category] } })
      yield* ensureEqual(all.map((e) => e.type), ["Slow", "Fast"], "after release, both events in position order")
      yield* ensureEqual(positions(all)[0], reserved[0], "the held commit keeps its reserved position")
      yield* ensureExactlyOnceInOrder(delivered, all, "subscribe across a commit in flight")
      yield* ensure(
        headDuring < reserved[0]!,
        `headPosition must not pass a commit in flight (position ${show(reserved)} held, headPosition ${headDuring})`
      )
      yield* ensure(
        (yield* ok(store.headPosition, "headPosition")) >= all[all.length - 1]!.position,
        "after release, headPosition reaches the later commit"
      )
    })
  )

export const subscribeConcurrentWritersCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const writers = 8
    const perWriter = 12
    const subscriber = yield* Effect.forkScoped(
      collect(
        store.subscribe({ filter: { categories: [category] } }),
        (event) => event.type === "End",
        "subscribe while concurrent writers commit"
      )
    )
    const late = yield* Deferred.make<ReadonlyArray<EventStore.RecordedEvent>, ContractViolation>()
    // readAll while writers commit: every answer must be a prefix of the final log (holes are fine, reordering not)
    const snapshots: Array<ReadonlyArray<EventStore.RecordedEvent>> = []
    const reader = yield* Effect.forkScoped(
      readAllOf(store, { filter: { categories: [category] } }).pipe(
        Effect.tap((events) => Effect.sync(() => snapshots.push(events))),
        Effect.zipRight(Effect.sleep("1 millis")),
        Effect.forever
      )
    )
    yield* Effect.forEach(
      Array.from({ length: writers }, (_, w) => w),
      (w) =>
        Effect.gen(function*() {
          const s = stream(`w${w}`)
          for (let i = 0; i < perWriter; i++) {
            if (i % 4 === 3) {
              // a unit of work over two streams
              const pair = stream(`w${w}pair`)
              yield* ok(
                store.appendMany([
                  { streamId: s, events: [ev("Written", { w, i })], expected: ExpectedVersion.Exact(i) },
                  { streamId: pair, events: [ev("Paired", { w, i })], expected: ExpectedVersion.Any }
                ]),
                "appendMany"
              )
            } else {
              yield* ok(store.append(s, [ev("Written", { w, i })], ExpectedVersion.Exact(i)), "append")
            }
            if (w === 0 && i === perWriter / 2) {
              // a second subscriber that starts while writes are going on
              yield* Effect.forkScoped(
                Effect.flatMap(
                  collect(
                    store.subscribe({ filter: { categories: [category] } }),
                    (event) => event.type === "End",
                    "a subscriber started mid-way"
                  ),
                  (events) => Deferred.succeed(late, events)
                ).pipe(Effect.catchAll((error) => Deferred.fail(late, error)))
              )
            }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    yield* Fiber.interrupt(reader)
    yield* ok(store.append(stream("end"), [ev("End", {})], ExpectedVersion.NoStream), "append")
    const delivered = yield* Fiber.join(subscriber)
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, writers * perWriter + writers * (perWriter / 4) + 1, "readAll of every write")
    yield* ensureIncreasingPositions(all, "readAll after concurrent writers")
    yield* ensureExactlyOnceInOrder(delivered, all, "subscription during concurrent writes")
    yield* ensureExactlyOnceInOrder(yield* Deferred.await(late), all, "subscription started during concurrent writes")
    const allIds = ids(all)
    for (const snapshot of snapshots) {
      const prefix = snapshot.every((event, i) => allIds[i] === event.id)
      if (!prefix) {
        const seen = new Set(ids(snapshot))
        const passed = all.filter((e) => !seen.has(e.id) && e.position < snapshot.at(-1)!.position)
        return yield* fail(
          `readAll during concurrent writes returned positions ${show(positions(snapshot))}, but events at positions ${
            show(positions(passed))
          } were committed below them later: readAll must never pass a commit in flight`
        )
      }
    }
  })
)
