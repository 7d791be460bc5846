/**
 * The conformance suite of the {@link EventStore.EventStore} port. `suite(name, layer)` registers every check with
 * `@effect/vitest` for one store Layer; each check is also exported as a plain `Effect` in {@link checks}, so a
 * test can run a single check (for instance against a deliberately broken store and assert that it fails).
 *
 * The store is built once and shared by every check: each check works in its own fresh categories and streams
 * (a counter plus a random suffix, so repeated runs against a persistent database do not collide) and deletes
 * the streams it created. The checks use the real clock, whatever services the caller provides. When the Layer
 * also provides {@link CommitHold}, the subscription gap check holds a commit in flight deterministically (without
 * it, `suite` reports that check as skipped); every store also gets a real-concurrency subscription and readAll
 * check.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 *
 * EventStoreContract.suite("InMemoryEventStore", InMemoryEventStore.layer)
 * ```
 *
 * @since 0.1.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import { describe, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as appendChecks from "./internal/appendChecks.js"
import type { ContractViolation } from "./internal/contract.js"
import * as internal from "./internal/contract.js"
import { fixture, settle } from "./internal/fixture.js"
import * as inputChecks from "./internal/inputChecks.js"
import * as lockChecks from "./internal/lockChecks.js"
import * as readChecks from "./internal/readChecks.js"
import * as subscribeChecks from "./internal/subscribeChecks.js"
import * as tombstoneChecks from "./internal/tombstoneChecks.js"

const { withPatience } = internal

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

export {
  /**
   * A store did not behave as the port requires (shared by every contract of this package).
   *
   * @since 0.1.0
   * @category errors
   */
  ContractViolation,
  /**
   * How long a check waits for something that must happen before it reports a violation (default: 10 seconds;
   * shared by every contract of this package).
   *
   * @since 0.1.0
   * @category tags
   */
  Patience
} from "./internal/contract.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * A commit held "in flight" by {@link CommitHold}: its positions are reserved (or assigned, for a database) but it is
 * not visible until `release`. Later commits become durable meanwhile, yet global readers and subscribers must not
 * pass the hole.
 *
 * @since 0.2.0
 * @category models
 */
export interface HeldCommit {
  /** Waits until the held append has its positions, and returns them. */
  readonly reserved: Effect.Effect<ReadonlyArray<number>>
  /** Lets the held commit complete and become visible. */
  readonly release: Effect.Effect<void>
}

/**
 * The capability to hold a store's next commit in flight, which a store's test setup provides next to its
 * `EventStore` so that the `subscribeHeldCommit` check can open a hole in the global log deterministically. Without
 * it, {@link suite} reports that check as skipped (the real-concurrency check `subscribeConcurrentWriters` runs on
 * every store).
 *
 * The in-memory store provides it from its test hook:
 * `Layer.effect(EventStoreContract.CommitHold, InMemoryEventStore.Control)` over
 * `InMemoryEventStore.layerWithControl()`. A SQL store can provide it by wrapping its `EventStore` so that the next
 * append runs inside a transaction that is kept open until `release` (the store joins the caller's transaction).
 *
 * @since 0.2.0
 * @category tags
 */
export class CommitHold extends Context.Tag("@effect-eventsourcing/testing/EventStoreContract/CommitHold")<
  CommitHold,
  {
    /** The next `append` (or `appendMany`) gets its positions, then waits for `release` before it commits. */
    readonly holdNextCommit: Effect.Effect<HeldCommit>
    /**
     * The next `delete` of a stream with events gets its tombstone's position, then waits for `release` before it
     * commits (optional: without it, the `subscribeHeldTombstone` check is skipped).
     *
     * @since 0.3.0
     */
    readonly holdNextDelete?: Effect.Effect<HeldCommit>
  }
>() {}

/**
 * One conformance check: succeeds when the store behaves, fails with a {@link ContractViolation} otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export type Check = Effect.Effect<void, ContractViolation, EventStore.EventStore>

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Timeout of each test and of building the Layer (default: 60 seconds). */
  readonly timeout?: Duration.DurationInput
}

const named = (name: string, check: Effect.Effect<void, ContractViolation, EventStore.EventStore>): Check =>
  internal.named("EventStoreContract", name, check)

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

