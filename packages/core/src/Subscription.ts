/**
 * Durable catch-up subscriptions: a {@link Projection.Projection} fed by `EventStore.subscribe` (catch-up, then
 * live, in global position order, never skipping an event committed out of order), with its checkpoint kept in a
 * {@link CheckpointStore.CheckpointStore}.
 *
 * - **At-least-once**: a batch of events is handled, then the checkpoint is saved. After a crash the batch after
 *   the last checkpoint is handled again.
 * - **Exactly-once** where the checkpoint store has transactions (Postgres): the handler's own writes and the
 *   checkpoint commit together, so a crash anywhere never applies an event twice nor loses one.
 * - **One active consumer per name**: the subscription holds the name's lease (a Postgres advisory lock across
 *   processes); another consumer of the same name waits and takes over when the holder dies or stops. Checkpoint
 *   writes are fenced, so a consumer that lost its lease cannot commit anything.
 * - **Failures of the handler** (its typed error, from `handle`, `handleBatch` or `onReset`) are retried by the
 *   `retry` Schedule, with the batch rolled back where the store has transactions; when the Schedule gives up the
 *   subscription stops with that error (`onFailure: "stop"`, the default), or parks the event in the
 *   {@link ParkedEvents.ParkedEvents} store and moves on (`onFailure: "park"`). An event is never skipped silently.
 * - **Failures of the infrastructure** (the event store's reads, the checkpoint store's lease, saves and commits:
 *   `EventStoreError`, `CheckpointStoreError`) never stop it: the subscription starts over from its checkpoint (taking
 *   the lease again) for as long as it runs, with a capped exponential backoff (100 ms doubling up to 5 s,
 *   jittered). An outage is logged once when it starts and once when it ends (warning level), every retry is
 *   counted in {@link infrastructureRetries} (tagged with the subscription's name), and the handle's `status`
 *   shows it.
 * - **Deletions**: when the projection has an `onDelete`, the subscription also reads the tombstones of deleted
 *   streams (`EventStore.Tombstone`) and runs `onDelete(streamId)` in position order with the events, in the batch's
 *   transaction: the checkpoint passes a tombstone only once `onDelete` has run.
 * - **Tracing and metrics**: each batch runs in a `Subscription.handle` span linked to the spans that appended its
 *   events (the `traceId` / `spanId` that `CommandHandler` stores in their metadata), and records the subscription
 *   metrics of the `Metrics` module.
 * - **Rebuild**: {@link Subscription.reset} (or `CheckpointStore.reset` while it is stopped) moves the checkpoint back
 *   and the projection replays, while writers keep appending. From another process: {@link requestReset}, picked
 *   up by the consumer holding the lease; {@link status} reports where a subscription is.
 *
 * @example
 * ```ts
 * import { CheckpointStore, InMemoryEventStore, Projection, Subscription } from "@effect-eventsourcing/core"
 * import { Effect, Layer } from "effect"
 *
 * let count = 0
 * const counter = Projection.make({ name: "count", handle: () => Effect.sync(() => void count++) })
 *
 * // runs for as long as the layer is alive
 * const Counting = Subscription.layer(counter).pipe(
 *   Layer.provide([InMemoryEventStore.layer, CheckpointStore.layerMemory])
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as CheckpointStore from "./CheckpointStore.js"
import * as EventStore from "./EventStore.js"
import * as consumerGroup from "./internal/consumerGroup.js"
import * as control from "./internal/subscriptionControl.js"
import * as loop from "./internal/subscriptionLoop.js"
import * as ParkedEvents from "./ParkedEvents.js"
import type * as Projection from "./Projection.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/Subscription")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<E> {
  /** Where to start (inclusive global position) when there is no checkpoint yet; default: the start. */
  readonly from?: number
  /** Only these events reach the handler (the checkpoint only moves on delivered events). */
  readonly filter?: EventStore.Filter
  /** The checkpoint store; default: the `CheckpointStore` service. */
  readonly checkpoints?: CheckpointStore.CheckpointStore.Service
  /** At most this many events are handled per checkpoint (and per transaction); default 100. */
  readonly batchSize?: number
  /**
   * Retries a batch whose handler failed (its own error `E`); when it gives up the subscription stops with the
   * error. Failures of the event store or the checkpoint store do not reach it: they are retried for as long as the
   * subscription runs (see the module docs). Default: exponential from 100 ms, 5 retries.
   */
  readonly retry?: Schedule.Schedule<unknown, Error<E>>
  /**
   * What happens to an event when the `retry` Schedule gives up on it: `"stop"` (the default) stops the subscription
   * with the handler's error; `"park"` parks the event in the {@link ParkedEvents.ParkedEvents} store (with the error,
   * the attempts and the time), in one transaction with the checkpoint moving past it, and moves on. To find the
   * event, a failed batch is tried again one event at a time (each by the Schedule): without transactions (the
   * in-memory stores) the events of the batch before the failing one are then handled again (at-least-once).
   *
   * @since 0.3.0
   */
  readonly onFailure?: "stop" | "park"
  /**
   * The parked-events store; default: the `ParkedEvents` service when `onFailure` is `"park"`. With one, the
   * subscription also re-delivers the parked events an operator asked to retry.
   *
   * @since 0.3.0
   */
  readonly parked?: ParkedEvents.ParkedEvents.Service
  /**
   * How often the consumer holding the lease looks for a reset requested from outside
   * ({@link requestReset}) and for parked events to retry; default 1 second.
   *
   * @since 0.3.0
   */
  readonly controlInterval?: Duration.DurationInput
}

