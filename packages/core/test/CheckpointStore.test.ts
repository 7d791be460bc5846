import { CheckpointStore, EventStore } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Scope } from "effect"

describe("CheckpointStore (memory)", () => {
  it.effect("loads, saves and resets checkpoints by name", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      assert.deepStrictEqual(yield* store.load("a"), Option.none())
      yield* store.save("a", 5)
      yield* store.save("b", 7)
      assert.deepStrictEqual(yield* store.load("a"), Option.some(5))
      yield* store.reset("a", 2)
      assert.deepStrictEqual(yield* store.load("a"), Option.some(2))
      yield* store.reset("a")
      assert.deepStrictEqual(yield* store.load("a"), Option.none())
      assert.deepStrictEqual(yield* store.load("b"), Option.some(7))
    }))

  it.scoped("a lease is exclusive until its scope closes", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      yield* store.save("a", 3)
      const scope = yield* Scope.make()
      const first = yield* store.acquire("a").pipe(Scope.extend(scope))
      assert.deepStrictEqual(first.position, Option.some(3))
      const acquired = yield* Deferred.make<CheckpointStore.Lease>()
      const waiter = yield* Effect.fork(
        Effect.flatMap(store.acquire("a"), (lease) => Deferred.succeed(acquired, lease))
      )
      // another name is independent
      yield* Effect.scoped(store.acquire("b"))
      yield* first.save(4)
      yield* Effect.yieldNow()
      assert.isFalse(yield* Deferred.isDone(acquired))
      yield* Scope.close(scope, Exit.void)
      const second = yield* Deferred.await(acquired)
      assert.deepStrictEqual(second.position, Option.some(4))
      yield* Fiber.interrupt(waiter)
    }))

  it.scoped("a waiting acquire can be interrupted without taking the lease", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      const scope = yield* Scope.make()
      yield* store.acquire("a").pipe(Scope.extend(scope))
      const waiter = yield* Effect.fork(Effect.scoped(store.acquire("a")))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(waiter)
      yield* Scope.close(scope, Exit.void)
      // the lease is free again
      yield* Effect.scoped(store.acquire("a"))
    }))

  it.scoped("saves through a lease are fenced", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      const scope = yield* Scope.make()
      const old = yield* store.acquire("a").pipe(Scope.extend(scope))
      yield* old.save(1)
      yield* Scope.close(scope, Exit.void)
      // a newer lease exists: the old holder can no longer move the checkpoint
      const current = yield* store.acquire("a")
      const lost = yield* Effect.flip(old.save(2))
      assert(lost instanceof CheckpointStore.LeaseLost)
      assert.strictEqual(lost.name, "a")
      yield* current.save(3)
      // an outside reset invalidates the current lease too
      yield* store.reset("a", 1)
      assert.strictEqual((yield* Effect.flip(current.save(4)))._tag, "LeaseLost")
      assert.deepStrictEqual(yield* store.load("a"), Option.some(1))
    }))

  it.scoped("refuses NaN, infinities, fractions and negative positions with InvalidArgument, writing nothing", () =>
    Effect.gen(function*() {
      const store = yield* CheckpointStore.makeMemory
      yield* store.save("a", 3)
      const lease = yield* store.acquire("a")
      for (const bad of [-5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.5, 2 ** 53]) {
        for (
          const [method, attempt] of [
            ["CheckpointStore.save", store.save("a", bad)],
            ["CheckpointStore.reset", store.reset("a", bad)],
            ["CheckpointStore.save", store.save("fresh", bad)],
            ["CheckpointStore.Lease.save", lease.save(bad)],
            ["CheckpointStore.Lease.reset", lease.reset(bad)]
          ] as const
        ) {
          const error = yield* Effect.flip(attempt)
          assert(error instanceof EventStore.InvalidArgument, `${method}(${bad})`)
          assert.strictEqual(error.method, method)
          assert.strictEqual(error.argument, "position")
          assert.include(error.message, String(bad))
        }
      }
      assert.deepStrictEqual(yield* store.load("a"), Option.some(3))
      assert.deepStrictEqual(yield* store.load("fresh"), Option.none())
      // the lease was not disturbed by the refused calls
      yield* lease.save(4)
      assert.deepStrictEqual(yield* store.load("a"), Option.some(4))
      // 0 is a valid position
      yield* store.save("zero", 0)
      assert.deepStrictEqual(yield* store.load("zero"), Option.some(0))
    }))

  it("CheckpointStoreError names the method and its cause, not the event store", () => {
    const error = new CheckpointStore.CheckpointStoreError({ method: "save", cause: new Error("connection reset") })
    assert.strictEqual(error._tag, "CheckpointStoreError")
    assert.strictEqual(error.message, "CheckpointStore.save failed: connection reset")
  })
})
