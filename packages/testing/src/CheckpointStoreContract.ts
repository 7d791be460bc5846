/**
 * The conformance suite of the {@link CheckpointStore.CheckpointStore} port: `suite(name, layer)` registers every check
 * with `@effect/vitest` for one store Layer; each check is also exported as a plain `Effect` in {@link checks}, so a
 * test can run a single check (for instance against a deliberately broken store and assert that it fails).
 *
 * The store is built once and shared by every check; each check works on its own fresh subscription names (a counter
 * plus a random suffix, so repeated runs against a persistent database do not collide). The checks use the real
 * clock, whatever services the caller provides.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "@effect-eventsourcing/core"
 * import { CheckpointStoreContract } from "@effect-eventsourcing/testing"
 *
 * CheckpointStoreContract.suite("CheckpointStore.layerMemory", CheckpointStore.layerMemory)
 * ```
 *
 * @since 0.2.0
 */
import * as CheckpointStore from "@effect-eventsourcing/core/CheckpointStore"
import { describe, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import type { ContractViolation } from "./internal/contract.js"
import * as internal from "./internal/contract.js"
import { show } from "./internal/values.js"

const { ensure, ensureEqual, fail, ok, unique, withPatience } = internal

export {
  /**
   * A store did not behave as the port requires (shared by every contract of this package).
   *
   * @since 0.2.0
   * @category errors
   */
  ContractViolation,
  /**
   * How long a check waits for something that must happen (a lease being granted) before it reports a violation
   * (default: 10 seconds; shared by every contract of this package).
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
export type Check = Effect.Effect<void, ContractViolation, CheckpointStore.CheckpointStore>

/**
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** Timeout of each test and of building the Layer (default: 60 seconds). */
  readonly timeout?: Duration.DurationInput
  /**
   * The store's `Lease.transaction` is a real transaction (PostgreSQL): checkpoint writes inside a failed
   * transaction are rolled back. Adds the {@link checks}`.transactionRollback` check. Default: `false` (the port
   * allows stores without transactions, whose `transaction` runs the effect as is: at-least-once).
   */
  readonly transactional?: boolean
  /**
   * Checks registered as known failures (`it.effect.fails`): the test passes while the check fails, and fails once
   * the store is fixed, to be removed from this list then.
   */
  readonly knownFailures?: ReadonlyArray<CheckName>
}

// -------------------------------------------------------------------------------------
// internal helpers
// -------------------------------------------------------------------------------------

type Store = CheckpointStore.CheckpointStore.Service

const settle = Duration.millis(200)

const withStore = <A>(
  body: (store: Store) => Effect.Effect<A, ContractViolation, Scope.Scope>
): Effect.Effect<A, ContractViolation, CheckpointStore.CheckpointStore> =>
  Effect.flatMap(CheckpointStore.CheckpointStore, (store) => Effect.scoped(body(store)))

const load = (store: Store, name: string) => ok(store.load(name), `load(${show(name)})`)

const ensureAt = (store: Store, name: string, expected: Option.Option<number>, description: string) =>
  Effect.flatMap(load(store, name), (actual) => ensureEqual(actual, expected, description))

const acquire = (store: Store, name: string) =>
  withPatience(ok(store.acquire(name), `acquire(${show(name)})`), `acquire(${show(name)}) of a free name`)

const tagOf = (error: unknown): string | undefined =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : undefined

/** `effect` must fail with a typed (tagged) error: not succeed, not die */
const ensureTypedFailure = <A, E>(effect: Effect.Effect<A, E>, what: string) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return fail(`${what} was accepted; it must be refused with a typed error`)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) {
      return fail(`${what} must be refused with a typed error, not a defect: ${Cause.pretty(exit.cause)}`)
    }
    return ensure(
      tagOf(failure.value) !== undefined,
      `${what} must be refused with a tagged error, got ${show(failure.value)}`
    )
  })

/** `effect` must fail with `LeaseLost` (by `_tag`) */
const ensureLeaseLost = <A, E>(effect: Effect.Effect<A, E>, what: string) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return fail(`${what} succeeded; it must fail with LeaseLost`)
    const failure = Cause.failureOption(exit.cause)
    return ensureEqual(
      Option.map(failure, tagOf),
      Option.some("LeaseLost"),
      `${what} must fail with LeaseLost (cause: ${Cause.pretty(exit.cause)})`
    )
  })