/**
 * The failures of a subscription: the handler's own `E` (which stops it once the retry Schedule gives up), or a
 * failure of the event store or the checkpoint store (retried while it runs; it stops on one only when the store
 * refuses its input, e.g. an invalid `from`).
 *
 * @since 0.2.0
 * @category models
 */
export type Error<E> = E | EventStore.EventStoreError | CheckpointStore.CheckpointStoreError

/**
 * The services a subscription needs: the event store, and the checkpoint store unless one is given in the options.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements<O> =
  | (O extends { readonly checkpoints: CheckpointStore.CheckpointStore.Service } ? EventStore.EventStore
    : EventStore.EventStore | CheckpointStore.CheckpointStore)
  | (O extends { readonly onFailure: "park" } ?
    O extends { readonly parked: ParkedEvents.ParkedEvents.Service } ? never : ParkedEvents.ParkedEvents
    : never)

/**
 * A reset of a projection without `onReset` was refused: replaying into a read model that was not cleared would
 * count events twice. Pass `{ allowDuplicates: true }` when the projection is idempotent or its data is cleared
 * by other means.
 *
 * @since 0.3.0
 * @category errors
 */
export class NotResettable extends Schema.TaggedError<NotResettable>()("NotResettable", {
  projection: Schema.String
}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `Projection ${this.projection} has no onReset: a reset would apply the replayed events twice ` +
      `(pass { allowDuplicates: true } to reset anyway)`
  }
}

/**
 * Where a subscription is: `"running"` (it holds its lease and consumes), `"retrying"` (an infrastructure failure:
 * it starts over after a backoff), or `"stopped"` (for good: `join` tells why). `retries` counts the
 * infrastructure retries since it started and `lastError` is the last failure seen (infrastructure, or the one
 * that stopped it).
 *
 * @since 0.2.0
 * @category models
 */
export interface Status<E> {
  readonly state: "running" | "retrying" | "stopped"
  readonly retries: number
  readonly lastError: Option.Option<Error<E>>
}

/**
 * Counts the infrastructure retries of subscriptions (a failure of the event store or the checkpoint store after
 * which the subscription starts over), tagged `subscription` with the subscription's name.
 *
 * @since 0.2.0
 * @category metrics
 */
export const infrastructureRetries: Metric.Metric.Counter<number> = Metric.counter(
  "effect_eventsourcing_subscription_infrastructure_retries_total",
  { description: "infrastructure failures after which a subscription started over", incremental: true }
)

/**
 * A running subscription.
 *
 * @since 0.1.0
 * @category models
 */
