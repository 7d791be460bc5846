/**
 * @since 0.1.0
 */
export * as JetStreamRelay from "./JetStreamRelay.js"

/**
 * @since 0.1.0
 */
export * as JetStreamSource from "./JetStreamSource.js"

/**
 * @since 0.1.0
 */
export * as NatsConnection from "./NatsConnection.js"
