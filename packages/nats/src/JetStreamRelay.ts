/**
 * A durable relay from the event store to a NATS JetStream stream: a core `Subscription` (with its checkpoint in a
 * `CheckpointStore`) whose handler publishes every event, in global position order, and waits for JetStream's
 * acknowledgement before the checkpoint moves.
 *
 * - **Subject**: `<prefix>.<category>.<streamId>` (e.g. `events.account.account-42`). Stream ids and categories may
 *   hold characters a subject token cannot (`.`, `*`, `>`, whitespace, ...), so both tokens are encoded with
 *   {@link encodeToken}: letters, digits, `-` and `_` stay, every other character becomes `%XX` per UTF-8 byte
 *   (`account-a.b` → `account-a%2Eb`); {@link decodeToken} (or `decodeURIComponent`) reverses it.
 * - **Message**: the event's `data` as JSON in the body; `Nats-Msg-Id` = the event id; headers `Event-Stream-Id`
 *   and `Event-Type` (encoded like a token), `Event-Version`, `Event-Position`, `Event-Recorded-At` (ISO-8601 UTC)
 *   and `Event-Metadata` (the metadata as JSON, non-ASCII escaped as `\uXXXX`). See {@link headers}.
 * - **Exactly once on the broker**: the relay is at-least-once (a crash between the acknowledgement and the
 *   checkpoint re-publishes the events after the checkpoint), and JetStream drops a message whose `Nats-Msg-Id` it
 *   saw within the stream's duplicate window, so every event is stored once, provided the relay is back within the
 *   duplicate window (default 2 minutes; see {@link StreamOptions.duplicateWindow}).
 * - **Order**: one publish at a time, each acknowledged before the next, so the stream holds the events in global
 *   position order (and so in version order per subject), whatever crashes and retries happen.
 * - **Failures**: NATS infrastructure failures ({@link NatsConnection.NatsError}: no connection, timeouts, no
 *   responder) and failures of the event or checkpoint store are retried with a capped backoff for as long as the
 *   relay runs; a message JetStream refuses ({@link PublishRejected}: too large, subject too long, a sealed stream)
 *   stops the relay with that error; it is never skipped.
 *
 * @example
 * ```ts
 * import { CheckpointStore, InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { JetStreamRelay, NatsConnection } from "@effect-eventsourcing/nats"
 * import { Layer } from "effect"
 *
 * // creates (or checks) the JetStream stream "EVENTS" on subjects `events.>`, then relays for as long as it lives
 * const Relay = JetStreamRelay.layer({ stream: "EVENTS", prefix: "events" }).pipe(
 *   Layer.provide([
 *     NatsConnection.layer({ servers: "127.0.0.1:4222" }),
 *     InMemoryEventStore.layer,
 *     CheckpointStore.layerMemory
 *   ])
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as CheckpointStore from "@effect-eventsourcing/core/CheckpointStore"
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as Projection from "@effect-eventsourcing/core/Projection"
import type * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as Subscription from "@effect-eventsourcing/core/Subscription"
import * as Js from "@nats-io/jetstream"
import * as Nats from "@nats-io/transport-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as message from "./internal/message.js"
import * as NatsConnection from "./NatsConnection.js"

// -------------------------------------------------------------------------------------
// models
// -------------------------------------------------------------------------------------

/**
 * The JetStream stream the relay publishes to.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamOptions {
  /** The JetStream stream's name (no `.`, `*`, `>`, whitespace or path separators). */
  readonly stream: string
  /** The subject prefix: one or more `.`-separated tokens without wildcards; the stream covers `<prefix>.>`. */
  readonly prefix: string
  /**
   * JetStream's de-duplication window: a re-published event is dropped when its first copy is younger than this.
   * The relay must be back within it after a crash for the broker to stay exactly-once. Default: 2 minutes
   * (JetStream's default). An existing stream must have at least this window.
   */
  readonly duplicateWindow?: Duration.DurationInput
  /** Storage of a stream created by the relay; default `"file"`. */
  readonly storage?: "file" | "memory"
  /** Replicas of a stream created by the relay; default 1. */
  readonly replicas?: number
}

