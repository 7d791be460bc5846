/**
 * Runs a core `Projection` from a durable JetStream consumer: the other direction of {@link JetStreamRelay}, for a
 * service in another process (or on another machine) that has no access to the event store.
 *
 * - The consumer is a durable pull consumer with explicit acks, created on first start (or checked: see
 *   {@link ConsumerConfigMismatch}); its position survives restarts of the process.
 * - Every message is rebuilt into the `RecordedEvent` the relay published (id from `Nats-Msg-Id`, the rest from the
 *   headers and the JSON body), handed to `projection.handle`, and acknowledged only after the handler succeeded:
 *   **at-least-once** (a crash between the handler and the ack, or a lost ack, hands the event again after
 *   `ackWait`: make the handler idempotent, e.g. by event id or by the stream's version).
 * - When the source stops, the message being handled and those the client holds are handed back at once (nak); a
 *   message the server was sending at that moment comes again after `ackWait`.
 * - A handler failure is logged and the message is nak'ed with a delay (`nakDelay`), then handled again, for as
 *   long as it fails; the source never skips an event. While a handler runs longer than half the consumer's
 *   `ackWait`, the message is kept in progress.
 * - **Order**: with `maxAckPending: 1` (the default) the consumer hands one message at a time, so the projection
 *   sees the events in stream order (the relay's global position order), failures and redeliveries included. A
 *   larger value lets JetStream deliver ahead, faster, but a redelivered message then arrives after later ones.
 * - A message that is not a relayed event ({@link MessageDecodeError}) stops the source (nak'ed, never acked).
 *   NATS infrastructure failures are retried with a capped backoff for as long as the source runs.
 *
 * @example
 * ```ts
 * import { Projection } from "@effect-eventsourcing/core"
 * import { JetStreamRelay, JetStreamSource, NatsConnection } from "@effect-eventsourcing/nats"
 * import { Effect, Layer } from "effect"
 *
 * const balances = new Map<string, number>()
 * const projection = Projection.make({
 *   name: "balances",
 *   handle: (event) =>
 *     Effect.sync(() => {
 *       if (event.type === "Deposited") {
 *         const { amount } = event.data as { readonly amount: number }
 *         balances.set(event.streamId, (balances.get(event.streamId) ?? 0) + amount)
 *       }
 *     })
 * })
 *
 * // in another process: a durable consumer "balances" of the stream EVENTS, only the account events
 * const Balances = JetStreamSource.layer(projection, {
 *   stream: "EVENTS",
 *   filterSubject: JetStreamRelay.categorySubject("events", "account")
 * }).pipe(Layer.provide(NatsConnection.layer({ servers: "127.0.0.1:4222" })))
 * ```
 *
 * @since 0.1.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as Projection from "@effect-eventsourcing/core/Projection"
import * as Js from "@nats-io/jetstream"
import type * as Nats from "@nats-io/transport-node"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as message from "./internal/message.js"
import * as NatsConnection from "./NatsConnection.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/nats/JetStreamSource")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The JetStream stream to consume (the relay's `stream`). */
  readonly stream: string
  /** The durable consumer's name; default: the projection's name encoded with `JetStreamRelay.encodeToken`. */
  readonly consumer?: string
  /**
   * Only the messages on these subjects (e.g. `JetStreamRelay.categorySubject(prefix, "account")`); default: the
   * whole stream. Fixed when the consumer is created.
   */
  readonly filterSubject?: string
  /** Messages handed out before their ack; default 1 (strict order, see the module doc). */
  readonly maxAckPending?: number
  /** How long JetStream waits for an ack before it redelivers; default 30 seconds. */
  readonly ackWait?: Duration.DurationInput
  /** The delay before a message whose handler failed is delivered again; default 1 second. */
  readonly nakDelay?: Duration.DurationInput
  /**
   * Retries NATS failures (reading, acknowledging); when it gives up the source stops with the error. Default: for
   * as long as the source runs, backing off exponentially from 100 ms to at most 10 seconds.
   */
  readonly retry?: Schedule.Schedule<unknown, NatsConnection.NatsError>
}

/**
 * The failures that stop a source (the projection's own failures never do: those messages are delivered again).
 *
 * @since 0.1.0
 * @category models
 */
export type Error = MessageDecodeError | NatsConnection.NatsError

/**
 * A running source.
 *
 * @since 0.1.0
 * @category models
 */
