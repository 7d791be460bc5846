/**
 * The operations side of subscriptions (Subscription.ts keeps the consuming loop): the `park` failure policy, the
 * control fiber that picks up reset requests and parked-event retries made from outside the consumer, and the
 * status report.
 *
 * @internal
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as CheckpointStore from "../CheckpointStore.js"
import * as EventStore from "../EventStore.js"
import * as ParkedEvents from "../ParkedEvents.js"
import type * as Projection from "../Projection.js"
import type { StatusReport } from "../Subscription.js"

/** @internal A failure that makes the session start over from its checkpoint. */
export type Infra = CheckpointStore.LeaseLost | CheckpointStore.CheckpointStoreError

/** @internal A handler error as text, for the parked-events store and the last error of a subscription. */
export const errorText = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const tag = "_tag" in error && typeof error._tag === "string" ? error._tag : undefined
    const message = "message" in error && typeof error.message === "string" && error.message !== ""
      ? error.message
      : undefined
    if (tag !== undefined && message !== undefined) return message.startsWith(tag) ? message : `${tag}: ${message}`
    if (message !== undefined) return message
    if (tag !== undefined) {
      try {
        return `${tag} ${JSON.stringify(error)}`
      } catch {
        return tag
      }
    }
  }
  return String(error)
}

const parkedError = (method: string) => (cause: ParkedEvents.ParkedEventsError) =>
  new CheckpointStore.CheckpointStoreError({ method: `ParkedEvents.${method}`, cause })

/**
 * @internal
 * The `park` policy for one batch: the batch is tried once as a whole; when the handler fails, its events are tried
 * one at a time, each by the `retry` Schedule, and an event the Schedule gives up on is parked, in one transaction
 * with the checkpoint moving past it. `attempt` runs the handler on some events and saves the checkpoint after the
 * last (one transaction), succeeding with the infrastructure failure that makes the session start over, if any.
 */
export const parkBatch = <E, R>(options: {
  readonly name: string
  readonly lease: CheckpointStore.Lease
  readonly parked: ParkedEvents.ParkedEvents.Service
  readonly checkpoints: CheckpointStore.CheckpointStore.Service
  readonly retry: Schedule.Schedule<unknown, E>
  readonly batch: Chunk.Chunk<EventStore.LogEntry>
  readonly attempt: (events: Chunk.Chunk<EventStore.LogEntry>) => Effect.Effect<Option.Option<Infra>, E, R>
}): Effect.Effect<Option.Option<Infra>, E, R> =>
  Effect.gen(function*() {
    const { attempt, batch, checkpoints, lease, name, parked, retry } = options
    if (Chunk.size(batch) > 1) {
      const whole = yield* Effect.either(attempt(batch))
      if (Either.isRight(whole)) return whole.right
    }
    for (const event of batch) {
      let attempts = 0
      const once = Effect.suspend(() => {
        attempts++
        return attempt(Chunk.of(event))
      })
      const result = yield* Effect.either(Effect.retry(once, retry))
      if (Either.isRight(result)) {
        if (Option.isSome(result.right)) return result.right
        continue
      }
      // a deletion has no event to park: its `onDelete` failing for good stops the subscription as with `stop`
      if (EventStore.isTombstone(event)) return yield* Effect.fail(result.left)
      const error = errorText(result.left)
      const parking = lease.transaction(
        Effect.zipRight(
          Effect.mapError(parked.park(name, event, { error, attempts }), parkedError("park")),
          lease.save(event.position)
        )
      ).pipe(
        Effect.as(Option.none<Infra>()),
        Effect.catchAll((failure) =>
          failure._tag === "InvalidArgument" ? Effect.die(failure) : Effect.succeed(Option.some<Infra>(failure))
        )
      )
      const failed = yield* parking
      if (Option.isSome(failed)) return failed
      yield* Effect.logWarning("Subscription parked an event").pipe(
        Effect.annotateLogs({ subscription: name, position: event.position, attempts, error })
      )
      yield* Effect.ignore(checkpoints.recordError(name, error))
    }
    return Option.none<Infra>()
  })

/**
 * @internal
 * Re-delivers the events waiting for a retry: each in its own transaction with the removal of its entry (a retry
 * skipped meanwhile rolls the handler back); a failing handler puts the entry back to `parked` with the new error.
 * An event no longer in its stream (deleted) is removed from the parked events.
 */