/**
 * The relay's options: the stream, plus the subscription's (`name`, `from`, `filter`, `checkpoints`, `batchSize`,
 * `retry`; see `Subscription.Options`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends StreamOptions {
  /** The subscription (checkpoint) name; default `jetstream-relay:<stream>:<prefix>`. */
  readonly name?: string
  /** Where to start (inclusive global position) when there is no checkpoint yet; default: the start. */
  readonly from?: number
  /** Only these events are published. */
  readonly filter?: EventStore.Filter
  /** The checkpoint store; default: the `CheckpointStore` service. */
  readonly checkpoints?: CheckpointStore.CheckpointStore.Service
  /** Events published per checkpoint; default 100. */
  readonly batchSize?: number
  /** How long to wait for JetStream's acknowledgement of one publish; default 5 seconds. */
  readonly publishTimeout?: Duration.DurationInput
  /**
   * Longest subject published, in characters (the server refuses a protocol line longer than its
   * `max_control_line`, 4 KiB by default); a longer one fails with {@link PublishRejected}. Default 3,800.
   */
  readonly maxSubjectLength?: number
  /**
   * Retries a failed batch; when it gives up the relay stops with the error. Default: every failure but
   * {@link PublishRejected} is retried for as long as the relay runs, backing off exponentially from 100 ms to at
   * most 10 seconds.
   */
  readonly retry?: Schedule.Schedule<unknown, Subscription.Error<Error>>
}

/**
 * The failures of a publish.
 *
 * @since 0.1.0
 * @category models
 */
export type Error = PublishRejected | NatsConnection.NatsError

/**
 * The services the relay needs: the NATS connection, the event store, and the checkpoint store unless one is given
 * in the options.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements<O> = NatsConnection.NatsConnection | Subscription.Requirements<O>

// -------------------------------------------------------------------------------------
// errors
// -------------------------------------------------------------------------------------

/**
 * JetStream (or the client) refused one event's message for a reason retrying cannot fix: larger than the
 * server's `max_payload` or the stream's `max_msg_size`, a subject longer than {@link Options.maxSubjectLength},
 * a sealed stream, a message stored by another stream than the relay's. Nothing after it is published.
 *
 * @since 0.1.0
 * @category errors
 */
export class PublishRejected extends Schema.TaggedError<PublishRejected>()("PublishRejected", {
  eventId: Schema.String,
  streamId: Schema.String,
  position: Schema.Number,
  subject: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `JetStream refused event ${this.eventId} (${this.streamId} at position ${this.position}): ${this.reason}`
  }
}

/**
 * An existing JetStream stream does not fit the relay: it does not cover `<prefix>.>`, its duplicate window is
 * shorter than asked, it is sealed, a mirror, or does not acknowledge publishes.
 *
 * @since 0.1.0
 * @category errors
 */
export class StreamConfigMismatch extends Schema.TaggedError<StreamConfigMismatch>()("StreamConfigMismatch", {
  stream: Schema.String,
  setting: Schema.String,
  expected: Schema.String,
  actual: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `JetStream stream ${this.stream}: ${this.setting} is ${this.actual}, expected ${this.expected}`
  }
}

// -------------------------------------------------------------------------------------
// subjects and headers
// -------------------------------------------------------------------------------------

/**
 * The header names of a relayed message. `Nats-Msg-Id` holds the event id.
 *
 * @since 0.1.0
 * @category models
 */
export const headers: {
  readonly id: "Nats-Msg-Id"
  readonly streamId: "Event-Stream-Id"
  readonly type: "Event-Type"
  readonly version: "Event-Version"
  readonly position: "Event-Position"
  readonly recordedAt: "Event-Recorded-At"
  readonly metadata: "Event-Metadata"
} = message.headerNames

/**
 * Encodes a string as a subject token (and header value): letters, digits, `-` and `_` stay, every other
 * character becomes `%XX` per UTF-8 byte (upper-case hex). Reversible with {@link decodeToken}.
 *
 * @example
 * ```ts
 * import { JetStreamRelay } from "@effect-eventsourcing/nats"
 *
 * assert.strictEqual(JetStreamRelay.encodeToken("order-a.b *>"), "order-a%2Eb%20%2A%3E")
 * assert.strictEqual(JetStreamRelay.decodeToken("order-a%2Eb%20%2A%3E"), "order-a.b *>")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const encodeToken: (value: string) => string = message.encodeToken

/**
 * Decodes a token made by {@link encodeToken}; `undefined` when it is not one.
 *
 * @since 0.1.0
 * @category combinators
 */
