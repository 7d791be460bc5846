/**
 * @since 0.1.0
 */
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.js"

/**
 * @since 0.1.0
 */
export * as PostgresEventStore from "./PostgresEventStore.js"

/**
 * @since 0.3.0
 */
export * as PostgresParkedEvents from "./PostgresParkedEvents.js"

/**
 * @since 0.1.0
 */
export * as PostgresSnapshotStore from "./PostgresSnapshotStore.js"

/**
 * @since 0.2.0
 */
export * as PostgresViewStore from "./PostgresViewStore.js"

/**
 * @since 0.3.0
 */
export * as PostgresTimerStore from "./PostgresTimerStore.js"