class Marker extends Schema.TaggedError<Marker>()("CheckpointStoreContract/Marker", { n: Schema.Number }) {}

const named = (name: string, check: Effect.Effect<void, ContractViolation, CheckpointStore.CheckpointStore>): Check =>
  internal.named("CheckpointStoreContract", name, check)

// -------------------------------------------------------------------------------------
// checks
// -------------------------------------------------------------------------------------

const loadSaveCheck = withStore((store) =>
  Effect.gen(function*() {
    const a = yield* unique("cp")
    const b = yield* unique("cp")
    yield* ensureAt(store, a, Option.none(), "an unknown name has no checkpoint")
    yield* ok(store.save(a, 5), "save")
    yield* ensureAt(store, a, Option.some(5), "load returns the saved position")
    yield* ensureAt(store, b, Option.none(), "saving one name leaves the others without a checkpoint")
    yield* ok(store.save(b, 7), "save")
    yield* ensureAt(store, a, Option.some(5), "names are independent")
    yield* ensureAt(store, b, Option.some(7), "names are independent")
    yield* ok(store.save(a, 3), "save")
    yield* ensureAt(store, a, Option.some(3), "a later save replaces the position, also with a lower one")
    yield* ok(store.save(a, 0), "save")
    yield* ensureAt(store, a, Option.some(0), "position 0 is a position")
    yield* ok(store.save(a, Number.MAX_SAFE_INTEGER), "save")
    yield* ensureAt(store, a, Option.some(Number.MAX_SAFE_INTEGER), "the largest safe integer round-trips")
    const odd = `${yield* unique("cp")}: 'quoted' "double" ünïcødé 🚀 -- ;`
    yield* ok(store.save(odd, 11), "save")
    yield* ensureAt(store, odd, Option.some(11), "a name with quotes, spaces and unicode round-trips")
  })
)

const resetCheck = withStore((store) =>
  Effect.gen(function*() {
    const a = yield* unique("cp")
    const b = yield* unique("cp")
    yield* ok(store.save(a, 9), "save")
    yield* ok(store.save(b, 4), "save")
    yield* ok(store.reset(a, 2), "reset")
    yield* ensureAt(store, a, Option.some(2), "reset(name, position) sets the checkpoint")
    yield* ok(store.reset(a), "reset")
    yield* ensureAt(store, a, Option.none(), "reset(name) removes the checkpoint (replay from the start)")
    yield* ensureAt(store, b, Option.some(4), "resetting one name leaves the others untouched")
    const fresh = yield* unique("cp")
    yield* ok(store.reset(fresh, 6), "reset")
    yield* ensureAt(store, fresh, Option.some(6), "reset(name, position) on an unknown name sets it")
  })
)

const resetRequestCheck = withStore((store) =>
  Effect.gen(function*() {
    const a = yield* unique("cp")
    const b = yield* unique("cp")
    yield* ensureEqual(
      yield* ok(store.pendingReset(a), "pendingReset"),
      Option.none(),
      "no reset request for an unknown name"
    )
    const first = yield* ok(store.requestReset(a, { position: 3 }), "requestReset")
    yield* ensureEqual([first.position, first.allowDuplicates], [3, false], "the request keeps its position")
    const second = yield* ok(store.requestReset(a, { allowDuplicates: true }), "requestReset")
    yield* ensure(second.id !== first.id, "every request gets a new id")
    const pending = yield* ok(store.pendingReset(a), "pendingReset")
    yield* ensureEqual(
      Option.map(pending, (r) => [r.id, r.position, r.allowDuplicates]),
      Option.some([second.id, undefined, true]),
      "a newer request replaces one not applied yet"
    )
    yield* ok(store.completeReset(a, first.id), "completeReset")
    yield* ensure(
      Option.isSome(yield* ok(store.pendingReset(a), "pendingReset")),
      "completing an older id keeps a newer request"
    )
    yield* ok(store.completeReset(a, second.id), "completeReset")
    yield* ensureEqual(yield* ok(store.pendingReset(a), "pendingReset"), Option.none(), "completeReset clears it")
    yield* ensureAt(store, a, Option.none(), "a request does not move the checkpoint")
    yield* ensureTypedFailure(store.requestReset(a, { position: -1 }), "requestReset with a negative position")

    yield* ok(store.save(b, 5), "save")
    yield* ok(store.recordError(b, "boom"), "recordError")
    const [info] = yield* ok(store.info(b), "info")
    yield* ensureEqual(
      info === undefined ? undefined : [info.name, info.position, Option.map(info.lastError, (e) => e.message)],
      [b, Option.some(5), Option.some("boom")],
      "info(name) reports the checkpoint and the last error"
    )
    yield* ensure(Option.isNone(info!.holder), "no holder while no lease is held")
    yield* Effect.scoped(Effect.gen(function*() {
      yield* acquire(store, b)
      const [held] = yield* ok(store.info(b), "info")
      yield* ensure(held !== undefined && Option.isSome(held.holder), "info(name) shows a holder while a lease is held")
    }))
    const all = yield* ok(store.info(), "info")
    yield* ensure(all.some((i) => i.name === a) && all.some((i) => i.name === b), "info() lists every name")
  })
)

