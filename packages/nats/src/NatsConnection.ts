/**
 * The NATS connection the relay and the source use (the official `@nats-io/transport-node` client), as a service,
 * and the error for NATS infrastructure failures.
 *
 * @example
 * ```ts
 * import { NatsConnection } from "@effect-eventsourcing/nats"
 *
 * // connects on build, drains and closes when the Layer is released; reconnects for as long as it lives
 * const Nats = NatsConnection.layer({ servers: process.env.NATS_URL ?? "127.0.0.1:4222" })
 * ```
 *
 * @since 0.1.0
 */
import * as Nats from "@nats-io/transport-node"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

/**
 * A failure of NATS or JetStream infrastructure: no connection, a request that timed out, no JetStream responder
 * (the stream is missing or the server restarts), an API error of the server. The relay and the source retry these
 * for as long as they run; the cause is kept for logs.
 *
 * @since 0.1.0
 * @category errors
 */
export class NatsError extends Schema.TaggedError<NatsError>()("NatsError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    const cause = this.cause
    const text = typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
      ? cause.message
      : String(cause)
    return `NATS ${this.method} failed: ${text}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class NatsConnection extends Context.Tag("@effect-eventsourcing/nats/NatsConnection")<
  NatsConnection,
  Nats.NatsConnection
>() {}

/**
 * Options of {@link make}: the client's own connection options (`servers`, `name`, authentication, TLS, ...).
 * Unlike the client's default (10 attempts), the connection tries to reconnect forever unless
 * `maxReconnectAttempts` is given: a relay or a source is meant to outlive a NATS restart.
 *
 * @since 0.1.0
 * @category models
 */
export type Options = Nats.NodeConnectionOptions

/**
 * Connects; the connection is drained (pending publishes flushed, at most 5 seconds) and closed when the scope
 * closes. Fails with {@link NatsError} when the first connection cannot be made (set `waitOnFirstConnect: true`
 * to wait for the server instead).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options?: Options): Effect.Effect<Nats.NatsConnection, NatsError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => Nats.connect({ maxReconnectAttempts: -1, ...options }),
      catch: (cause) => new NatsError({ method: "connect", cause })
    }),
    (connection) =>
      Effect.tryPromise(() => connection.drain()).pipe(
        Effect.timeout("5 seconds"),
        Effect.ignore,
        Effect.zipRight(Effect.promise(() => connection.close().catch(() => undefined)))
      )
  )

/**
 * A Layer holding one connection for as long as it lives.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<NatsConnection, NatsError> =>
  Layer.scoped(NatsConnection, make(options))