export interface Source {
  readonly [TypeId]: TypeId
  /** The durable consumer's name. */
  readonly consumer: string
  /** The highest global position among the events handled and acknowledged (0 before any). */
  readonly processed: Effect.Effect<number>
  /** Waits until an event at `position` or later was handled and acknowledged, or fails with what stopped it. */
  readonly awaitPosition: (position: number) => Effect.Effect<void, Error>
  /** Waits for the source to stop, and fails with the reason (it never stops on its own otherwise). */
  readonly join: Effect.Effect<never, Error>
}

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * A message of the stream is not an event published by `JetStreamRelay` (a header is missing or malformed, the
 * body is not JSON). The source stops: it never skips a message.
 *
 * @since 0.1.0
 * @category errors
 */
export class MessageDecodeError extends Schema.TaggedError<MessageDecodeError>()("MessageDecodeError", {
  stream: Schema.String,
  sequence: Schema.Number,
  subject: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Message ${this.sequence} of JetStream stream ${this.stream} (${this.subject}) is not a relayed event: ${this.reason}`
  }
}

/**
 * The durable consumer exists with settings the source cannot work with: another filter subject, or an ack
 * policy other than explicit, or it is a push consumer.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConsumerConfigMismatch extends Schema.TaggedError<ConsumerConfigMismatch>()("ConsumerConfigMismatch", {
  stream: Schema.String,
  consumer: Schema.String,
  setting: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `JetStream consumer ${this.consumer} of ${this.stream}: ${this.setting} is ${this.actual}, expected ${this.expected}`
  }
}

// -------------------------------------------------------------------------------------
// decoding
// -------------------------------------------------------------------------------------

/**
 * Rebuilds the `RecordedEvent` of a message published by `JetStreamRelay`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const decode = (msg: Js.JsMsg): Either.Either<EventStore.RecordedEvent, MessageDecodeError> =>
  Either.mapLeft(
    message.decode({
      header: (name) => msg.headers?.get(name),
      body: () => msg.string()
    }),
    (reason) => new MessageDecodeError({ stream: msg.info.stream, sequence: msg.seq, subject: msg.subject, reason })
  )

// -------------------------------------------------------------------------------------
// internals
// -------------------------------------------------------------------------------------

const consumerNotFound = 10014

const defaultRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("10 seconds")),
  Schedule.jittered
)

const nanos = (duration: Duration.DurationInput): number => Number(Duration.unsafeToNanos(Duration.decode(duration)))

const tryNats = <A>(method: string, f: () => Promise<A>): Effect.Effect<A, NatsConnection.NatsError> =>
  Effect.tryPromise({ try: f, catch: (cause) => new NatsConnection.NatsError({ method, cause }) })

/** A failure that retrying cannot fix: not retried by the loop. */
class Stop<E> {
  constructor(readonly error: E) {}
}

interface Settings {
  readonly stream: string
  readonly consumer: string
  readonly filterSubject: string | undefined
  readonly maxAckPending: number
  readonly ackWait: number
}

const ensureConsumer = (
  jsm: Js.JetStreamManager,
  settings: Settings
): Effect.Effect<void, NatsConnection.NatsError | ConsumerConfigMismatch> => {
  const mismatch = (setting: string, expected: string, actual: string) =>
    new ConsumerConfigMismatch({ stream: settings.stream, consumer: settings.consumer, setting, expected, actual })
  const create = tryNats("ensureConsumer", () =>
    jsm.consumers.add(settings.stream, {
      durable_name: settings.consumer,
      ack_policy: Js.AckPolicy.Explicit,
      deliver_policy: Js.DeliverPolicy.All,
      max_ack_pending: settings.maxAckPending,
      ack_wait: nanos(Duration.millis(settings.ackWait)),
      ...(settings.filterSubject === undefined ? {} : { filter_subject: settings.filterSubject })
    }))
  return Effect.gen(function*() {
    const found = yield* Effect.tryPromise({
      try: () => jsm.consumers.info(settings.stream, settings.consumer),
      catch: (cause) => cause
    }).pipe(
      Effect.map((info) => info.config),
      Effect.catchIf(
        (cause) => cause instanceof Js.JetStreamApiError && cause.code === consumerNotFound,
        () => Effect.succeed(undefined)
      ),
      Effect.mapError((cause) => new NatsConnection.NatsError({ method: "ensureConsumer", cause }))
    )
    if (found === undefined) return yield* Effect.asVoid(create)
    if (found.deliver_subject !== undefined && found.deliver_subject !== "") {
      return yield* mismatch("deliver_subject", "none (a pull consumer)", found.deliver_subject)
    }
    if (found.ack_policy !== Js.AckPolicy.Explicit) {
      return yield* mismatch("ack_policy", Js.AckPolicy.Explicit, String(found.ack_policy))
    }
    const filter = found.filter_subject === "" ? undefined : found.filter_subject
    if (filter !== settings.filterSubject) {
      return yield* mismatch("filter_subject", settings.filterSubject ?? "none", filter ?? "none")
    }
    // the settings that may change between runs are brought up to date
    const ackWait = nanos(Duration.millis(settings.ackWait))
    if (found.max_ack_pending !== settings.maxAckPending || found.ack_wait !== ackWait) {
      yield* tryNats("ensureConsumer", () =>
        jsm.consumers.update(settings.stream, settings.consumer, {
          max_ack_pending: settings.maxAckPending,
          ack_wait: ackWait
        }))
    }
  })
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Creates (or checks) the durable consumer, then runs the projection from it in a fiber that lives until the scope
 * closes. NATS failures while creating the consumer are retried like the others.
 *
 * @since 0.1.0
 * @category constructors
 */
export const forkScoped = <E, R>(
  projection: Projection.Projection<E, R>,
  options: Options
): Effect.Effect<
  Source,
  ConsumerConfigMismatch | EventStore.InvalidArgument | NatsConnection.NatsError,
  Scope.Scope | R | NatsConnection.NatsConnection
> =>
  Effect.gen(function*() {
    const connection: Nats.NatsConnection = yield* NatsConnection.NatsConnection
    const consumer = options.consumer ?? message.encodeToken(projection.name)
    if (consumer.length === 0 || /[.*>\s/\\]/.test(consumer)) {
      return yield* new EventStore.InvalidArgument({
        method: "JetStreamSource.forkScoped",
        argument: "consumer",
        reason: "a consumer name is non-empty, without '.', '*', '>', whitespace or path separators"
      })
    }
    const settings: Settings = {
      stream: options.stream,
      consumer,
      filterSubject: options.filterSubject,
      maxAckPending: Math.max(1, Math.floor(options.maxAckPending ?? 1)),
      ackWait: Math.max(1_000, Duration.toMillis(Duration.decode(options.ackWait ?? "30 seconds")))
    }
    const nakDelay = Duration.toMillis(Duration.decode(options.nakDelay ?? "1 second"))
    const retry = options.retry ?? defaultRetry
    const annotate = Effect.annotateLogs({ stream: settings.stream, consumer })

    yield* Effect.flatMap(
      tryNats("jetstreamManager", () => Js.jetstreamManager(connection)),
      (jsm) => ensureConsumer(jsm, settings)
    ).pipe(
      Effect.tapErrorTag("NatsError", (error) =>
        annotate(Effect.logWarning("JetStreamSource: the consumer could not be ensured, retrying", error))),
      Effect.retry({
        schedule: defaultRetry,
        while: (error) =>
          error._tag === "NatsError"
      })
    )

    const js = Js.jetstream(connection)
    const processed = yield* SubscriptionRef.make(0)
    const stopped = yield* Deferred.make<never, Error>()

    /** Keeps the message in progress while the handler runs (JetStream would redeliver it after ackWait). */
    const inProgress = (msg: Js.JsMsg) =>
      Effect.sync(() => msg.working()).pipe(
        Effect.delay(Duration.millis(settings.ackWait / 2)),
        Effect.forever
      )

    const handle = (msg: Js.JsMsg): Effect.Effect<void, Stop<MessageDecodeError> | NatsConnection.NatsError, R> => {
      const decoded = decode(msg)
      if (Either.isLeft(decoded)) {
        return Effect.zipRight(Effect.sync(() => msg.nak()), Effect.fail(new Stop(decoded.left)))
      }
      const event = decoded.right
      // interrupted while the handler runs (the source stops): the message is handed back at once (rather than
      // after ackWait); once the handler is done, its ack or nak is sent without interruption
      return Effect.uninterruptibleMask((restore) =>
        restore(Effect.raceFirst(Effect.exit(projection.handle(event)), inProgress(msg))).pipe(
          Effect.onInterrupt(() => Effect.sync(() => msg.nak())),
          Effect.flatMap((exit) => {
            if (Exit.isSuccess(exit)) {
              return Effect.zipRight(
                Effect.sync(() => msg.ack()),
                SubscriptionRef.update(processed, (p) => Math.max(p, event.position))
              )
            }
            const failure = Cause.failureOption(exit.cause)
            return Effect.zipRight(
              Effect.sync(() => msg.nak(nakDelay)),
              failure._tag === "Some"
                ? Effect.logWarning("JetStreamSource: the projection failed, the event is delivered again", exit.cause)
                  .pipe(
                    Effect.annotateLogs({
                      projection: projection.name,
                      position: event.position,
                      deliveries: msg.info.deliveryCount
                    })
                  )
                : Effect.failCause(exit.cause as Cause.Cause<never>)
            )
          })
        )
      ).pipe(
        Effect.withSpan("JetStreamSource.handle", {
          attributes: { "jetstream.consumer": consumer, "event.position": event.position }
        })
      )
    }

    /**
     * Consumes until something fails. On the way out the messages the client holds but the projection has not
     * handled (at most `maxAckPending`) are handed back at once (nak), instead of after `ackWait`.
     */
    const session = Effect.scoped(Effect.gen(function*() {
      const pull = yield* tryNats("consumers.get", () => js.consumers.get(settings.stream, consumer))
      let pending: Promise<IteratorResult<Js.JsMsg>> | undefined
      const { iterator } = yield* Effect.acquireRelease(
        Effect.map(
          tryNats("consume", () => pull.consume({ max_messages: Math.max(settings.maxAckPending, 10) })),
          (messages) => ({ messages, iterator: messages[Symbol.asyncIterator]() })
        ),
        ({ iterator, messages }) =>
          Effect.tryPromise(async () => {
            messages.stop()
            let next = pending ?? iterator.next()
            while (true) {
              const result = await next
              if (result.done === true) return
              result.value.nak()
              next = iterator.next()
            }
          }).pipe(Effect.timeout("2 seconds"), Effect.ignore)
      )
      while (true) {
        const result = yield* tryNats("consume", () => (pending = iterator.next()))
        pending = undefined
        if (result.done === true) break
        yield* handle(result.value)
      }
      return yield* new NatsConnection.NatsError({ method: "consume", cause: "the consumer's messages ended" })
    }))

    const loop: Effect.Effect<never, Error, R> = session.pipe(
      // a Stop leaves the retried part as a value (the retry Schedule only ever sees NATS failures)
      Effect.catchAll((error) => error instanceof Stop ? Effect.succeed(error) : Effect.fail(error)),
      Effect.tapError((error) => annotate(Effect.logWarning("JetStreamSource: NATS failed, retrying", error))),
      Effect.retry(retry),
      Effect.flatMap((stop) => Effect.fail(stop.error)),
      Effect.tapErrorCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : annotate(Effect.logError("JetStreamSource stopped", cause))
      ),
      Effect.onExit((exit) => Exit.isFailure(exit) ? Deferred.failCause(stopped, exit.cause) : Effect.void)
    )

    const fiber = yield* Effect.forkScoped(loop)
    return {
      [TypeId]: TypeId,
      consumer,
      processed: SubscriptionRef.get(processed),
      awaitPosition: (position) =>
        Effect.raceFirst(
          processed.changes.pipe(Stream.takeUntil((p) => p >= position), Stream.runDrain),
          Deferred.await(stopped)
        ),
      join: Fiber.join(fiber)
    } satisfies Source
  })

/**
 * Runs the projection from JetStream until interrupted, or until the source stops with an error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <E, R>(
  projection: Projection.Projection<E, R>,
  options: Options
): Effect.Effect<
  never,
  Error | ConsumerConfigMismatch | EventStore.InvalidArgument,
  R | NatsConnection.NatsConnection
> => Effect.scoped(Effect.flatMap(forkScoped(projection, options), (source) => source.join))

// -------------------------------------------------------------------------------------
// layers
// -------------------------------------------------------------------------------------

/**
 * A Layer that runs the projection from JetStream for as long as it lives (a failure that stops the source is
 * logged; use {@link forkScoped} to observe it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(
  projection: Projection.Projection<E, R>,
  options: Options
): Layer.Layer<
  never,
  ConsumerConfigMismatch | EventStore.InvalidArgument | NatsConnection.NatsError,
  R | NatsConnection.NatsConnection
> => Layer.scopedDiscard(forkScoped(projection, options))
