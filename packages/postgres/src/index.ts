/**
 * @since 0.1.0
 */
export * as PostgresCheckpointStore from "./PostgresCheckpointStore.js"
