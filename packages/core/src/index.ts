/**
 * @since 0.1.0
 */
export * as Aggregate from "./Aggregate.js"

/**
 * @since 0.1.0
 */
export * as CheckpointStore from "./CheckpointStore.js"

/**
 * @since 0.1.0
 */
export * as CommandHandler from "./CommandHandler.js"

/**
 * @since 0.1.0
 */
export * as EventBus from "./EventBus.js"

/**
 * @since 0.1.0
 */
export * as EventStore from "./EventStore.js"

/**
 * @since 0.1.0
 */
export * as ExpectedVersion from "./ExpectedVersion.js"

/**
 * @since 0.2.0
 */
export * as HttpConventions from "./HttpConventions.js"

/**
 * @since 0.1.0
 */
export * as InMemoryEventStore from "./InMemoryEventStore.js"

/**
 * @since 0.3.0
 */
export * as Metrics from "./Metrics.js"

/**
 * @since 0.3.0
 */
export * as ParkedEvents from "./ParkedEvents.js"

/**
 * @since 0.1.0
 */
export * as Projection from "./Projection.js"

/**
 * @since 0.3.0
 */
export * as ProcessManager from "./ProcessManager.js"

/**
 * @since 0.1.0
 */
export * as Repository from "./Repository.js"

/**
 * @since 0.1.0
 */
export * as SnapshotStore from "./SnapshotStore.js"

/**
 * @since 0.2.0
 */
export * as StoreKit from "./StoreKit.js"

/**
 * @since 0.1.0
 */
export * as StreamId from "./StreamId.js"

/**
 * @since 0.1.0
 */
export * as Subscription from "./Subscription.js"

/**
 * @since 0.3.0
 */
export * as TimerStore from "./TimerStore.js"

/**
 * @since 0.2.0
 */
export * as View from "./View.js"