export interface Subscription<E> {
  readonly [TypeId]: TypeId
  readonly name: string
  /** The position of the last event handled and checkpointed by this consumer (0 before any). */
  readonly processed: Effect.Effect<number>
  /**
   * Waits until the subscription has handled every event up to `position` (an event delivered to it, e.g. the
   * position returned by an append matching its filter), or fails with the error that stopped it.
   */
  readonly awaitPosition: (position: number) => Effect.Effect<void, Error<E>>
  /**
   * Rebuild / replay: stops handling, runs the projection's `onReset(position ?? 0)` and sets the checkpoint to
   * `position` (none: from the start) in one transaction where supported, then replays from there. Waits until
   * this consumer holds the lease. A position that is not a non-negative integer is refused with `InvalidArgument`;
   * a projection without `onReset` is refused with {@link NotResettable} unless `allowDuplicates` is set.
   */
  readonly reset: (
    position?: number,
    options?: { readonly allowDuplicates?: boolean }
  ) => Effect.Effect<void, Error<E> | EventStore.InvalidArgument | NotResettable>
  /** Waits for the subscription to stop, and fails with the reason (it never stops on its own otherwise). */
  readonly join: Effect.Effect<never, Error<E>>
  /** Where the subscription is now (see {@link Status}). */
  readonly status: Effect.Effect<Status<E>>
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Starts the subscription in a fiber that lives until the scope closes, and returns its handle.
 *
 * @since 0.1.0
 * @category constructors
 */
export const forkScoped = <E, R, O extends Options<E> = Options<E>>(
  projection: Projection.Projection<E, R>,
  options?: O
): Effect.Effect<Subscription<E>, never, Scope.Scope | R | Requirements<O>> =>
  loop.forkScoped({ TypeId, NotResettable, infrastructureRetries }, projection, options) as Effect.Effect<
    Subscription<E>,
    never,
    Scope.Scope | R | Requirements<O>
  >

/**
 * Runs the subscription until interrupted (or until it stops with an error).
 *
 * @example
 * ```ts
 * import {
 *   CheckpointStore,
 *   EventStore,
 *   ExpectedVersion,
 *   InMemoryEventStore,
 *   Projection,
 *   StreamId,
 *   Subscription
 * } from "@effect-eventsourcing/core"
 * import { Effect, Fiber, Layer } from "effect"
 *
 * const seen: Array<string> = []
 * const log = Projection.make({ name: "log", handle: (event) => Effect.sync(() => void seen.push(event.type)) })
 *
 * const program = Effect.gen(function*() {
 *   const { position } = yield* EventStore.append(
 *     StreamId.unsafeMake("account", "1"),
 *     [{ type: "Opened", data: {} }],
 *     ExpectedVersion.NoStream
 *   )
 *   // `run` never returns: fork it (or use Subscription.layer / Subscription.forkScoped)
 *   const fiber = yield* Effect.fork(Subscription.run(log, { filter: { categories: ["account"] } }))
 *   yield* Subscription.awaitCheckpoint("log", position)
 *   yield* Fiber.interrupt(fiber)
 * })
 *
 * Effect.runPromise(
 *   program.pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory)))
 * ).then(() => assert.deepStrictEqual(seen, ["Opened"]))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <E, R, O extends Options<E> = Options<E>>(
  projection: Projection.Projection<E, R>,
  options?: O
): Effect.Effect<never, Error<E>, R | Requirements<O>> =>
  Effect.scoped(Effect.flatMap(forkScoped(projection, options), (subscription) => subscription.join))

/**
 * What {@link status} reports about a subscription, from any process (no projection needed): its checkpoint, the
 * head of the log (`EventStore.headPosition`), the lag (head − checkpoint, in positions: the events of the whole log
 * between them, including those a filtered subscription does not receive), the consumer holding its lease, how many
 * of its events are parked (0 without a `ParkedEvents` service), the last error its consumer recorded (a handler
 * error that stopped it, parked an event or failed a retry; a refused reset request) and a reset request not
 * applied yet.
 *
 * @since 0.3.0
 * @category models
 */
export interface StatusReport {
  readonly name: string
  readonly checkpoint: Option.Option<number>
  readonly head: number
  readonly lag: number
  readonly holder: Option.Option<string>
  readonly parked: number
  readonly lastError: Option.Option<{ readonly message: string; readonly at: DateTime.Utc }>
  readonly resetRequest: Option.Option<CheckpointStore.ResetRequest>
}

/**
 * The failures of {@link status} and {@link statusAll}.
 *
 * @since 0.3.0
 * @category models
 */
export type StatusError =
  | EventStore.EventStoreError
  | CheckpointStore.CheckpointStoreError
  | ParkedEvents.ParkedEventsError

/**
 * The status of the subscription `name` (see {@link StatusReport}); a name the checkpoint store does not know is
 * reported with no checkpoint and no holder. Uses the `ParkedEvents` service when one is provided.
 *
 * @example
 * ```ts
 * import { CheckpointStore, InMemoryEventStore, Subscription } from "@effect-eventsourcing/core"
 * import { Effect, Layer, Option } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   yield* CheckpointStore.CheckpointStore.pipe(Effect.flatMap((checkpoints) => checkpoints.save("balances", 0)))
 *   return yield* Subscription.status("balances")
 * })
 *
 * Effect.runPromise(
 *   program.pipe(Effect.provide(Layer.merge(InMemoryEventStore.layer, CheckpointStore.layerMemory)))
 * ).then((report) => assert.deepStrictEqual([report.checkpoint, report.lag], [Option.some(0), 0]))
 * ```
 *
 * @since 0.3.0
 * @category accessors
 */
export const status = (
  name: string
): Effect.Effect<StatusReport, StatusError, EventStore.EventStore | CheckpointStore.CheckpointStore> =>
  Effect.map(control.reports(name), (reports) => reports[0]!)

/**
 * The status of every subscription the checkpoint store knows, in name order (see {@link status}).
 *
 * @since 0.3.0
 * @category accessors
 */
export const statusAll: Effect.Effect<
  ReadonlyArray<StatusReport>,
  StatusError,
  EventStore.EventStore | CheckpointStore.CheckpointStore
> = Effect.suspend(() => control.reports(undefined))

/**
 * Asks the consumer holding the lease of `name` (in this process or another) to reset: it picks the request up
 * within its `controlInterval`, runs the projection's `onReset` and moves the checkpoint to `position` (none: the
 * start) in one transaction where supported, and replays. A projection without `onReset` refuses it (recorded as the
 * subscription's last error) unless `allowDuplicates` is set. Follow the replay with {@link status} (its `lag`); the
 * request shows there until it is applied. A position that is not a non-negative integer is refused with
 * `InvalidArgument`.
 *
 * @since 0.3.0
 * @category accessors
 */
export const requestReset = (
  name: string,
  options?: { readonly position?: number | undefined; readonly allowDuplicates?: boolean | undefined }
): Effect.Effect<
  CheckpointStore.ResetRequest,
  CheckpointStore.CheckpointStoreError | EventStore.InvalidArgument,
  CheckpointStore.CheckpointStore
> => Effect.flatMap(CheckpointStore.CheckpointStore, (checkpoints) => checkpoints.requestReset(name, options))

/**
 * Waits until the checkpoint of the subscription `name` reaches `position`, polling the checkpoint store (default:
 * every 50 ms). Works across processes; within one process prefer {@link Subscription.awaitPosition}, which needs
 * no polling (and no clock).
 *
 * @since 0.1.0
 * @category combinators
 */
export const awaitCheckpoint: {
  (
    name: string,
    position: number,
    options: {
      readonly checkpoints: CheckpointStore.CheckpointStore.Service
      readonly schedule?: Schedule.Schedule<unknown>
    }
  ): Effect.Effect<void, CheckpointStore.CheckpointStoreError>
  (
    name: string,
    position: number,
    options?: {
      readonly checkpoints?: CheckpointStore.CheckpointStore.Service | undefined
      readonly schedule?: Schedule.Schedule<unknown>
    }
  ): Effect.Effect<void, CheckpointStore.CheckpointStoreError, CheckpointStore.CheckpointStore>
} = ((
  name: string,
  position: number,
  options?: {
    readonly checkpoints?: CheckpointStore.CheckpointStore.Service | undefined
    readonly schedule?: Schedule.Schedule<unknown>
  }
): Effect.Effect<void, CheckpointStore.CheckpointStoreError, CheckpointStore.CheckpointStore> =>
  // the service is looked up only when no `checkpoints` are given (the first overload needs none)
  Effect.gen(function*() {
    const checkpoints = options?.checkpoints ?? (yield* CheckpointStore.CheckpointStore)
    const reached = Effect.map(checkpoints.load(name), Option.exists((p) => p >= position))
    yield* Effect.repeat(reached, {
      until: (done) => done,
      schedule: options?.schedule ?? Schedule.spaced("50 millis")
    })
  })) as typeof awaitCheckpoint

/**
 * A Layer that runs the subscription for as long as the Layer lives (a failure is logged; use
 * {@link forkScoped} to observe it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R, O extends Options<E> = Options<E>>(
  projection: Projection.Projection<E, R>,
  options?: O
): Layer.Layer<never, never, R | Requirements<O>> => Layer.scopedDiscard(forkScoped(projection, options))

// -------------------------------------------------------------------------------------
// consumer groups
// -------------------------------------------------------------------------------------

/**
 * The options of {@link runGroup}: the subscription's own (`filter`, `batchSize`, `retry`, `from`, `checkpoints`,
 * applied to every partition; `batchSize` counts the log's events a partition goes through, its own and the ones it
 * skips, and defaults to `100 × partitions`), plus `group` (the group's name: the partitions' checkpoints are named
 * `group[p/partitions]`), `partitions` (1 to 1024; changing it starts new checkpoints), `members` (the most members
 * that hold partitions at once, default `partitions`: later ones wait as standbys) and `rebalanceEvery` (how often a
 * member looks for members that joined, left or died; default 1 second).
 *
 * @since 0.3.0
 * @category models
 */
export interface GroupOptions<E> extends Options<E> {
  readonly group: string
  readonly partitions: number
  readonly members?: number
  readonly rebalanceEvery?: Duration.DurationInput
}

/**
 * A member of a consumer group: `member` is its slot number (`None` while it waits as a standby), `members` the
 * live slots it saw at its last rebalance, `owned` the partitions it consumes now, `rebalance` runs one rebalance at once, and `join` fails with the handler's error when
 * a partition's retry Schedule gave up (the member then lets go of everything).
 *
 * @since 0.3.0
 * @category models
 */
export interface Group<E> {
  readonly group: string
  readonly partitions: number
  readonly member: Effect.Effect<Option.Option<number>>
  readonly members: Effect.Effect<ReadonlyArray<number>>
  readonly owned: Effect.Effect<ReadonlyArray<number>>
  readonly rebalance: Effect.Effect<void>
  readonly join: Effect.Effect<never, Error<E>>
}

/**
 * One partition of a group in {@link groupStatus}: its subscription `name`, the slot of the `member` that holds it
 * (written when a member takes it, removed when it lets go; a member that died shows until another takes over),
 * its `checkpoint` and its `lag` behind the last position of the global log (with a `filter`, the events after the
 * checkpoint that the filter skips count too).
 *
 * @since 0.3.0
 * @category models
 */
export interface PartitionStatus {
  readonly partition: number
  readonly name: string
  readonly member: Option.Option<number>
  readonly checkpoint: Option.Option<number>
  readonly lag: number
}

/**
 * The partition of a stream in a group of `partitions`: FNV-1a (32 bits) of the stream id's UTF-8 bytes, modulo
 * `partitions`. Stable across processes and versions: every event of a stream goes to the same partition.
 *
 * @since 0.3.0
 * @category consumer groups
 */
export const partitionOf: (streamId: string, partitions: number) => number = consumerGroup.partitionOf

/**
 * Joins the consumer group `options.group` as a member that lives until the scope closes, and returns its handle.
 * See {@link runGroup}.
 *
 * @since 0.3.0
 * @category consumer groups
 */
export const forkGroupScoped = <E, R, O extends GroupOptions<E> = GroupOptions<E>>(
  projection: Projection.Projection<E, R>,
  options: O
): Effect.Effect<Group<E>, EventStore.InvalidArgument, Scope.Scope | R | Requirements<O>> =>
  consumerGroup.forkGroupScoped(forkScoped, projection, options) as Effect.Effect<
    Group<E>,
    EventStore.InvalidArgument,
    Scope.Scope | R | Requirements<O>
  >

/**
 * Consumer groups: runs `projection` as one member of the group `options.group`. The global log is split into
 * `options.partitions` partitions by {@link partitionOf} the stream id; each partition is a durable subscription of
 * its own (checkpoint, lease, batches, exactly-once on Postgres as with {@link run}), and it sees the events of its
 * streams only, in order. Members (processes, or fibers of one process) split the partitions between them and
 * rebalance when one joins, leaves or dies: a dead member's leases lapse with its connections and the others take
 * its partitions over from their checkpoints. Every partition reads the whole log and skips the others' events (its
 * checkpoint still moves past them). Fails with `InvalidArgument` for bad options, or with the handler's error when a
 * partition's retry Schedule gave up. See docs/scaling.md.
 *
 * @since 0.3.0
 * @category consumer groups
 */
export const runGroup = <E, R, O extends GroupOptions<E> = GroupOptions<E>>(
  projection: Projection.Projection<E, R>,
  options: O
): Effect.Effect<never, Error<E> | EventStore.InvalidArgument, R | Requirements<O>> =>
  Effect.scoped(Effect.flatMap(forkGroupScoped(projection, options), (group) => group.join))

/**
 * Each partition of a group: its member, checkpoint and lag (see {@link PartitionStatus}). Reads the checkpoint
 * store and the tail of the global log; works from any process.
 *
 * @since 0.3.0
 * @category consumer groups
 */
export const groupStatus = (options: {
  readonly group: string
  readonly partitions: number
  readonly checkpoints?: CheckpointStore.CheckpointStore.Service | undefined
}): Effect.Effect<
  ReadonlyArray<PartitionStatus>,
  CheckpointStore.CheckpointStoreError | EventStore.EventStoreError | EventStore.InvalidArgument,
  EventStore.EventStore | CheckpointStore.CheckpointStore
> => consumerGroup.status(options)
