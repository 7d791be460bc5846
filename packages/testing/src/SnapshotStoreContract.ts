/**
 * The conformance suite of the {@link SnapshotStore.SnapshotStore} port: `suite(name, layer)` registers every check
 * with `@effect/vitest` for one store Layer; each check is also exported as a plain `Effect` in {@link checks}, so a
 * test can run a single check (for instance against a deliberately broken store and assert that it fails).
 *
 * The store is built once and shared by every check; each check works on its own fresh streams (a counter plus a
 * random suffix, so repeated runs against a persistent database do not collide) and deletes their snapshots at the
 * end. The checks use the real clock, whatever services the caller provides.
 *
 * @example
 * ```ts
 * import { SnapshotStore } from "@effect-eventsourcing/core"
 * import { SnapshotStoreContract } from "@effect-eventsourcing/testing"
 *
 * SnapshotStoreContract.suite("SnapshotStore.layerMemory", SnapshotStore.layerMemory)
 * ```
 *
 * @since 0.2.0
 */
import * as Aggregate from "@effect-eventsourcing/core/Aggregate"
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as InMemoryEventStore from "@effect-eventsourcing/core/InMemoryEventStore"
import * as Repository from "@effect-eventsourcing/core/Repository"
import * as SnapshotStore from "@effect-eventsourcing/core/SnapshotStore"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import { describe, layer } from "@effect/vitest"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { ContractViolation } from "./internal/contract.js"
import * as internal from "./internal/contract.js"
import { show } from "./internal/values.js"

const { ensureEqual, fail, ok, unique, withPatience } = internal

export {
  /**
   * A store did not behave as the port requires (shared by every contract of this package).
   *
   * @since 0.2.0
   * @category errors
   */
  ContractViolation,
  /**
   * How long a check waits for something that must happen (a background snapshot save landing) before it reports a
   * violation (default: 10 seconds; shared by every contract of this package).
   *
   * @since 0.2.0
   * @category tags
   */
  Patience
} from "./internal/contract.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * One conformance check: succeeds when the store behaves, fails with a {@link ContractViolation} otherwise.
 *
 * @since 0.2.0
 * @category models
 */
export type Check = Effect.Effect<void, ContractViolation, SnapshotStore.SnapshotStore>

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Timeout of each test and of building the Layer (default: 60 seconds). */
  readonly timeout?: Duration.DurationInput
}

// -------------------------------------------------------------------------------------
// internal helpers
// -------------------------------------------------------------------------------------

type Store = SnapshotStore.SnapshotStore.Service

interface Fixture {
  readonly store: Store
  /** a fresh stream (its snapshots are deleted at the end of the check) */
  readonly stream: Effect.Effect<StreamId.StreamId>
}

const fixture = <A>(
  body: (fx: Fixture) => Effect.Effect<A, ContractViolation, Scope.Scope>
): Effect.Effect<A, ContractViolation, SnapshotStore.SnapshotStore> =>
  Effect.gen(function*() {
    const store = yield* SnapshotStore.SnapshotStore
    const created = new Set<StreamId.StreamId>()
    const category = yield* unique("snap")
    const stream = Effect.map(unique("s"), (id) => {
      const streamId = StreamId.unsafeMake(category, id)
      created.add(streamId)
      return streamId
    })
    const cleanup = Effect.forEach(created, (streamId) => Effect.ignore(store.delete(streamId)), { discard: true })
    return yield* Effect.scoped(body({ store, stream })).pipe(Effect.ensuring(cleanup))
  })

/** a fixed instant with milliseconds, so that a store that drops them is caught */
const epoch = 1_767_225_600_123

const snapshot = (
  streamId: StreamId.StreamId,
  version: number,
  state: unknown,
  fingerprint = "fp-1",
  takenAt = DateTime.unsafeMake(epoch + version)
): SnapshotStore.Snapshot => ({ streamId, version, fingerprint, state, takenAt })

const load = (store: Store, streamId: StreamId.StreamId) => ok(store.load(streamId), `load(${show(streamId)})`)

const save = (store: Store, s: SnapshotStore.Snapshot) => ok(store.save(s), `save(version ${s.version})`)

/** a comparable view of a loaded snapshot */
const view = (loaded: Option.Option<SnapshotStore.Snapshot>) =>
  Option.map(loaded, (s) => ({
    streamId: s.streamId,
    version: s.version,
    fingerprint: s.fingerprint,
    state: s.state,
    takenAt: DateTime.isDateTime(s.takenAt) ? s.takenAt.epochMillis : s.takenAt
  }))

const ensureLoads = (
  store: Store,
  streamId: StreamId.StreamId,
  expected: SnapshotStore.Snapshot | undefined,
  description: string
) =>
  Effect.flatMap(
    load(store, streamId),
    (loaded) => ensureEqual(view(loaded), view(Option.fromNullable(expected)), description)
  )

const named = (name: string, check: Effect.Effect<void, ContractViolation, SnapshotStore.SnapshotStore>): Check =>
  internal.named("SnapshotStoreContract", name, check)

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

const roundTripCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = yield* stream
    yield* ensureLoads(store, s, undefined, "a stream without a snapshot loads None")
    const state = {
      owner: "Zoë 🚀 \"quoted\" 'single'",
      balance: 12.5,
      big: Number.MAX_SAFE_INTEGER,
      negative: -3,
      flags: [true, false, null],
      nested: { empty: {}, list: [{ a: 1 }, { b: [] }] },
      none: null
    }
    const first = snapshot(s, 7, state, "fp-ünïcødé")
    yield* save(store, first)
    yield* ensureLoads(
      store,
      s,
      first,
      "load returns the saved snapshot: stream, version, fingerprint, state (JSON) and takenAt (to the millisecond)"
    )
    const scalar = yield* stream
    const plain = snapshot(scalar, 1, 42)
    yield* save(store, plain)
    yield* ensureLoads(store, scalar, plain, "a state that is a plain JSON number round-trips")
  })
)

const keyedByStreamCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const a = yield* stream
    const b = yield* stream
    const forA = snapshot(a, 3, { of: "a" }, "fp-a")
    const forB = snapshot(b, 9, { of: "b" }, "fp-b")
    yield* save(store, forA)
    yield* save(store, forB)
    yield* ensureLoads(store, a, forA, "each stream loads its own snapshot")
    yield* ensureLoads(store, b, forB, "each stream loads its own snapshot")
    yield* ok(store.delete(a), "delete")
    yield* ensureLoads(store, a, undefined, "delete removes the stream's snapshot")
    yield* ensureLoads(store, b, forB, "delete leaves the snapshots of other streams untouched")
  })
)

const newestWinsCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = yield* stream
    const v5 = snapshot(s, 5, { v: 5 })
    yield* save(store, v5)
    yield* save(store, snapshot(s, 3, { v: 3 }, "fp-old"))
    yield* ensureLoads(store, s, v5, "a save never replaces a newer snapshot")
    const v8 = snapshot(s, 8, { v: 8 })
    yield* save(store, v8)
    yield* ensureLoads(store, s, v8, "a newer snapshot replaces an older one")
    // a repository that ignored a snapshot (other fingerprint) replaces it at the same version
    const again = snapshot(s, 8, { v: 8, schema: 2 }, "fp-2", DateTime.unsafeMake(epoch + 100))
    yield* save(store, again)
    yield* ensureLoads(store, s, again, "a snapshot of the same version replaces the stored one")
  })
)

const deleteCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = yield* stream
    yield* ok(store.delete(s), "delete of a stream without a snapshot")
    yield* save(store, snapshot(s, 12, { v: 12 }))
    yield* ok(store.delete(s), "delete")
    yield* ensureLoads(store, s, undefined, "after delete the stream has no snapshot")
    // a deleted stream can be re-created from version 1: its first snapshots are older than the deleted one
    const fresh = snapshot(s, 2, { v: 2 }, "fp-1", DateTime.unsafeMake(epoch + 1_000))
    yield* save(store, fresh)
    yield* ensureLoads(store, s, fresh, "after delete a snapshot of a lower version is stored")
  })
)

const concurrentSavesCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = yield* stream
    const count = 24
    // versions in a scrambled order, saved all at once
    const order = Array.from({ length: count }, (_, i) => ((i * 7) % count) + 1)
    yield* Effect.forEach(order, (version) => save(store, snapshot(s, version, { v: version })), {
      concurrency: "unbounded",
      discard: true
    })
    yield* ensureLoads(store, s, snapshot(s, count, { v: count }), "concurrent saves: the newest snapshot wins")
  })
)

class Added extends Schema.TaggedClass<Added>()("Added", { n: Schema.Number }) {}

const CounterState = Schema.Struct({ total: Schema.Number })

const Counter = Aggregate.make({
  name: "snapshotcontract",
  events: Added,
  state: CounterState,
  initialState: { total: 0 },
  decide: () => Either.right([]),
  evolve: (state, event) => ({ total: state.total + event.n }),
  snapshotEvery: 1
})

const counters = Repository.make(Counter)

