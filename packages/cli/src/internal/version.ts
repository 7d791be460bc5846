/**
 * The package's version, printed by `--version` (a test checks it against package.json).
 *
 * @internal
 */
export const version = "0.1.0"
