/**
 * Partitioned consumer groups (`Subscription.runGroup`): a group splits the global log into `partitions` by a stable
 * hash of the stream id; each partition is an ordinary durable subscription named after the group and the partition,
 * with its own checkpoint and lease. Members split the partitions between them through the checkpoint store's leases:
 *
 * - a member holds a **member slot** (the lease `group[member k]`, the lowest free one) for as long as it lives;
 * - every `rebalanceEvery` it counts the live slots (a slot is live when its lease is held: `tryAcquire` says no),
 *   takes its rank r among the M live slots and wants the partitions p with `p mod M = r`;
 * - it lets go of the partitions it no longer wants (its running batch is interrupted: with transactions it rolls
 *   back) and takes the ones it wants once their previous holder let go (`tryAcquire` on the partition's lease).
 *
 * A member that dies loses its leases with its connections (Postgres advisory locks), so the others see one slot
 * less at their next rebalance and take its partitions over from their checkpoints. Correctness never depends on
 * the members agreeing: a partition is consumed only under its lease, whose writes are fenced.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as CheckpointStore from "../CheckpointStore.js"
import * as EventStore from "../EventStore.js"
import type * as Projection from "../Projection.js"
import type * as Subscription from "../Subscription.js"

const encoder = new TextEncoder()

/** FNV-1a (32 bits) of the stream id's UTF-8 bytes, modulo `partitions`: the same in every process and version. */
export const partitionOf = (streamId: string, partitions: number): number => {
  let hash = 0x811c9dc5
  for (const byte of encoder.encode(streamId)) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % partitions
}

/** The subscription (checkpoint and lease) name of a partition; the count is part of it: repartitioning starts over. */
export const partitionName = (group: string, partition: number, partitions: number): string =>
  `${group}[${partition}/${partitions}]`

/** Where the member that holds a partition writes its slot number (removed when it lets go cleanly). */
export const holderName = (group: string, partition: number, partitions: number): string =>
  `${partitionName(group, partition, partitions)}.member`

const slotName = (group: string, slot: number): string => `${group}[member ${slot}]`

type GroupOptions<E> = Subscription.GroupOptions<E>
type Group<E> = Subscription.Group<E>
type PartitionStatus = Subscription.PartitionStatus

type ForkScoped = <E, R>(
  projection: Projection.Projection<E, R>,
  options: Subscription.Options<E> & { readonly checkpoints: CheckpointStore.CheckpointStore.Service }
) => Effect.Effect<Subscription.Subscription<E>, never, Scope.Scope | R | EventStore.EventStore>

/** The refusal of bad options, before anything is written. */
export const validate = (options: {
  readonly group: string
  readonly partitions: number
  readonly members?: number
}): Effect.Effect<void, EventStore.InvalidArgument> => {
  const refuse = (argument: string, reason: string) =>
    Effect.fail(new EventStore.InvalidArgument({ method: "Subscription.runGroup", argument, reason }))
  if (options.group.length === 0) return refuse("group", "expected a non-empty name")
  if (!Number.isSafeInteger(options.partitions) || options.partitions < 1 || options.partitions > 1024) {
    return refuse("partitions", `expected an integer from 1 to 1024, got ${String(options.partitions)}`)
  }
  if (options.members !== undefined && (!Number.isSafeInteger(options.members) || options.members < 1)) {
    return refuse("members", `expected a positive integer, got ${String(options.members)}`)
  }
  return Effect.void
}

/** The projection a partition runs: the group's projection for the events of its streams only. */
const restrict = <E, R>(
  projection: Projection.Projection<E, R>,
  name: string,
  partition: number,
  partitions: number
): Projection.Projection<E, R> => {
  const mine = (event: EventStore.RecordedEvent) => partitionOf(event.streamId, partitions) === partition
  const handleBatch = projection.handleBatch
  return {
    ...projection,
    name,
    handle: (event) => mine(event) ? projection.handle(event) : Effect.void,
    onDelete: projection.onDelete === undefined ?
      undefined :
      (streamId) =>
        partitionOf(streamId, partitions) === partition && projection.onDelete !== undefined
          ? projection.onDelete(streamId)
          : Effect.void,
    handleBatch: handleBatch === undefined ? undefined : (events) => {
      const own = events.filter(mine)
      return own.length === 0 ? Effect.void : handleBatch(own)
    }
  }
}