export const decodeToken: (token: string) => string | undefined = message.decodeToken

/**
 * The subject an event of `streamId` is published on: `<prefix>.<category>.<streamId>`, tokens encoded.
 *
 * @example
 * ```ts
 * import { StreamId } from "@effect-eventsourcing/core"
 * import { JetStreamRelay } from "@effect-eventsourcing/nats"
 *
 * const subject = JetStreamRelay.subject("events", StreamId.unsafeMake("account", "42"))
 * assert.strictEqual(subject, "events.account.account-42")
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const subject = (prefix: string, streamId: StreamId.StreamId): string => message.subjectOf(prefix, streamId)

/**
 * The subject filter of every event of one category: `<prefix>.<category>.>` (e.g. for a consumer's filter).
 *
 * @since 0.1.0
 * @category combinators
 */
export const categorySubject = (prefix: string, category: string): string =>
  `${prefix}.${message.encodeToken(category)}.>`

// -------------------------------------------------------------------------------------
// metrics
// -------------------------------------------------------------------------------------

/**
 * Counts the events the relay published, tagged `relay` (its subscription name), `stream` (the JetStream stream)
 * and `duplicate` (`"true"` when JetStream already held the event: a re-publish after a crash or a retry).
 *
 * @since 0.1.0
 * @category models
 */
export const published: Metric.Metric.Counter<number> = Metric.counter("jetstream_relay_published_total", {
  description: "Events published by the JetStream relay (duplicate: JetStream had it already)",
  incremental: true
})

// -------------------------------------------------------------------------------------
// internals
// -------------------------------------------------------------------------------------

const defaultDuplicateWindow = Duration.minutes(2)

/** Retries infrastructure failures for as long as the relay runs, from 100 ms up to 10 s between attempts. */
const infrastructureRetry = Schedule.exponential("100 millis").pipe(
  Schedule.union(Schedule.spaced("10 seconds")),
  Schedule.jittered
)

const defaultRetry: Schedule.Schedule<unknown, Subscription.Error<Error>> = infrastructureRetry.pipe(
  Schedule.whileInput((error: Subscription.Error<Error>) => !(error instanceof PublishRejected))
)

const nanos = (duration: Duration.DurationInput): number => Number(Duration.unsafeToNanos(Duration.decode(duration)))

const validate = (method: string, options: StreamOptions): Effect.Effect<void, EventStore.InvalidArgument> => {
  const prefix = message.prefixProblem(options.prefix)
  if (prefix !== undefined) {
    return Effect.fail(new EventStore.InvalidArgument({ method, argument: "prefix", reason: prefix }))
  }
  if (options.stream.length === 0 || /[.*>\s/\\]/.test(options.stream)) {
    return Effect.fail(
      new EventStore.InvalidArgument({
        method,
        argument: "stream",
        reason: "a stream name is non-empty, without '.', '*', '>', whitespace or path separators"
      })
    )
  }
  return Effect.void
}

const isApiError = (cause: unknown, code?: number): cause is Js.JetStreamApiError =>
  cause instanceof Js.JetStreamApiError && (code === undefined || cause.code === code)

const streamNotFound = 10059
const streamNameInUse = 10058

