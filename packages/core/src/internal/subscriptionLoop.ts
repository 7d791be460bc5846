/**
 * The consuming loop of a durable subscription (`Subscription.forkScoped`): the session that holds the lease and
 * handles batches (the handler and the checkpoint in one transaction, the `retry` Schedule or the `park` policy), the
 * resets asked for in this process or from outside, the infrastructure backoff and the handle's status. The control
 * side (parking, reset requests, parked-event retries, status reports) is in `subscriptionControl.ts`.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as CheckpointStore from "../CheckpointStore.js"
import * as EventStore from "../EventStore.js"
import * as ParkedEvents from "../ParkedEvents.js"
import type * as Projection from "../Projection.js"
import type * as Subscription from "../Subscription.js"
import * as logEntries from "./logEntries.js"
import * as metering from "./metering.js"
import * as control from "./subscriptionControl.js"

/**
 * @internal
 * The values of the public module the loop needs, passed in by `Subscription.forkScoped` (an internal module never
 * imports the public one's values: no import cycle).
 */
export interface Kit {
  readonly TypeId: Subscription.TypeId
  readonly NotResettable: typeof Subscription.NotResettable
  readonly infrastructureRetries: Metric.Metric.Counter<number>
}

type Error<E> = Subscription.Error<E>

/** A batch that failed for good: not retried again by the outer loop. */
class Stop<E> {
  constructor(readonly error: E) {}
}

/** A failure of the projection's own code (as opposed to the stores'): only these follow the `retry` Schedule. */
class HandlerFailed<E> {
  constructor(readonly error: E) {}
}

const defaultRetry = Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(5)))

/** The longest pause between two infrastructure retries. */
const maxBackoffMillis = 5_000

/** Infrastructure retries: 100 ms doubling, capped at 5 s, jittered; never gives up. */
const infrastructureBackoff = Schedule.exponential("100 millis").pipe(
  Schedule.either(Schedule.spaced(maxBackoffMillis)),
  Schedule.jittered
)

const isLeaseLost = (u: unknown): u is CheckpointStore.LeaseLost => u instanceof CheckpointStore.LeaseLost

type ResetRequest<E> = control.Reset<Error<E>>

const batches = <A>(chunk: Chunk.Chunk<A>, size: number): ReadonlyArray<Chunk.Chunk<A>> => {
  if (Chunk.isEmpty(chunk)) return []
  if (Chunk.size(chunk) <= size) return [chunk]
  const out: Array<Chunk.Chunk<A>> = []
  let rest = chunk
  while (Chunk.isNonEmpty(rest)) {
    out.push(Chunk.take(rest, size))
    rest = Chunk.drop(rest, size)
  }
  return out
}

/** The positions a subscription saves come from the store (or were validated already): a refusal is a defect. */
const orDieOnInvalid = <A, E>(self: Effect.Effect<A, E | EventStore.InvalidArgument>): Effect.Effect<A, E> =>
  Effect.catchIf(
    self,
    (error): error is EventStore.InvalidArgument => error instanceof EventStore.InvalidArgument,
    Effect.die
  ) as Effect.Effect<A, E>

/**
 * @internal
 * Starts the subscription in a fiber that lives until the scope closes, and returns its handle (the requirements are
 * narrowed by `Subscription.forkScoped`).
 */