/** `tryAcquire`, or for a store without it `acquire` bounded by a short wait. */
const tryAcquire = (checkpoints: CheckpointStore.CheckpointStore.Service) =>
(
  name: string
): Effect.Effect<Option.Option<CheckpointStore.Lease>, CheckpointStore.CheckpointStoreError, Scope.Scope> =>
  checkpoints.tryAcquire !== undefined
    ? checkpoints.tryAcquire(name)
    : Effect.timeoutTo(checkpoints.acquire(name), {
      duration: "50 millis",
      onTimeout: Option.none,
      onSuccess: Option.some
    })

interface Held<E> {
  readonly scope: Scope.CloseableScope
  readonly subscription: Subscription.Subscription<E>
}

export const forkGroupScoped = <E, R>(
  forkScoped: ForkScoped,
  projection: Projection.Projection<E, R>,
  options: GroupOptions<E>
): Effect.Effect<
  Group<E>,
  EventStore.InvalidArgument,
  Scope.Scope | R | EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Effect.gen(function*() {
    yield* validate(options)
    const checkpoints = options.checkpoints ?? (yield* CheckpointStore.CheckpointStore)
    const { group, partitions } = options
    const slots = options.members ?? partitions
    const every = options.rebalanceEvery ?? "1 second"
    const attempt = tryAcquire(checkpoints)
    const context = yield* Effect.context<R | EventStore.EventStore>()
    // the partitions' and the slot's scopes: closed after `leave` (a finalizer added later runs earlier), so that a
    // member leaving cleanly forgets its holder entries while it still holds the partitions
    const groupScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)

    const stopped = yield* Deferred.make<never, Subscription.Error<E>>()
    const held = new Map<number, Held<E>>()
    let slot: Option.Option<
      { readonly number: number; readonly lease: CheckpointStore.Lease; scope: Scope.CloseableScope }
    > = Option.none()
    let beats = 0
    let seen: ReadonlyArray<number> = []
    const lock = yield* Effect.makeSemaphore(1)

    // A member stopping interrupts its rebalance fiber, maybe inside `take` or `release`: the holder entry is written
    // only for a partition already in `held` (and not interrupted halfway), and `release` is not interrupted
    // halfway, so that `leave` forgets every entry this member wrote
    /** Lets go of a partition: forget the holder entry while still holding it, then close its lease's scope. */
    const release = (partition: number) =>
      Effect.uninterruptible(Effect.suspend(() => {
        const current = held.get(partition)
        if (current === undefined) return Effect.void
        held.delete(partition)
        return Effect.zipRight(
          Effect.ignore(checkpoints.reset(holderName(group, partition, partitions))),
          Scope.close(current.scope, Exit.void)
        )
      }))

    const take = (partition: number, member: number) =>
      Effect.gen(function*() {
        const name = partitionName(group, partition, partitions)
        const scope = yield* Scope.fork(groupScope, ExecutionStrategy.sequential)
        const lease = yield* Scope.extend(attempt(name), scope).pipe(
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        if (Option.isNone(lease)) return yield* Scope.close(scope, Exit.void)
        // the subscription gets the lease taken here; when it needs another one (its lease was lost or the
        // store failed) it is refused, shows "retrying", and the next rebalance lets go of the partition
        let handed = false
        const own: CheckpointStore.CheckpointStore.Service = {
          ...checkpoints,
          acquire: () => {
            if (handed) {
              return Effect.fail(
                new CheckpointStore.CheckpointStoreError({ method: "acquire", cause: `partition ${name} to retake` })
              )
            }
            handed = true
            return Effect.succeed(lease.value)
          }
        }
        const { checkpoints: _, group: _g, members: _m, partitions: _p, rebalanceEvery: _r, ...rest } = options
        const subscription = yield* Scope.extend(
          forkScoped(restrict(projection, name, partition, partitions), {
            ...rest,
            // a batch counts the log's events, the partition's own and the skipped ones: about `partitions` times
            // as many as a subscription's keep each transaction as full of the partition's own events
            batchSize: rest.batchSize ?? 100 * partitions,
            checkpoints: own
          }),
          scope
        ).pipe(Effect.provide(context))
        // the handler failed for good (its retry Schedule gave up): the whole group stops with its error
        yield* Effect.forkIn(
          Effect.catchAllCause(
            subscription.join,
            (cause) => Cause.isInterruptedOnly(cause) ? Effect.void : Deferred.failCause(stopped, cause)
          ),
          scope
        )
        held.set(partition, { scope, subscription })
        yield* Effect.uninterruptible(checkpoints.save(holderName(group, partition, partitions), member)).pipe(
          Effect.onError(() => release(partition)),
          Effect.catchTag("InvalidArgument", Effect.die)
        )
      })

    /** Is the slot held by a live member? (Taking it for an instant when it is free.) */
    const live = (number: number) => Effect.scoped(Effect.map(attempt(slotName(group, number)), Option.isNone))

    const join = Effect.gen(function*() {
      for (let number = 0; number < slots; number++) {
        const scope = yield* Scope.fork(groupScope, ExecutionStrategy.sequential)
        const lease = yield* Scope.extend(attempt(slotName(group, number)), scope).pipe(
          Effect.onError(() => Scope.close(scope, Exit.void))
        )
        if (Option.isSome(lease)) {
          slot = Option.some({ number, lease: lease.value, scope })
          return
        }
        yield* Scope.close(scope, Exit.void)
      }
    })

    const leave = Effect.suspend(() =>
      Effect.zipRight(
        Effect.forEach([...held.keys()], release, { discard: true }),
        Effect.suspend(() => {
          const current = slot
          slot = Option.none()
          return Option.isSome(current) ? Scope.close(current.value.scope, Exit.void) : Effect.void
        })
      )
    )

    const rebalanceOnce = Effect.gen(function*() {
      // the group stopped (a handler failed for good): nothing more is taken
      if (yield* Deferred.isDone(stopped)) return yield* leave
      if (Option.isSome(slot)) {
        // a heartbeat that also tells whether another member took the slot over (our lease's connection died)
        const beat = yield* Effect.either(slot.value.lease.save(++beats))
        if (beat._tag === "Left" && beat.left._tag === "LeaseLost") yield* leave
      }
      if (Option.isNone(slot)) yield* join
      if (Option.isNone(slot)) { // standby: every slot is taken
        seen = []
        return yield* leave
      }
      const own = slot.value.number
      const members: Array<number> = []
      for (let number = 0; number < slots; number++) {
        if (number === own || (yield* live(number))) members.push(number)
      }
      seen = members
      const rank = members.indexOf(own)
      const wanted = (partition: number) => partition % members.length === rank
      for (const [partition, current] of [...held]) {
        const state = (yield* current.subscription.status).state
        if (!wanted(partition) || state !== "running") yield* release(partition)
      }
      for (let partition = 0; partition < partitions; partition++) {
        if (wanted(partition) && !held.has(partition)) yield* take(partition, own)
      }
    }).pipe(
      lock.withPermits(1),
      // a failure (of the stores, or a defect) is logged and the next rebalance tries again: the loop never ends
      Effect.catchAllCause((cause) =>
        Effect.logWarning("Consumer group rebalance failed", cause).pipe(Effect.annotateLogs({ group }))
      )
    )

    yield* Effect.addFinalizer(() => lock.withPermits(1)(leave))
    yield* Effect.forkScoped(Effect.repeat(rebalanceOnce, Schedule.spaced(every)))

    return {
      group,
      partitions,
      member: Effect.sync(() => Option.map(slot, (s) => s.number)),
      members: Effect.sync(() => seen),
      owned: Effect.sync(() => [...held.keys()].sort((a, b) => a - b)),
      rebalance: rebalanceOnce,
      join: Deferred.await(stopped)
    } satisfies Group<E>
  })