const check = (
  options: StreamOptions,
  info: Js.StreamInfo
): Effect.Effect<Js.StreamInfo, StreamConfigMismatch> => {
  const config = info.config
  const mismatch = (setting: string, expected: string, actual: string) =>
    Effect.fail(new StreamConfigMismatch({ stream: options.stream, setting, expected, actual }))
  const wanted = `${options.prefix}.>`
  const subjects = config.subjects ?? []
  if (!subjects.some((pattern) => message.covers(pattern, wanted))) {
    return mismatch("subjects", `to cover ${wanted}`, JSON.stringify(subjects))
  }
  const window = nanos(options.duplicateWindow ?? defaultDuplicateWindow)
  if ((config.duplicate_window ?? 0) < window) {
    return mismatch(
      "duplicate_window",
      `at least ${Duration.format(Duration.nanos(BigInt(window)))}`,
      Duration.format(Duration.nanos(BigInt(config.duplicate_window ?? 0)))
    )
  }
  if (config.sealed === true) return mismatch("sealed", "false", "true")
  if (config.no_ack === true) return mismatch("no_ack", "false", "true")
  if (config.mirror !== undefined && config.mirror !== null) return mismatch("mirror", "none", config.mirror.name)
  return Effect.succeed(info)
}

const publisher = (
  connection: Nats.NatsConnection,
  options: Options,
  name: string
) => {
  const js = Js.jetstream(connection)
  const timeout = Duration.toMillis(Duration.decode(options.publishTimeout ?? "5 seconds"))
  const maxSubjectLength = options.maxSubjectLength ?? 3_800
  const counter = published.pipe(Metric.tagged("relay", name), Metric.tagged("stream", options.stream))
  const stored = counter.pipe(Metric.tagged("duplicate", "false"))
  const duplicates = counter.pipe(Metric.tagged("duplicate", "true"))

  return (event: EventStore.RecordedEvent): Effect.Effect<void, Error> =>
    Effect.suspend(() => {
      const subject = message.subjectOf(options.prefix, event.streamId)
      const rejected = (reason: string) =>
        new PublishRejected({
          eventId: event.id,
          streamId: event.streamId,
          position: event.position,
          subject,
          reason
        })
      if (subject.length > maxSubjectLength) {
        return Effect.fail(rejected(`the subject is ${subject.length} characters long, at most ${maxSubjectLength}`))
      }
      return Effect.tryPromise({
        try: () => {
          const h = Nats.headers()
          for (const [key, value] of message.headerValues(event)) h.set(key, value)
          return js.publish(subject, message.body(event), { msgID: event.id, headers: h, timeout })
        },
        catch: (cause): Error =>
          cause instanceof Nats.InvalidArgumentError || cause instanceof Nats.InvalidSubjectError ||
            // the server refused the message (a 503 is JetStream being unavailable: infrastructure)
            (isApiError(cause) && cause.status !== 503)
            ? rejected(cause instanceof Error ? cause.message : String(cause))
            : new NatsConnection.NatsError({ method: "publish", cause })
      }).pipe(
        Effect.flatMap((ack) =>
          ack.stream !== options.stream
            ? Effect.fail(rejected(`stored by the JetStream stream ${ack.stream}, not ${options.stream}`))
            : Metric.increment(ack.duplicate ? duplicates : stored)
        )
      )
    })
}

// -------------------------------------------------------------------------------------
// constructors
// -------------------------------------------------------------------------------------