export const forkScoped = <E, R>(
  kit: Kit,
  projection: Projection.Projection<E, R>,
  options: Subscription.Options<E> | undefined
): Effect.Effect<
  Subscription.Subscription<E>,
  never,
  Scope.Scope | R | EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Effect.gen(function*() {
    type Err = Error<E>
    const store = yield* EventStore.EventStore
    const checkpoints = options?.checkpoints !== undefined
      ? options.checkpoints
      : yield* CheckpointStore.CheckpointStore
    const name = projection.name
    const batchSize = Math.max(1, Math.floor(options?.batchSize ?? 100))
    const retry: Schedule.Schedule<unknown, Err> = options?.retry ?? defaultRetry
    const from = Math.max(1, options?.from ?? 1)
    const filter = options?.filter
    const parked = options?.parked ?? Option.getOrUndefined(yield* Effect.serviceOption(ParkedEvents.ParkedEvents))
    if (options?.onFailure === "park" && parked === undefined) {
      // the types ask for the service when `onFailure: "park"` is a literal; a widened option can still get here
      return yield* Effect.dieMessage(`Subscription ${projection.name}: onFailure "park" needs a ParkedEvents store`)
    }
    const parking = options?.onFailure === "park" ? parked : undefined
    // handling a batch holds it: the control fiber retries parked events between batches
    const busy = yield* Effect.makeSemaphore(1)

    const processed = yield* SubscriptionRef.make(0)
    const resets = yield* Queue.unbounded<ResetRequest<E>>()
    const stopped = yield* Deferred.make<never, Err>()
    const status = yield* Ref.make<Subscription.Status<E>>({ state: "running", retries: 0, lastError: Option.none() })
    const retriesCounter = Metric.tagged(kit.infrastructureRetries, "subscription", name)
    // the lag in events reads the head of the log at most once a second
    const meter = metering.subscriptionMeter(name, store.headPosition)
    // a batch committed since the session started: the infrastructure backoff starts again from its shortest pause
    let progressed = false
    // the handler's failures that are the infrastructure's (a process manager's stores): retried like the stores'
    const infrastructure = logEntries.isInfrastructureFailure(projection)

    /** One try of the handler on `batch` and the checkpoint after it, in one transaction. */
    const attempt = (lease: CheckpointStore.Lease, batch: Chunk.Chunk<EventStore.LogEntry>) => {
      const last = Chunk.unsafeLast(batch).position
      // events through handle / handleBatch, tombstones through onDelete, in order, before the checkpoint moves
      const handler = logEntries.handleEntries(projection, batch)
      return lease.transaction(
        Effect.zipRight(
          Effect.mapError(handler, (error) => infrastructure(error) ? error : new HandlerFailed(error)),
          orDieOnInvalid(lease.save(last))
        )
      ).pipe(
        meter.timed,
        Effect.as(Option.none<CheckpointStore.LeaseLost | CheckpointStore.CheckpointStoreError>()),
        // only the handler's own failures go on to the retry Schedule (it is stepped with every error it sees);
        // the stores' failures and a lost lease leave the batch: the session starts over from the checkpoint
        Effect.catchAll((error) =>
          error instanceof HandlerFailed
            ? Effect.fail(error.error as E)
            : Effect.succeed(Option.some(error as CheckpointStore.LeaseLost | CheckpointStore.CheckpointStoreError))
        ),
        Effect.tapError(() => meter.failed),
        Effect.tapError((error) =>
          Effect.logWarning("Subscription batch failed", error).pipe(
            Effect.annotateLogs({ subscription: name, position: Chunk.unsafeHead(batch).position })
          )
        )
      )
    }

    const handleBatch = (lease: CheckpointStore.Lease, batch: Chunk.Chunk<EventStore.LogEntry>) => {
      const last = Chunk.unsafeLast(batch).position
      const handled = (parking === undefined
        ? Effect.retry(attempt(lease, batch), retry)
        : control.parkBatch({
          name,
          lease,
          parked: parking,
          checkpoints,
          retry,
          batch,
          attempt: (events) => attempt(lease, events)
        })).pipe(
          Effect.tapError((error) => Effect.ignore(checkpoints.recordError(name, control.errorText(error)))),
          Effect.mapError((error) => new Stop<Err>(error))
        )
      return busy.withPermits(1)(handled).pipe(
        Effect.flatMap((failed) => {
          if (Option.isSome(failed)) return Effect.fail(failed.value)
          progressed = true
          return meter.committed(batch).pipe(
            Effect.zipRight(meter.lag(last)),
            Effect.zipRight(SubscriptionRef.set(processed, last))
          )
        }),
        Effect.withSpan("Subscription.handle", {
          attributes: { "subscription.name": name, "events": Chunk.size(batch), "position": last },
          // to the spans that appended the events (the trace ids in their metadata)
          links: logEntries.spanLinks(batch)
        })
      )
    }

    const consume = (lease: CheckpointStore.Lease, after: number) =>
      store.subscribe(logEntries.subscribeOptions(projection, after + 1, filter)).pipe(
        // invalid input (a `from` that is not a position) stops the subscription: retrying cannot help
        Stream.mapError((error) =>
          error._tag === "InvalidArgument"
            ? new Stop<Err>(new EventStore.EventStoreError({ method: "Subscription", cause: error }))
            : error
        ),
        Stream.runForEachChunk((chunk) =>
          Effect.forEach(batches(chunk, batchSize), (batch) => handleBatch(lease, batch), { discard: true })
        )
      )

    const applyReset = (lease: CheckpointStore.Lease, request: ResetRequest<E>, after: number) =>
      lease.transaction(
        Effect.zipRight(
          projection.onReset === undefined
            ? Effect.void
            : Effect.mapError(projection.onReset(request.position ?? 0), (error) => new HandlerFailed(error)),
          orDieOnInvalid(lease.reset(request.position))
        ).pipe(
          // the parked events after the position are replayed; an external request is applied with it
          Effect.zipRight(
            parked === undefined ? Effect.void : Effect.mapError(
              parked.clear(name, request.position ?? 0),
              (cause) => new CheckpointStore.CheckpointStoreError({ method: "ParkedEvents.clear", cause })
            )
          ),
          Effect.zipRight(
            request.external === undefined ? Effect.void : checkpoints.completeReset(name, request.external.id)
          )
        )
      ).pipe(
        Effect.zipRight(SubscriptionRef.set(processed, after)),
        Effect.exit,
        Effect.flatMap((exit) =>
          Exit.isSuccess(exit) ? Deferred.succeed(request.done, undefined) : Effect.zipRight(
            Deferred.failCause(
              request.done,
              Cause.map(exit.cause, (e): Err =>
                e instanceof HandlerFailed
                  ? e.error as E
                  : isLeaseLost(e)
                  ? new CheckpointStore.CheckpointStoreError({ method: "reset", cause: e })
                  : e as Err)
            ),
            exit
          )
        ),
        // the projection's own failure stops the subscription; the stores' failures are retried (the caller of
        // `reset` got the error)
        Effect.mapError((error) => error instanceof HandlerFailed ? new Stop<Err>(error.error as E) : error)
      )

    /** The lease is held again: an outage is over. */
    const running = Effect.flatMap(
      Ref.getAndUpdate(status, (current) => ({ ...current, state: "running" as const })),
      (previous) =>
        previous.state === "retrying"
          ? Effect.logWarning("Subscription resumed").pipe(
            Effect.annotateLogs({ subscription: name, retries: previous.retries })
          )
          : Effect.void
    )

    /** Holds the lease and consumes, handling reset requests, until the lease is lost or something fails. */
    const session: Effect.Effect<never, Stop<Err> | CheckpointStore.LeaseLost | Err, R> = Effect
      .scoped(Effect.gen(function*() {
        const lease = yield* checkpoints.acquire(name)
        yield* running
        yield* Effect.forkScoped(control.control({
          name,
          interval: options?.controlInterval,
          checkpoints,
          parked,
          resets,
          busy,
          retry: (entries) =>
            control.retryParked({ name, store, lease, parked: parked!, checkpoints, projection, entries })
        }))
        let after = Option.getOrElse(lease.position, () => from - 1)
        yield* SubscriptionRef.set(processed, after)
        while (true) {
          const request = yield* Effect.raceFirst(
            Effect.as(consume(lease, after), Option.none<ResetRequest<E>>()),
            Effect.map(Queue.take(resets), Option.some)
          )
          if (Option.isNone(request)) continue
          const external = request.value.external
          if (external !== undefined && projection.onReset === undefined && !external.allowDuplicates) {
            // refused: the read model would count the replayed events twice (the requester sees it in the status)
            const refused = new kit.NotResettable({ projection: name })
            yield* checkpoints.completeReset(name, external.id)
            yield* Effect.ignore(checkpoints.recordError(name, refused.message))
            yield* Effect.logWarning("Subscription reset request refused", refused).pipe(
              Effect.annotateLogs({ subscription: name })
            )
            yield* Deferred.succeed(request.value.done, undefined)
            after = yield* SubscriptionRef.get(processed)
            continue
          }
          const target = request.value.position ?? from - 1
          yield* applyReset(lease, request.value, target)
          after = target
        }
      }))

    /** An infrastructure failure: counted, shown in the status, logged when an outage starts. */
    const retrying = (error: Err) =>
      Effect.flatMap(
        Ref.getAndUpdate(status, (current) => ({
          state: "retrying" as const,
          retries: current.retries + 1,
          lastError: Option.some(error)
        })),
        (previous) =>
          Effect.zipRight(
            Metric.increment(retriesCounter),
            previous.state === "retrying" ? Effect.void : Effect.logWarning(
              "Subscription retrying after an infrastructure failure",
              error
            ).pipe(Effect.annotateLogs({ subscription: name }))
          )
      )

    const loop: Effect.Effect<never, Err, R> = Effect.gen(function*() {
      const backoff = yield* Schedule.driver(infrastructureBackoff)
      while (true) {
        progressed = false
        const started = yield* Clock.currentTimeMillis
        const error = yield* Effect.flip(session)
        if (error instanceof Stop) return yield* Effect.fail(error.error)
        if (isLeaseLost(error)) {
          yield* Effect.logDebug("Subscription lease lost").pipe(Effect.annotateLogs({ subscription: name }))
          continue
        }
        // a failure of the event store or the checkpoint store (reading, the lease, a commit): start over from the
        // checkpoint for as long as the subscription runs; after progress, from the shortest pause again
        if (progressed || (yield* Clock.currentTimeMillis) - started >= maxBackoffMillis) yield* backoff.reset
        yield* retrying(error)
        yield* Effect.orDie(backoff.next(error))
      }
    }).pipe(
      Effect.tapErrorCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("Subscription stopped", cause).pipe(
          Effect.annotateLogs({ subscription: name })
        )
      ),
      Effect.onExit((exit) =>
        Effect.zipRight(
          Ref.update(status, (current) => ({
            ...current,
            state: "stopped" as const,
            lastError: Exit.isFailure(exit)
              ? Option.orElse(Cause.failureOption(exit.cause), () => current.lastError)
              : current.lastError
          })),
          Exit.isFailure(exit) ? Deferred.failCause(stopped, exit.cause) : Effect.void
        )
      )
    )

    const fiber = yield* Effect.forkScoped(loop)
    const join = Fiber.join(fiber)

    return {
      [kit.TypeId]: kit.TypeId,
      name,
      processed: SubscriptionRef.get(processed),
      awaitPosition: (position) =>
        Effect.raceFirst(
          processed.changes.pipe(Stream.takeUntil((p) => p >= position), Stream.runDrain),
          Deferred.await(stopped)
        ),
      reset: (position, resetOptions) =>
        Effect.zipRight(
          projection.onReset === undefined && resetOptions?.allowDuplicates !== true
            ? Effect.fail(new kit.NotResettable({ projection: name })) as Effect.Effect<
              void,
              Subscription.NotResettable | EventStore.InvalidArgument
            >
            : CheckpointStore.validatePosition("Subscription.reset", position),
          Effect.flatMap(Deferred.make<void, Err>(), (done) =>
            Queue.offer(resets, { position, done, external: undefined }).pipe(
              Effect.zipRight(Effect.raceFirst(Deferred.await(done), Deferred.await(stopped)))
            ))
        ),
      join,
      status: Ref.get(status)
    } satisfies Subscription.Subscription<E>
  })