const invalid: ReadonlyArray<number> = [-5, 1.5, Number.NaN, Number.POSITIVE_INFINITY]

const invalidPositionCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    yield* ok(store.save(name, 4), "save")
    for (const position of invalid) {
      yield* ensureTypedFailure(store.save(name, position), `save(name, ${position})`)
      yield* ensureTypedFailure(store.reset(name, position), `reset(name, ${position})`)
      yield* ensureAt(store, name, Option.some(4), `nothing is saved after refusing position ${position}`)
    }
    const lease = yield* acquire(store, name)
    for (const position of invalid) {
      yield* ensureTypedFailure(lease.save(position), `lease.save(${position})`)
      yield* ensureTypedFailure(lease.reset(position), `lease.reset(${position})`)
      yield* ensureAt(store, name, Option.some(4), `nothing is saved after a lease refused position ${position}`)
    }
    yield* ok(lease.save(5), "lease.save after refused positions")
    yield* ensureAt(store, name, Option.some(5), "the lease still works after refusing invalid positions")
  })
)

const leaseExclusiveCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    const other = yield* unique("cp")
    const first = yield* Scope.make()
    yield* Effect.addFinalizer(() => Scope.close(first, Exit.void))
    yield* Scope.extend(acquire(store, name), first)
    // a waiter that gives up (interrupted) must not keep the name: it waits ahead of the second one
    const quitter = yield* Effect.forkScoped(Effect.scoped(ok(store.acquire(name), "interrupted acquire")))
    yield* Effect.sleep("20 millis")
    const granted = yield* Deferred.make<void>()
    const second = yield* Effect.forkScoped(
      Effect.zipRight(ok(store.acquire(name), "second acquire"), Deferred.succeed(granted, undefined))
    )
    yield* Effect.sleep(settle)
    yield* ensure(
      !(yield* Deferred.isDone(granted)),
      "a second acquire of a held name must wait: it was granted while the first lease was held"
    )
    yield* Effect.scoped(acquire(store, other))
    yield* Fiber.interrupt(quitter)
    yield* Scope.close(first, Exit.void)
    yield* withPatience(Deferred.await(granted), "the second acquire after the first lease's scope closed")
    yield* Fiber.join(second)
  })
)

const leasePositionCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* acquire(store, name)
      yield* ensureEqual(lease.name, name, "lease.name is the subscription name")
      yield* ensureEqual(lease.position, Option.none(), "a lease on a new name starts without a checkpoint")
      yield* ok(lease.save(3), "lease.save")
      yield* ensureAt(store, name, Option.some(3), "lease.save moves the checkpoint")
      yield* ok(lease.save(8), "lease.save")
      yield* ensureAt(store, name, Option.some(8), "successive lease saves move the checkpoint")
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* acquire(store, name)
      yield* ensureEqual(lease.position, Option.some(8), "a new lease starts at the checkpoint the last one left")
      yield* ok(lease.reset(2), "lease.reset(2)")
      yield* ensureAt(store, name, Option.some(2), "lease.reset(position) sets the checkpoint")
      yield* ok(lease.save(4), "lease.save after lease.reset")
      yield* ok(lease.reset(), "lease.reset()")
      yield* ensureAt(store, name, Option.none(), "lease.reset() removes the checkpoint")
      yield* ok(lease.save(1), "lease.save after lease.reset()")
      yield* ensureAt(store, name, Option.some(1), "the lease keeps working after a reset")
    }))
  })
)

const leaseFencingCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    // moved by someone else while held
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* acquire(store, name)
      yield* ok(lease.save(5), "lease.save")
      yield* ok(store.reset(name, 3), "reset by an operator")
      yield* ensureLeaseLost(lease.save(10), "lease.save after the checkpoint was reset by someone else")
      yield* ensureAt(store, name, Option.some(3), "a lost lease saves nothing")
    }))
    yield* Effect.scoped(Effect.gen(function*() {
      const lease = yield* acquire(store, name)
      yield* ok(store.save(name, 20), "unfenced save by someone else")
      yield* ensureLeaseLost(lease.save(21), "lease.save after an unfenced save by someone else")
      yield* ensureLeaseLost(lease.reset(), "lease.reset after an unfenced save by someone else")
      yield* ensureAt(store, name, Option.some(20), "a lost lease saves nothing")
    }))
    // taken over: the old lease is used after another consumer acquired the name
    const stale = yield* Effect.scoped(acquire(store, name))
    yield* Effect.scoped(Effect.gen(function*() {
      const current = yield* acquire(store, name)
      yield* ensureLeaseLost(stale.save(30), "lease.save of a lease that was taken over")
      yield* ensureAt(store, name, Option.some(20), "a lease that was taken over saves nothing")
      yield* ok(current.save(31), "lease.save of the current holder")
      yield* ensureAt(store, name, Option.some(31), "the current holder saves")
    }))
  })
)

const transactionCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    const lease = yield* acquire(store, name)
    yield* ensureEqual(yield* ok(lease.transaction(Effect.succeed(42)), "transaction"), 42, "transaction returns")
    yield* ok(lease.transaction(lease.save(5)), "transaction(save)")
    yield* ensureAt(store, name, Option.some(5), "a save inside a successful transaction is kept")
    const exit = yield* Effect.exit(lease.transaction(Effect.zipRight(lease.save(6), new Marker({ n: 1 }))))
    const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
    yield* ensure(
      error instanceof Marker && error.n === 1,
      `a transaction fails with the error of the effect it ran, unchanged; got ${
        Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "a success"
      }`
    )
    yield* ok(lease.save(7), "lease.save after a failed transaction")
    yield* ensureAt(store, name, Option.some(7), "the lease keeps working after a failed transaction")
    yield* ok(lease.transaction(Effect.zipRight(lease.save(8), lease.save(9))), "transaction(save, save)")
    yield* ensureAt(store, name, Option.some(9), "several saves inside one transaction")
    yield* ok(lease.save(10), "lease.save after a transaction with several saves")
  })
)

const transactionRollbackCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    const lease = yield* acquire(store, name)
    yield* ok(lease.save(5), "lease.save")
    yield* Effect.exit(lease.transaction(Effect.zipRight(lease.save(6), Effect.fail(new Marker({ n: 2 })))))
    yield* ensureAt(store, name, Option.some(5), "a save inside a failed transaction is rolled back")
    yield* ok(lease.save(7), "lease.save after a rolled-back transaction")
    yield* ensureAt(store, name, Option.some(7), "the lease keeps working after a rolled-back transaction")
  })
)

const concurrentConsumersCheck = withStore((store) =>
  Effect.gen(function*() {
    const name = yield* unique("cp")
    const consumers = 8
    // each consumer takes the name, reads where the last one left, pauses, and moves the checkpoint by one
    const results = yield* Effect.all(
      Array.from({ length: consumers }, () =>
        Effect.either(Effect.scoped(Effect.gen(function*() {
          const lease = yield* ok(store.acquire(name), "acquire")
          yield* Effect.sleep("5 millis")
          yield* ok(lease.save(Option.getOrElse(lease.position, () => 0) + 1), "lease.save")
        })))),
      { concurrency: "unbounded" }
    ).pipe((effect) => withPatience(effect, `${consumers} consumers taking turns on one name`))
    const failures = results.flatMap((result) => result._tag === "Left" ? [result.left.description] : [])
    yield* ensure(failures.length === 0, `consumers taking turns must not fail: ${show(failures)}`)
    yield* ensureAt(
      store,
      name,
      Option.some(consumers),
      "one consumer at a time: every consumer's step is kept (none lost, none repeated)"
    )
  })
)