const repositoryCheck = Effect.gen(function*() {
  const store = yield* SnapshotStore.SnapshotStore
  const events = yield* InMemoryEventStore.make()
  const id = yield* unique("c")
  const streamId = StreamId.unsafeMake(Counter.name, id)
  const totalOf = counters.load(id).pipe(
    Effect.provideService(EventStore.EventStore, events),
    Effect.map((loaded) => loaded.state.total),
    (effect) => ok(effect, "Repository.load")
  )
  /** waits for the repository's background save of a trusted snapshot at version 3 */
  const awaitTrusted = (fingerprint: string | undefined, what: string) =>
    load(store, streamId).pipe(
      Effect.filterOrFail(
        (loaded) =>
          Option.isSome(loaded) && loaded.value.version === 3 &&
          (fingerprint === undefined || loaded.value.fingerprint === fingerprint) &&
          Schema.is(CounterState)(loaded.value.state),
        () => internal.violation(`${what}: no trusted snapshot at version 3 yet`)
      ),
      Effect.retry(Schedule.spaced("10 millis")),
      (effect) => withPatience(effect, what),
      Effect.map((loaded) => Option.getOrThrow(loaded))
    )
  yield* Effect.gen(function*() {
    yield* ok(
      events.append(streamId, [1, 2, 3].map((n) => ({ type: "Added", data: { n } })), ExpectedVersion.NoStream),
      "append"
    )
    yield* ensureEqual(yield* totalOf, 6, "the state folded from the events")
    const taken = yield* awaitTrusted(undefined, "the repository saving a snapshot through this store")
    yield* ensureEqual(taken.state, { total: 6 }, "the repository's snapshot holds the folded state")
    const print = taken.fingerprint
    const now = yield* DateTime.now
    // the repository uses this store's snapshot (so the checks below are not vacuous)
    yield* save(store, snapshot(streamId, 3, { total: 100 }, print, now))
    yield* ensureEqual(
      yield* totalOf,
      100,
      "a repository trusts a snapshot it saved itself (same fingerprint, decodable): the store must return it"
    )
    // another fingerprint (the state Schema changed): ignored, and replaced by the repository
    yield* save(store, snapshot(streamId, 3, { total: 100 }, `${print}-other`, now))
    yield* ensureEqual(yield* totalOf, 6, "a snapshot with another fingerprint is ignored")
    yield* awaitTrusted(print, "the repository replacing a snapshot with another fingerprint")
    // the right fingerprint but a state that does not decode: ignored, and replaced
    yield* save(store, snapshot(streamId, 3, { total: "not a number" }, print, now))
    yield* ensureEqual(yield* totalOf, 6, "an undecodable snapshot is ignored")
    yield* awaitTrusted(print, "the repository replacing an undecodable snapshot")
  }).pipe(Effect.ensuring(Effect.ignore(store.delete(streamId))))
}).pipe(Effect.catchAllDefect((defect) => fail(`a defect: ${show(defect)}`)))

// -------------------------------------------------------------------------------------
// exports
// -------------------------------------------------------------------------------------

/**
 * Every check of the contract, by name, as a plain Effect (see {@link suite} for what they cover).
 *
 * @since 0.2.0
 * @category testing
 */
export const checks = {
  roundTrip: named("roundTrip", roundTripCheck),
  keyedByStream: named("keyedByStream", keyedByStreamCheck),
  newestWins: named("newestWins", newestWinsCheck),
  delete: named("delete", deleteCheck),
  concurrentSaves: named("concurrentSaves", concurrentSavesCheck),
  repository: named("repository", repositoryCheck)
} as const satisfies Record<string, Check>

/**
 * The names of the checks.
 *
 * @since 0.2.0
 * @category models
 */
export type CheckName = keyof typeof checks

/**
 * The test title of each check.
 *
 * @since 0.2.0
 * @category testing
 */
export const titles: { readonly [K in CheckName]: string } = {
  roundTrip: "a saved snapshot loads back unchanged: stream, version, fingerprint, JSON state, takenAt (ms)",
  keyedByStream: "snapshots are keyed by stream: each loads its own, delete removes only its stream's",
  newestWins: "a save never replaces a newer snapshot; a newer or same-version one replaces the stored one",
  delete: "delete removes the snapshot (also of an unknown stream); a re-created stream's lower versions are stored",
  concurrentSaves: "concurrent saves of many versions: the newest wins",
  repository:
    "a Repository over this store trusts its own snapshots and ignores (then replaces) stale or undecodable ones"
}

/**
 * Registers the whole conformance suite for a snapshot store Layer with `@effect/vitest`: the Layer is built once
 * (without test services: the checks use the real clock) and every check in {@link checks} becomes a test.
 *
 * The suite covers: round-trips of the whole snapshot (JSON state, fingerprint, version, `takenAt` to the
 * millisecond); snapshots keyed by stream; the newest snapshot winning, also under concurrent saves, and a
 * same-version save replacing the stored one; deletion; and a `Repository` (over an in-memory event store) that
 * trusts the snapshots it saved through this store and ignores, then replaces, a snapshot with another fingerprint
 * or an undecodable state.
 *
 * @example
 * ```ts
 * import { SnapshotStore } from "@effect-eventsourcing/core"
 * import { SnapshotStoreContract } from "@effect-eventsourcing/testing"
 *
 * SnapshotStoreContract.suite("SnapshotStore.layerMemory", SnapshotStore.layerMemory)
 * ```
 *
 * @since 0.2.0
 * @category testing
 */
export const suite = <E>(name: string, store: Layer.Layer<SnapshotStore.SnapshotStore, E>, options?: Options): void => {
  const timeout = Duration.decode(options?.timeout ?? Duration.seconds(60))
  describe(`SnapshotStoreContract: ${name}`, () => {
    layer(store, { excludeTestServices: true, timeout })((it) => {
      for (const key of Object.keys(checks) as Array<CheckName>) {
        it.effect(titles[key], () => checks[key], Duration.toMillis(timeout))
      }
    })
  })
}