export const retryParked = <E, R>(options: {
  readonly name: string
  readonly store: EventStore.EventStore.Service
  readonly lease: CheckpointStore.Lease
  readonly parked: ParkedEvents.ParkedEvents.Service
  readonly checkpoints: CheckpointStore.CheckpointStore.Service
  readonly projection: Projection.Projection<E, R>
  readonly entries: ReadonlyArray<ParkedEvents.ParkedEvent>
}): Effect.Effect<void, never, R> =>
  Effect.forEach(options.entries, (entry) =>
    Effect.gen(function*() {
      const { checkpoints, lease, name, parked, projection, store } = options
      const found = yield* Effect.either(
        Stream.runHead(store.read(entry.streamId, { from: entry.version, to: entry.version }))
      )
      if (Either.isLeft(found)) return // the store is unavailable: the next round tries again
      const event = Option.filter(found.right, (e) => e.position === entry.position)
      const handler = Option.match(event, {
        onNone: () => Effect.void,
        onSome: (e) => projection.handleBatch === undefined ? projection.handle(e) : projection.handleBatch([e])
      })
      const outcome = yield* Effect.either(
        lease.transaction(
          Effect.zipRight(Effect.mapError(handler, (error) => ({ handler: error })), parked.resolve(entry.id))
        )
      )
      if (Either.isRight(outcome)) {
        yield* Effect.logInfo(Option.isSome(event) ? "Subscription retried a parked event" : "Parked event gone").pipe(
          Effect.annotateLogs({ subscription: name, position: entry.position, id: entry.id })
        )
        return
      }
      const failure = outcome.left
      if (typeof failure === "object" && failure !== null && "handler" in failure) {
        const error = errorText(failure.handler)
        yield* Effect.ignore(parked.retryFailed(entry.id, { error, attempts: entry.attempts + 1 }))
        yield* Effect.ignore(checkpoints.recordError(name, error))
        yield* Effect.logWarning("Subscription retry of a parked event failed").pipe(
          Effect.annotateLogs({ subscription: name, position: entry.position, id: entry.id, error })
        )
      }
      // otherwise: skipped or resolved meanwhile (nothing was applied), or the store failed: the next round sees it
    }), { discard: true })

/** @internal A reset to apply: asked for in this process (`done`) or from outside (`external`: the request). */
export interface Reset<E> {
  readonly position: number | undefined
  readonly done: Deferred.Deferred<void, E>
  readonly external: CheckpointStore.ResetRequest | undefined
}

/**
 * @internal
 * The control fiber of a session: every `interval`, hands a reset request made from outside to the session (and
 * waits until it was applied) and re-delivers the parked events waiting for a retry, between batches (`busy`).
 * Failures of the stores are ignored here: the next round tries again.
 */
export const control = <E, R>(options: {
  readonly name: string
  readonly interval: Duration.DurationInput | undefined
  readonly checkpoints: CheckpointStore.CheckpointStore.Service
  readonly parked: ParkedEvents.ParkedEvents.Service | undefined
  readonly resets: Queue.Enqueue<Reset<E>>
  readonly busy: Effect.Semaphore
  readonly retry: (entries: ReadonlyArray<ParkedEvents.ParkedEvent>) => Effect.Effect<void, never, R>
}): Effect.Effect<never, never, R> => {
  const { busy, checkpoints, name, parked, resets } = options
  const round = Effect.gen(function*() {
    const request = yield* checkpoints.pendingReset(name)
    if (Option.isSome(request)) {
      const done = yield* Deferred.make<void, E>()
      yield* resets.offer({ position: request.value.position, done, external: request.value })
      yield* Effect.ignore(Deferred.await(done))
    }
    if (parked !== undefined) {
      const waiting = yield* parked.list({ subscription: name, state: "retry" })
      if (waiting.length > 0) yield* busy.withPermits(1)(options.retry(waiting))
    }
  })
  return Effect.ignore(round).pipe(
    Effect.repeat(Schedule.spaced(Duration.decode(options.interval ?? "1 second"))),
    Effect.zipRight(Effect.never)
  )
}

/** @internal The reports of the subscriptions `name` (all the checkpoint store knows when none). */
export const reports = (
  name: string | undefined
): Effect.Effect<
  ReadonlyArray<StatusReport>,
  EventStore.EventStoreError | CheckpointStore.CheckpointStoreError | ParkedEvents.ParkedEventsError,
  EventStore.EventStore | CheckpointStore.CheckpointStore
> =>
  Effect.gen(function*() {
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const store = yield* EventStore.EventStore
    const parked = yield* Effect.serviceOption(ParkedEvents.ParkedEvents)
    // the head after the checkpoints: a lag is never negative because of a commit in between
    const infos = yield* checkpoints.info(name)
    const head = yield* store.headPosition
    const known: ReadonlyArray<CheckpointStore.Info> = infos.length > 0 || name === undefined ? infos : [{
      name,
      position: Option.none(),
      holder: Option.none(),
      lastError: Option.none(),
      resetRequest: Option.none()
    }]
    return yield* Effect.forEach(known, (info) =>
      Effect.map(
        Option.isSome(parked) ? parked.value.count(info.name) : Effect.succeed(0),
        (count): StatusReport => ({
          name: info.name,
          checkpoint: info.position,
          head,
          lag: Math.max(0, head - Option.getOrElse(info.position, () => 0)),
          holder: info.holder,
          parked: count,
          lastError: info.lastError,
          resetRequest: info.resetRequest
        })
      ))
  })