/** Each partition's member, checkpoint and lag (the head is the last position of the global log). */
export const status = (options: {
  readonly group: string
  readonly partitions: number
  readonly checkpoints?: CheckpointStore.CheckpointStore.Service | undefined
}): Effect.Effect<
  ReadonlyArray<PartitionStatus>,
  CheckpointStore.CheckpointStoreError | EventStore.EventStoreError | EventStore.InvalidArgument,
  EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Effect.gen(function*() {
    yield* validate(options)
    const checkpoints = options.checkpoints ?? (yield* CheckpointStore.CheckpointStore)
    const store = yield* EventStore.EventStore
    const { group, partitions } = options
    const rows = yield* Effect.forEach(Array.from({ length: partitions }, (_, i) => i), (partition) =>
      Effect.all({
        checkpoint: checkpoints.load(partitionName(group, partition, partitions)),
        member: checkpoints.load(holderName(group, partition, partitions))
      }))
    const highest = rows.reduce((max, row) => Math.max(max, Option.getOrElse(row.checkpoint, () => 0)), 0)
    const last = yield* store.readAll({ from: highest + 1 }).pipe(
      Stream.runLast,
      Effect.mapError((error) =>
        error._tag === "EventStoreError" ? error : new EventStore.EventStoreError({ method: "status", cause: error })
      )
    )
    const head = Option.match(last, { onNone: () => highest, onSome: (event) => event.position })
    return rows.map((row, partition) => ({
      partition,
      name: partitionName(group, partition, partitions),
      member: row.member,
      checkpoint: row.checkpoint,
      lag: head - Option.getOrElse(row.checkpoint, () => 0)
    }))
  })
