/**
 * @since 0.3.0
 */
export * as Cli from "./Cli.js"