/**
 * Creates the JetStream stream (subjects `<prefix>.>`) when it does not exist, or checks that the existing one fits
 * (see {@link StreamConfigMismatch}), and returns its info. An invalid prefix or stream name fails with
 * `InvalidArgument`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const ensureStream = (
  options: StreamOptions
): Effect.Effect<
  Js.StreamInfo,
  NatsConnection.NatsError | StreamConfigMismatch | EventStore.InvalidArgument,
  NatsConnection.NatsConnection
> =>
  Effect.gen(function*() {
    yield* validate("JetStreamRelay.ensureStream", options)
    const connection = yield* NatsConnection.NatsConnection
    const jsm = yield* Effect.tryPromise({
      try: () => Js.jetstreamManager(connection),
      catch: (cause) => new NatsConnection.NatsError({ method: "jetstreamManager", cause })
    })
    const info = Effect.tryPromise({
      try: () => jsm.streams.info(options.stream),
      catch: (cause) => cause
    })
    const create = Effect.tryPromise({
      try: () =>
        jsm.streams.add({
          name: options.stream,
          subjects: [`${options.prefix}.>`],
          duplicate_window: nanos(options.duplicateWindow ?? defaultDuplicateWindow),
          storage: options.storage === "memory" ? Js.StorageType.Memory : Js.StorageType.File,
          num_replicas: options.replicas ?? 1
        }),
      catch: (cause) => cause
    })
    const existing = yield* Effect.catchIf(info, (cause) => isApiError(cause, streamNotFound), () =>
      create.pipe(
        // created at the same moment by someone else (maybe with another configuration): check theirs
        Effect.catchIf((cause) => isApiError(cause, streamNameInUse), () => info)
      )).pipe(Effect.mapError((cause) => new NatsConnection.NatsError({ method: "ensureStream", cause })))
    return yield* check(options, existing)
  }).pipe(Effect.withSpan("JetStreamRelay.ensureStream", { attributes: { "jetstream.stream": options.stream } }))

/**
 * The relay's projection alone (its default name, without creating the stream): for running it with
 * `Subscription` options of one's own. Publishes with the connection of the `NatsConnection` service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const projection = (
  options: Options
): Effect.Effect<Projection.Projection<Error>, EventStore.InvalidArgument, NatsConnection.NatsConnection> =>
  Effect.gen(function*() {
    yield* validate("JetStreamRelay.projection", options)
    const connection = yield* NatsConnection.NatsConnection
    const name = options.name ?? `jetstream-relay:${options.stream}:${options.prefix}`
    return Projection.make({ name, handle: publisher(connection, options, name) })
  })

/**
 * Ensures the stream ({@link ensureStream}; NATS failures are retried, with a capped backoff, until it succeeds), then starts the
 * relay in a fiber that lives until the scope closes, and returns its subscription (`processed`, `awaitPosition`,
 * `join`, ...).
 *
 * @since 0.1.0
 * @category constructors
 */
export const forkScoped = <O extends Options>(
  options: O
): Effect.Effect<
  Subscription.Subscription<Error>,
  StreamConfigMismatch | EventStore.InvalidArgument | NatsConnection.NatsError,
  Scope.Scope | Requirements<O>
> =>
  Effect.gen(function*() {
    const relay = yield* projection(options)
    yield* ensureStream(options).pipe(
      Effect.tapErrorTag("NatsError", (error) =>
        Effect.logWarning("JetStreamRelay: the stream could not be ensured, retrying", error)),
      Effect.retry({
        schedule: infrastructureRetry,
        while: (error) =>
          error._tag === "NatsError"
      })
    )
    const subscriptionOptions: Subscription.Options<Error> = {
      retry: options.retry ?? defaultRetry,
      ...(options.from === undefined ? {} : { from: options.from }),
      ...(options.filter === undefined ? {} : { filter: options.filter }),
      ...(options.checkpoints === undefined ? {} : { checkpoints: options.checkpoints }),
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize })
    }
    return yield* Subscription.forkScoped(relay, subscriptionOptions)
  }) as Effect.Effect<
    Subscription.Subscription<Error>,
    StreamConfigMismatch | EventStore.InvalidArgument | NatsConnection.NatsError,
    Scope.Scope | Requirements<O>
  >

/**
 * Runs the relay until interrupted, or until it stops with an error.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <O extends Options>(
  options: O
): Effect.Effect<
  never,
  Subscription.Error<Error> | StreamConfigMismatch | EventStore.InvalidArgument,
  Requirements<O>
> => Effect.scoped(Effect.flatMap(forkScoped(options), (relay) => relay.join))

// -------------------------------------------------------------------------------------
// layers
// -------------------------------------------------------------------------------------

/**
 * A Layer that creates or checks the JetStream stream ({@link ensureStream}) when it is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStream = (
  options: StreamOptions
): Layer.Layer<
  never,
  NatsConnection.NatsError | StreamConfigMismatch | EventStore.InvalidArgument,
  NatsConnection.NatsConnection
> => Layer.effectDiscard(ensureStream(options))

/**
 * A Layer that ensures the stream, then runs the relay for as long as it lives (a failure that stops the relay is
 * logged; use {@link forkScoped} to observe it).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <O extends Options>(
  options: O
): Layer.Layer<never, StreamConfigMismatch | EventStore.InvalidArgument | NatsConnection.NatsError, Requirements<O>> =>
  Layer.scopedDiscard(forkScoped(options))
