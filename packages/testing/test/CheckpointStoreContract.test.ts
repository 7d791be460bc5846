import { CheckpointStore, EventStore } from "@effect-eventsourcing/core"
import { CheckpointStoreContract } from "@effect-eventsourcing/testing"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Duration, Effect, FiberId, Layer, Option } from "effect"

// The suite itself runs on the in-memory store in packages/core and on PostgreSQL in packages/postgres; here every
// check is shown to fail on a broken store.

type Impl = Omit<CheckpointStore.CheckpointStore.Service, CheckpointStore.TypeId>

/** The in-memory store with some operations replaced by broken ones. */
const broken = (f: (inner: CheckpointStore.CheckpointStore.Service) => Partial<Impl>) =>
  Layer.effect(
    CheckpointStore.CheckpointStore,
    Effect.map(
      CheckpointStore.makeMemory,
      (inner): CheckpointStore.CheckpointStore.Service => ({ ...inner, ...f(inner) })
    )
  )

/** The in-memory store whose leases are changed. */
const brokenLease = (
  f: (lease: CheckpointStore.Lease, inner: CheckpointStore.CheckpointStore.Service) => Partial<CheckpointStore.Lease>
) =>
  broken((inner) => ({
    acquire: (name) => Effect.map(inner.acquire(name), (lease) => ({ ...lease, ...f(lease, inner) }))
  }))

const isInvalid = (position: number | undefined) =>
  position !== undefined && !(Number.isSafeInteger(position) && position >= 0)

const refuse = Effect.fail(
  new EventStore.InvalidArgument({ method: "CheckpointStore.save", argument: "position", reason: "invalid" })
)

/**
 * The classic hand-over bug: a releasing holder hands the name to the first waiter in line, even when that waiter
 * was interrupted meanwhile, so the name is never free again.
 */
const handsOverToQuitters = broken((inner) => {
  const holders = new Map<string, Array<Deferred.Deferred<void>>>()
  const release = (name: string) =>
    Effect.suspend(() => {
      const next = holders.get(name)!.shift()
      if (next === undefined) {
        holders.delete(name)
        return Effect.void
      }
      return Deferred.succeed(next, undefined)
    })
  const gate = (name: string) =>
    Effect.suspend(() => {
      const line = holders.get(name)
      if (line === undefined) {
        holders.set(name, [])
        return Effect.void
      }
      const turn = Deferred.unsafeMake<void>(FiberId.none)
      line.push(turn)
      return Deferred.await(turn)
    })
  return {
    acquire: (name) =>
      Effect.zipRight(
        Effect.zipRight(gate(name), Effect.addFinalizer(() => release(name))),
        inner.acquire(name)
      )
  }
})

const violates = (
  store: string,
  layer: Layer.Layer<CheckpointStore.CheckpointStore>,
  check: CheckpointStoreContract.CheckName,
  phrase: string
) =>
  it.live(`${store} fails ${check}`, () =>
    Effect.gen(function*() {
      const violation = yield* Effect.flip(CheckpointStoreContract.checks[check])
      assert.instanceOf(violation, CheckpointStoreContract.ContractViolation)
      assert.strictEqual(violation.contract, "CheckpointStoreContract")
      assert.strictEqual(violation.check, check)
      assert.include(violation.description, phrase)
    }).pipe(
      Effect.provide(layer),
      Effect.provideService(CheckpointStoreContract.Patience, Duration.seconds(1))
    ))

describe("CheckpointStoreContract has teeth: broken stores fail the relevant checks", () => {
  const oneCheckpoint = broken((inner) => ({
    load: () => inner.load("the-only-one"),
    save: (_, position) => inner.save("the-only-one", position)
  }))
  violates("a store with one checkpoint for all names", oneCheckpoint, "loadSave", "leaves the others")

  const keepsHighest = broken((inner) => ({
    save: (name, position) =>
      Effect.flatMap(
        inner.load(name),
        (current) => Option.isSome(current) && current.value > position ? Effect.void : inner.save(name, position)
      )
  }))
  violates("a store that never moves a checkpoint back", keepsHighest, "loadSave", "also with a lower one")

  const resetKeeps = broken((inner) => ({
    reset: (name, position) => position === undefined ? Effect.void : inner.reset(name, position)
  }))
  violates("a store whose reset(name) does nothing", resetKeeps, "reset", "removes the checkpoint")

  const clearsAnyRequest = broken((inner) => ({
    completeReset: (name) =>
      Effect.flatMap(
        inner.pendingReset(name),
        (pending) => Option.isSome(pending) ? inner.completeReset(name, pending.value.id) : Effect.void
      )
  }))
  violates(
    "a store whose completeReset clears a newer request",
    clearsAnyRequest,
    "resetRequest",
    "keeps a newer request"
  )

  const clamps = broken((inner) => ({
    save: (name, position) => inner.save(name, isInvalid(position) ? 0 : position),
    reset: (name, position) => inner.reset(name, isInvalid(position) ? 0 : position)
  }))
  violates("a store that clamps invalid positions", clamps, "invalidPosition", "was accepted")

  const dies = broken((inner) => ({
    save: (name, position) => isInvalid(position) ? Effect.die(new RangeError("bad")) : inner.save(name, position)
  }))
  violates("a store that dies on invalid positions", dies, "invalidPosition", "not a defect")

  const leaseAcceptsAnything = broken((inner) => ({
    // the store's own save and reset refuse invalid positions, its leases do not
    save: (name, position) => isInvalid(position) ? refuse : inner.save(name, position),
    reset: (name, position) => isInvalid(position) ? refuse : inner.reset(name, position),
    acquire: (name) =>
      Effect.map(inner.acquire(name), (lease) => ({
        ...lease,
        save: (position: number) => lease.save(isInvalid(position) ? 0 : position),
        reset: (position?: number) => lease.reset(isInvalid(position) ? 0 : position)
      }))
  }))
  violates("a store whose leases clamp invalid positions", leaseAcceptsAnything, "invalidPosition", "lease.save")

  const sharedLeases = broken((inner) => ({ acquire: (name) => Effect.scoped(inner.acquire(name)) }))
  violates("a store whose leases are not exclusive", sharedLeases, "leaseExclusive", "must wait")
  violates("a store whose leases are not exclusive", sharedLeases, "concurrentConsumers", "must not fail")

  violates(
    "a store where an interrupted acquire keeps the name",
    handsOverToQuitters,
    "leaseExclusive",
    "after the first lease's scope closed"
  )

  const noPosition = brokenLease(() => ({ position: Option.none() }))
  violates("a store whose leases do not know the checkpoint", noPosition, "leasePosition", "starts at the checkpoint")

  const unfenced = brokenLease((lease, inner) => ({ save: (position) => inner.save(lease.name, position) }))
  violates("a store whose lease saves are not fenced", unfenced, "leaseFencing", "must fail with LeaseLost")

  const swallows = brokenLease((lease) => ({ transaction: (self) => lease.transaction(Effect.orDie(self)) }))
  violates("a store whose transaction turns errors into defects", swallows, "transaction", "unchanged")

  violates(
    "a store without transactions (the in-memory one)",
    CheckpointStore.layerMemory,
    "transactionRollback",
    "rolled back"
  )
})