// -------------------------------------------------------------------------------------
// exports
// -------------------------------------------------------------------------------------

/**
 * Every check of the contract, by name, as a plain Effect (see {@link suite} for what they cover).
 * `transactionRollback` holds only for stores whose leases have real transactions (see {@link Options}).
 *
 * @since 0.2.0
 * @category testing
 */
export const checks = {
  loadSave: named("loadSave", loadSaveCheck),
  reset: named("reset", resetCheck),
  resetRequest: named("resetRequest", resetRequestCheck),
  invalidPosition: named("invalidPosition", invalidPositionCheck),
  leaseExclusive: named("leaseExclusive", leaseExclusiveCheck),
  leasePosition: named("leasePosition", leasePositionCheck),
  leaseFencing: named("leaseFencing", leaseFencingCheck),
  transaction: named("transaction", transactionCheck),
  transactionRollback: named("transactionRollback", transactionRollbackCheck),
  concurrentConsumers: named("concurrentConsumers", concurrentConsumersCheck)
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
  loadSave: "load / save by name: none for an unknown name, names independent, later saves replace, 0 and 2^53-1",
  reset: "reset(name, position) sets the checkpoint, reset(name) removes it, other names untouched",
  resetRequest:
    "requestReset / pendingReset / completeReset (by id, newest wins), recordError and info (holder while leased)",
  invalidPosition:
    "an invalid checkpoint position (negative, fractional, NaN, infinite) is refused with a typed error and nothing is saved",
  leaseExclusive: "a lease is exclusive: a second acquire waits for the first scope to close; other names do not wait",
  leasePosition: "a lease starts at the checkpoint, its save and reset move it, a new lease starts where it was left",
  leaseFencing: "a lease whose checkpoint was moved by someone else, or that was taken over, fails with LeaseLost",
  transaction: "lease.transaction returns the effect's value and error unchanged; the lease keeps working after it",
  transactionRollback: "a save inside a failed lease.transaction is rolled back (transactional stores)",
  concurrentConsumers: "concurrent consumers of one name take turns: every step kept, none lost, none repeated"
}

/**
 * Registers the whole conformance suite for a checkpoint store Layer with `@effect/vitest`: the Layer is built once
 * (without test services: the checks use the real clock) and every check in {@link checks} becomes a test
 * (`transactionRollback` only with `transactional: true`).
 *
 * The suite covers: `load` / `save` / `reset` by name; refusal of invalid positions with a typed error; exclusive
 * leases (a waiting acquire, other names free, interrupted waiters letting go); lease positions, saves and resets;
 * fencing (`LeaseLost` after the checkpoint was moved by someone else or the lease was taken over); `transaction`
 * passing values and errors through, and rolling back for transactional stores; concurrent consumers taking turns.
 *
 * @example
 * ```ts
 * import { CheckpointStore } from "@effect-eventsourcing/core"
 * import { CheckpointStoreContract } from "@effect-eventsourcing/testing"
 *
 * CheckpointStoreContract.suite("CheckpointStore.layerMemory", CheckpointStore.layerMemory)
 * ```
 *
 * @since 0.2.0
 * @category testing
 */
export const suite = <E>(
  name: string,
  store: Layer.Layer<CheckpointStore.CheckpointStore, E>,
  options?: Options
): void => {
  const timeout = Duration.decode(options?.timeout ?? Duration.seconds(60))
  const known = new Set(options?.knownFailures ?? [])
  describe(`CheckpointStoreContract: ${name}`, () => {
    layer(store, { excludeTestServices: true, timeout })((it) => {
      for (const key of Object.keys(checks) as Array<CheckName>) {
        if (key === "transactionRollback" && options?.transactional !== true) continue
        const test = known.has(key) ? it.effect.fails : it.effect
        test(
          known.has(key) ? `${titles[key]} (known failure)` : titles[key],
          () => checks[key],
          Duration.toMillis(timeout)
        )
      }
    })
  })
}
