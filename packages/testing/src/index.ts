/**
 * @since 0.1.0
 */
export * as DeciderSpec from "./DeciderSpec.js"

/**
 * @since 0.1.0
 */
export * as EventStoreContract from "./EventStoreContract.js"

/**
 * @since 0.1.0
 */
export * as DeciderLaws from "./DeciderLaws.js"

/**
 * @since 0.2.0
 */
export * as CheckpointStoreContract from "./CheckpointStoreContract.js"

/**
 * @since 0.2.0
 */
export * as SnapshotStoreContract from "./SnapshotStoreContract.js"

/**
 * @since 0.2.0
 */
export * as ProjectionSpec from "./ProjectionSpec.js"
