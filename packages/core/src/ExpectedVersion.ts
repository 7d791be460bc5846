/**
 * What a writer expects of a stream's version when it appends: every store enforces all four, identically.
 *
 * - `Any`: no check.
 * - `NoStream`: the stream has no events (version 0).
 * - `StreamExists`: the stream has at least one event.
 * - `Exact(n)`: the stream's version is exactly `n` (`Exact(0)` is `NoStream`). `n` must be a non-negative integer:
 *   every store refuses `Exact(-1)`, `Exact(1.5)` or `Exact(NaN)` with `EventStore.InvalidArgument` (not a
 *   `ConcurrencyConflict`, which a retry loop would retry).
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * @since 0.1.0
 * @category schemas
 */
export const ExpectedVersion = Schema.Union(
  Schema.TaggedStruct("Any", {}),
  Schema.TaggedStruct("NoStream", {}),
  Schema.TaggedStruct("StreamExists", {}),
  Schema.TaggedStruct("Exact", { version: Schema.Number })
)

/**
 * @since 0.1.0
 * @category models
 */
export type ExpectedVersion = typeof ExpectedVersion.Type

/**
 * @since 0.1.0
 * @category constructors
 */
export const Any: ExpectedVersion = { _tag: "Any" }

/**
 * @since 0.1.0
 * @category constructors
 */
export const NoStream: ExpectedVersion = { _tag: "NoStream" }

/**
 * @since 0.1.0
 * @category constructors
 */
export const StreamExists: ExpectedVersion = { _tag: "StreamExists" }

/**
 * @since 0.1.0
 * @category constructors
 */
export const Exact = (version: number): ExpectedVersion => ({ _tag: "Exact", version })

/**
 * Whether a stream currently at `actual` satisfies the expectation. An `Exact` version that is not a
 * non-negative integer never matches.
 *
 * @since 0.1.0
 * @category guards
 */
export const matches = (expected: ExpectedVersion, actual: number): boolean => {
  switch (expected._tag) {
    case "Any":
      return true
    case "NoStream":
      return actual === 0
    case "StreamExists":
      return actual > 0
    case "Exact":
      return expected.version === actual
  }
}

/**
 * A short human form: `any`, `no stream`, `stream exists`, `exactly 3`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const format = (expected: ExpectedVersion): string => {
  switch (expected._tag) {
    case "Any":
      return "any"
    case "NoStream":
      return "no stream"
    case "StreamExists":
      return "stream exists"
    case "Exact":
      return `exactly ${expected.version}`
  }
}