// the bad-input checks (stream ids, events, numbers, event id case, conflicts naming the stored id)
const input = inputChecks.make({ violation: internal.violation, withPatience })

// the deletion checks (tombstones in the global log)
const deletions = tombstoneChecks.make({
  fixture,
  withPatience,
  holdNextDelete: Effect.map(
    Effect.serviceOption(CommitHold),
    (hold) => Option.flatMap(hold, (h) => Option.fromNullable(h.holdNextDelete))
  ),
  settle
})

// -------------------------------------------------------------------------------------
// exports
// -------------------------------------------------------------------------------------

/**
 * Every check of the contract, by name, as a plain Effect (see {@link suite} for what they cover).
 * `subscribeHeldCommit` needs {@link CommitHold} in the context and checks nothing without it; `subscribeHeldTombstone`
 * needs its `holdNextDelete`.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 * import { it } from "@effect/vitest"
 * import { Effect } from "effect"
 *
 * // one check on its own (it fails with a ContractViolation naming the check when the store breaks the rule)
 * it.live("the expected-versions check", () =>
 *   EventStoreContract.checks.expectedVersions.pipe(Effect.provide(InMemoryEventStore.layer)))
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const checks = {
  versions: named("versions", appendChecks.versionsCheck),
  expectedVersions: named("expectedVersions", appendChecks.expectedVersionsCheck),
  batchAtomicity: named("batchAtomicity", appendChecks.batchAtomicityCheck),
  appendManyAtomicity: named("appendManyAtomicity", appendChecks.appendManyAtomicityCheck),
  readRanges: named("readRanges", readChecks.readRangesCheck),
  streamVersion: named("streamVersion", readChecks.streamVersionCheck),
  readForFold: named("readForFold", readChecks.readForFoldCheck),
  headPosition: named("headPosition", readChecks.headPositionCheck),
  readAllFilters: named("readAllFilters", readChecks.readAllFiltersCheck),
  readAllTimeRange: named("readAllTimeRange", readChecks.readAllTimeRangeCheck),
  delete: named("delete", readChecks.deleteCheck),
  tombstones: named("tombstones", deletions.tombstones),
  subscribeTombstones: named("subscribeTombstones", deletions.subscribeTombstones),
  subscribeHeldTombstone: named("subscribeHeldTombstone", deletions.subscribeHeldTombstone),
  lockExclusive: named("lockExclusive", lockChecks.lockExclusiveCheck),
  lockDoesNotBlock: named("lockDoesNotBlock", lockChecks.lockDoesNotBlockCheck),
  subscribeCatchUpThenLive: named("subscribeCatchUpThenLive", subscribeChecks.subscribeCatchUpThenLiveCheck),
  subscribeHeldCommit: named(
    "subscribeHeldCommit",
    subscribeChecks.subscribeHeldCommitCheck(
      Effect.map(Effect.serviceOption(CommitHold), Option.map((hold) => hold.holdNextCommit))
    )
  ),
  subscribeConcurrentWriters: named("subscribeConcurrentWriters", subscribeChecks.subscribeConcurrentWritersCheck),
  race: named("race", lockChecks.raceCheck),
  idempotency: named("idempotency", appendChecks.idempotencyCheck),
  unicode: named("unicode", appendChecks.unicodeCheck),
  largePayload: named("largePayload", appendChecks.largePayloadCheck),
  hostileStreamIds: named("hostileStreamIds", appendChecks.hostileStreamIdsCheck),
  invalidStreamIds: named("invalidStreamIds", input.invalidStreamIds),
  invalidEvents: named("invalidEvents", input.invalidEvents),
  invalidNumbers: named("invalidNumbers", input.invalidNumbers),
  eventIdCase: named("eventIdCase", input.eventIdCase),
  eventIdConflictNamesStoredId: named("eventIdConflictNamesStoredId", input.eventIdConflictNamesStoredId)
} as const satisfies Record<string, Check>

/**
 * The names of the checks.
 *
 * @since 0.1.0
 * @category models
 */
export type CheckName = keyof typeof checks

/**
 * The test title of each check.
 *
 * @since 0.1.0
 * @category testing
 */
