/**
 * @since 0.1.0
 */
export * as DeciderSpec from "./DeciderSpec.js"
