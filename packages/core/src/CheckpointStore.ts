/**
 * Checkpoints of subscriptions: for each subscription name, the global position of the last event it handled.
 *
 * Besides plain `load` / `save` / `reset`, a store hands out {@link Lease}s: exclusive ownership of a subscription
 * name (one active consumer per name, across processes for durable stores) with fenced checkpoint writes. Acquiring a
 * lease invalidates any earlier lease of the same name, so a consumer that lost its lease (its process froze, its
 * connection died and another consumer took over) can no longer move the checkpoint: its save fails with
 * {@link LeaseLost} and, when the store supports transactions, its handler's writes are rolled back with it.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as EventStore from "./EventStore.js"
import { causeMessage } from "./internal/causeMessage.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/CheckpointStore")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The lease on a subscription name was taken over by another consumer (or the checkpoint was reset or moved by
 * someone else) since it was acquired; nothing was saved.
 *
 * @since 0.1.0
 * @category errors
 */
export class LeaseLost extends Schema.TaggedError<LeaseLost>()("LeaseLost", {
  name: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The lease on subscription ${this.name} was lost`
  }
}

/**
 * An infrastructure failure of a checkpoint store (connection, SQL, ...). The cause is kept for logs.
 *
 * @since 0.2.0
 * @category errors
 */
export class CheckpointStoreError extends Schema.TaggedError<CheckpointStoreError>()("CheckpointStoreError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `CheckpointStore.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * The rule for a checkpoint position every store applies before writing anything: a non-negative safe integer
 * (`NaN`, infinities, fractions and negative numbers are refused with `InvalidArgument`). For store
 * implementations; `method` names the call in the error (e.g. `"CheckpointStore.save"`).
 *
 * @since 0.2.0
 * @category validation
 */
export const validatePosition = (
  method: string,
  position: number | undefined
): Effect.Effect<void, EventStore.InvalidArgument> =>
  position === undefined || (Number.isSafeInteger(position) && position >= 0)
    ? Effect.void
    : Effect.fail(
      new EventStore.InvalidArgument({
        method,
        argument: "position",
        reason: `expected a non-negative integer, got ${String(position)}`
      })
    )

/**
 * Exclusive ownership of a subscription name, valid until the scope it was acquired in closes or another consumer
 * takes it over.
 *
 * @since 0.1.0
 * @category models
 */
export interface Lease {
  readonly name: string
  /** The checkpoint when the lease was acquired. */
  readonly position: Option.Option<number>
  /**
   * Moves the checkpoint to `position`. Fails with {@link LeaseLost} when the lease was taken over, or when the
   * checkpoint is not where this lease last left it (for instance after a commit whose outcome was unknown).
   */
  readonly save: (
    position: number
  ) => Effect.Effect<void, LeaseLost | CheckpointStoreError | EventStore.InvalidArgument>
  /** Sets the checkpoint to `position`, or removes it (replay from the start), with the same fencing as `save`. */
  readonly reset: (
    position?: number
  ) => Effect.Effect<void, LeaseLost | CheckpointStoreError | EventStore.InvalidArgument>
  /**
   * Runs `self` and the checkpoint writes made inside it as one transaction when the store supports it (Postgres:
   * a handler's own SQL commits together with the checkpoint, which makes a subscription exactly-once). For stores
   * without transactions it runs `self` as is.
   */
  readonly transaction: <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | CheckpointStoreError, R>
}

/**
 * A reset of a subscription asked for from outside the consumer ({@link CheckpointStore.Service.requestReset}): the
 * consumer holding the lease picks it up, runs the projection's `onReset` and replays from `position` (none: from the
 * start). `id` tells requests apart (a newer request replaces an older one that was not applied yet).
 *
 * @since 0.3.0
 * @category models
 */
export interface ResetRequest {
  readonly id: number
  readonly position: number | undefined
  /** Reset even when the projection has no `onReset` (its read model then counts the replayed events again). */
  readonly allowDuplicates: boolean
  readonly requestedAt: DateTime.Utc
}

/**
 * What a checkpoint store knows about a subscription name: its checkpoint, which consumer holds its lease now (a
 * description: for PostgreSQL the holding connection's application name, address and backend pid), the last error
 * a consumer recorded, and a reset request not applied yet.
 *
 * @since 0.3.0
 * @category models
 */
export interface Info {
  readonly name: string
  readonly position: Option.Option<number>
  readonly holder: Option.Option<string>
  readonly lastError: Option.Option<{ readonly message: string; readonly at: DateTime.Utc }>
  readonly resetRequest: Option.Option<ResetRequest>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CheckpointStore extends Context.Tag("@effect-eventsourcing/core/CheckpointStore")<
  CheckpointStore,
  CheckpointStore.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace CheckpointStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** The position of the last event the subscription handled, if any. */
    readonly load: (name: string) => Effect.Effect<Option.Option<number>, CheckpointStoreError>
    /**
     * Stores the checkpoint (unfenced: prefer a {@link Lease} while a consumer may be running). A position that is
     * not a non-negative integer is refused with `InvalidArgument`.
     */
    readonly save: (
      name: string,
      position: number
    ) => Effect.Effect<void, CheckpointStoreError | EventStore.InvalidArgument>
    /**
     * Sets the checkpoint to `position`, or removes it when no position is given. A running consumer notices at its
     * next save ({@link LeaseLost}) and restarts from the new checkpoint.
     */
    readonly reset: (
      name: string,
      position?: number
    ) => Effect.Effect<void, CheckpointStoreError | EventStore.InvalidArgument>
    /**
     * Waits until no other consumer holds the name, then holds it until the scope closes (or until another
     * consumer takes it over after this one died).
     */
    readonly acquire: (name: string) => Effect.Effect<Lease, CheckpointStoreError, Scope.Scope>
    /**
     * Records a reset request for the consumer holding the name (see {@link ResetRequest}); it replaces a request
     * not applied yet. A `position` that is not a non-negative integer is refused with `InvalidArgument`.
     *
     * @since 0.3.0
     */
    readonly requestReset: (
      name: string,
      options?: { readonly position?: number | undefined; readonly allowDuplicates?: boolean | undefined }
    ) => Effect.Effect<ResetRequest, CheckpointStoreError | EventStore.InvalidArgument>
    /**
     * The reset request not applied yet, if any.
     *
     * @since 0.3.0
     */
    readonly pendingReset: (name: string) => Effect.Effect<Option.Option<ResetRequest>, CheckpointStoreError>
    /**
     * Marks the request `id` applied (a newer request stays), joining the caller's transaction where supported: the
     * consumer applies a request and marks it in the transaction that resets the checkpoint.
     *
     * @since 0.3.0
     */
    readonly completeReset: (name: string, id: number) => Effect.Effect<void, CheckpointStoreError>
    /**
     * Records the last error of the subscription's consumer (shown by {@link info}; not fenced, never transactional).
     *
     * @since 0.3.0
     */
    readonly recordError: (name: string, message: string) => Effect.Effect<void, CheckpointStoreError>
    /**
     * What the store knows about one subscription name, or about every name it has (in name order).
     *
     * @since 0.3.0
     */
    readonly info: (name?: string) => Effect.Effect<ReadonlyArray<Info>, CheckpointStoreError>
    /**
     * Like `acquire` without the wait: the lease (held until the scope closes) when no other consumer holds the
     * name, otherwise `None` at once, holding nothing. Consumer groups take partitions with it; a store without it
     * is used through `acquire` bounded by a short timeout.
     *
     * @since 0.3.0
     */
    readonly tryAcquire?: (name: string) => Effect.Effect<Option.Option<Lease>, CheckpointStoreError, Scope.Scope>
  }
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

interface Entry {
  position: Option.Option<number>
  generation: number
  held: boolean
  lastError: Option.Option<{ readonly message: string; readonly at: DateTime.Utc }>
  resetRequest: Option.Option<ResetRequest>
}

interface Holder {
  readonly semaphore: Effect.Semaphore
  refs: number
}

/**
 * An in-memory checkpoint store. Leases are exclusive within the process; there are no transactions, so a
 * subscription using it is at-least-once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<CheckpointStore.Service> = Effect.sync(() => {
  const entries = new Map<string, Entry>()
  const holders = new Map<string, Holder>()

  const entry = (name: string): Entry => {
    let current = entries.get(name)
    if (current === undefined) {
      current = {
        position: Option.none(),
        generation: 0,
        held: false,
        lastError: Option.none(),
        resetRequest: Option.none()
      }
      entries.set(name, current)
    }
    return current
  }

  const set = (name: string, position: Option.Option<number>) =>
    Effect.sync(() => {
      const current = entry(name)
      current.position = position
      current.generation++
    })

  const hold = (name: string): Effect.Effect<void, never, Scope.Scope> =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        let holder = holders.get(name)
        if (holder === undefined) {
          holder = { semaphore: Effect.unsafeMakeSemaphore(1), refs: 0 }
          holders.set(name, holder)
        }
        const current = holder
        current.refs++
        const forget = Effect.sync(() => {
          current.refs--
          if (current.refs === 0) holders.delete(name)
        })
        return restore(current.semaphore.take(1)).pipe(
          Effect.onInterrupt(() => forget),
          Effect.zipRight(Effect.addFinalizer(() => Effect.zipRight(current.semaphore.release(1), forget)))
        )
      })
    )

  let resetRequests = 0

  const acquire = (name: string): Effect.Effect<Lease, never, Scope.Scope> =>
    Effect.zipRight(
      Effect.zipRight(
        hold(name),
        Effect.addFinalizer(() => Effect.sync(() => void (entry(name).held = false)))
      ),
      Effect.sync((): Lease => {
        const current = entry(name)
        current.generation++
        current.held = true
        const generation = current.generation
        let expected = current.position
        const fenced = (position: Option.Option<number>) =>
          Effect.suspend(() => {
            const now = entry(name)
            if (
              now.generation !== generation || !Option.getEquivalence<number>((a, b) => a === b)(now.position, expected)
            ) {
              return Effect.fail(new LeaseLost({ name }))
            }
            now.position = position
            expected = position
            return Effect.void
          })
        return {
          name,
          position: current.position,
          save: (position) =>
            Effect.zipRight(validatePosition("CheckpointStore.Lease.save", position), fenced(Option.some(position))),
          reset: (position) =>
            Effect.zipRight(
              validatePosition("CheckpointStore.Lease.reset", position),
              fenced(Option.fromNullable(position))
            ),
          transaction: (self) => self
        }
      })
    )

  // a name is free when nobody holds it nor waits for it; the check and the take happen without a yield between
  const tryAcquire = (name: string): Effect.Effect<Option.Option<Lease>, never, Scope.Scope> =>
    Effect.suspend(() => holders.has(name) ? Effect.succeedNone : Effect.map(acquire(name), Option.some))

  return {
    [TypeId]: TypeId,
    load: (name) => Effect.sync(() => entries.get(name)?.position ?? Option.none()),
    save: (name, position) =>
      Effect.zipRight(validatePosition("CheckpointStore.save", position), set(name, Option.some(position))),
    reset: (name, position) =>
      Effect.zipRight(validatePosition("CheckpointStore.reset", position), set(name, Option.fromNullable(position))),
    acquire,
    requestReset: (name, options) =>
      Effect.zipRight(
        validatePosition("CheckpointStore.requestReset", options?.position),
        Effect.map(DateTime.now, (requestedAt) => {
          const request: ResetRequest = {
            id: ++resetRequests,
            position: options?.position,
            allowDuplicates: options?.allowDuplicates ?? false,
            requestedAt
          }
          entry(name).resetRequest = Option.some(request)
          return request
        })
      ),
    pendingReset: (name) => Effect.sync(() => entries.get(name)?.resetRequest ?? Option.none()),
    completeReset: (name, id) =>
      Effect.sync(() => {
        const current = entries.get(name)
        if (current !== undefined && Option.exists(current.resetRequest, (request) => request.id === id)) {
          current.resetRequest = Option.none()
        }
      }),
    recordError: (name, message) =>
      Effect.map(DateTime.now, (at) => void (entry(name).lastError = Option.some({ message, at }))),
    info: (name) =>
      Effect.sync(() =>
        Array.from(entries.entries())
          .filter(([key]) => name === undefined || key === name)
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([key, current]): Info => ({
            name: key,
            position: current.position,
            holder: current.held ? Option.some("this process") : Option.none(),
            lastError: current.lastError,
            resetRequest: current.resetRequest
          }))
      ),
    tryAcquire
  }
})

/**
 * A fresh in-memory checkpoint store per layer build.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<CheckpointStore> = Layer.effect(CheckpointStore, makeMemory)