export const titles: { readonly [K in CheckName]: string } = {
  versions: "versions start at 1, positions increase, data and metadata round-trip, empty appends write nothing",
  expectedVersions:
    "Any, NoStream, StreamExists and Exact on new and existing streams; conflicts carry the real version",
  batchAtomicity: "a refused batch (stale expectation, non-JSON data) writes nothing",
  appendManyAtomicity: "appendMany is atomic across streams: a conflict in one request writes nothing at all",
  readRanges: "read forward/backward with from, to and limit",
  streamVersion: "streamVersion is 0 for a missing stream and counts only its own stream",
  readForFold: "readForFold gives read's versions, positions, types and data; re-created streams get new positions",
  headPosition: "headPosition is the position of the last committed event or tombstone (never past a commit in flight)",
  readAllFilters: "readAll filters by categories, types, stream ids, from position and limit, in position order",
  readAllTimeRange: "readAll filters by recordedAt (after / before, exclusive)",
  delete: "delete: version 0 afterwards, gone from readAll, other streams untouched, can be re-created",
  ...tombstoneChecks.titles,
  lockExclusive: "a second lock on a stream waits for the first scope to close; interrupted waiters/holders let go",
  lockDoesNotBlock: "a locked stream can be read, and other streams can be locked",
  subscribeCatchUpThenLive: "subscribe: catch-up then live, from a position, with filters; once each, in order",
  subscribeHeldCommit: "subscribe and readAll never pass a commit in flight (needs CommitHold, else skipped)",
  subscribeConcurrentWriters: "subscribe while many writers commit concurrently: nothing missing, no duplicates",
  race: "concurrent appends with the same expected version: exactly one winner",
  idempotency: "re-sending a committed batch with the same ids returns the original result; id conflicts are typed",
  unicode: "unicode data, metadata and types round-trip",
  largePayload: "a payload over 1 MB and a batch of 1000 events round-trip",
  hostileStreamIds: "hostile stream ids round-trip (or are refused by StreamId.make with InvalidStreamId)",
  ...inputChecks.titles
}

/**
 * Registers the whole conformance suite for a store Layer with `@effect/vitest`: the Layer is built once (without
 * test services: the checks use the real clock) and every check in {@link checks} becomes a test.
 *
 * The suite covers: stream versions and global positions; all four expected versions with the real actual version
 * in conflicts; atomic batches and atomic `appendMany` across streams; `read` directions, ranges and limits; `readForFold`;
 * `streamVersion`; `readAll` filters (categories, types, stream ids, time range, from position, limit); deletion;
 * lock exclusivity (reads and other streams never wait); subscriptions delivering every event exactly once in
 * position order (catch-up, live, commits in flight, concurrent writers); races with exactly one winner;
 * idempotent appends by event id; unicode and large payloads; hostile stream ids.
 *
 * @example
 * ```ts
 * import { InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { EventStoreContract } from "@effect-eventsourcing/testing"
 *
 * EventStoreContract.suite("InMemoryEventStore", InMemoryEventStore.layer)
 * ```
 *
 * @since 0.1.0
 * @category testing
 */
export const suite = <E>(name: string, store: Layer.Layer<EventStore.EventStore, E>, options?: Options): void => {
  const timeout = Duration.decode(options?.timeout ?? Duration.seconds(60))
  // sequential even under `sequence.concurrent`: the held-commit check holds the store's next commit
  describe.sequential(`EventStoreContract: ${name}`, () => {
    layer(store, { excludeTestServices: true, timeout })((it) => {
      for (const key of Object.keys(checks) as Array<CheckName>) {
        it.effect(titles[key], (ctx) => {
          if (key !== "subscribeHeldCommit" && key !== "subscribeHeldTombstone") return checks[key]
          return Effect.flatMap(
            Effect.serviceOption(CommitHold),
            (hold) =>
              Option.isSome(hold) && (key === "subscribeHeldCommit" || hold.value.holdNextDelete !== undefined)
                ? checks[key]
                : Effect.sync(() => {
                  // report the check as skipped: `skip` marks the test, then throws to abort it, which we do not need
                  try {
                    ctx.skip(
                      key === "subscribeHeldCommit"
                        ? "the store's Layer provides no EventStoreContract.CommitHold"
                        : "the store's Layer provides no EventStoreContract.CommitHold with holdNextDelete"
                    )
                  } catch {
                    // the test is marked as skipped
                  }
                })
          )
        }, Duration.toMillis(timeout))
      }
    })
  })
}
