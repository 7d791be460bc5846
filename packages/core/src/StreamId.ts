/**
 * Stream identifiers: `"<category>-<id>"`, where the category is the aggregate's name and may not contain `-`.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"

/**
 * The longest stream id accepted by every store (bytes are what Postgres indexes; characters are what we count).
 *
 * @since 0.1.0
 * @category models
 */
export const maxLength = 1000

/**
 * A validated stream id.
 *
 * @since 0.1.0
 * @category schemas
 */
export const StreamId = Schema.String.pipe(
  Schema.filter((s) => reasonInvalid(s)),
  Schema.brand("@effect-eventsourcing/core/StreamId")
)

/**
 * @since 0.1.0
 * @category models
 */
export type StreamId = typeof StreamId.Type

/**
 * A stream id that was refused. Nothing was read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStreamId extends Schema.TaggedError<InvalidStreamId>()("InvalidStreamId", {
  streamId: Schema.String,
  reason: Schema.String
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid stream id ${JSON.stringify(this.streamId.slice(0, 100))}: ${this.reason}`
  }
}

const reasonInvalid = (s: string): string | undefined => {
  if (s.length === 0) return "empty"
  if (s.length > maxLength) return `longer than ${maxLength} characters`
  if (s.includes("\u0000")) return "contains a NUL character"
  const dash = s.indexOf("-")
  if (dash <= 0) return "expected \"<category>-<id>\""
  if (dash === s.length - 1) return "empty id"
  return undefined
}

const reasonInvalidCategory = (category: string): string | undefined => {
  if (category.length === 0) return "empty category"
  if (category.includes("-")) return "category may not contain '-'"
  if (category.includes("\u0000")) return "category contains a NUL character"
  return undefined
}

/**
 * Validates a whole stream id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parse = (streamId: string): Either.Either<StreamId, InvalidStreamId> => {
  const reason = reasonInvalid(streamId)
  return reason === undefined
    ? Either.right(streamId as StreamId)
    : Either.left(new InvalidStreamId({ streamId, reason }))
}

/**
 * Builds `"<category>-<id>"`, refusing an empty or dashed category and an empty id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (category: string, id: string): Either.Either<StreamId, InvalidStreamId> => {
  const reason = reasonInvalidCategory(category)
  if (reason !== undefined) return Either.left(new InvalidStreamId({ streamId: `${category}-${id}`, reason }))
  return parse(`${category}-${id}`)
}

/**
 * Like {@link make} but throws on invalid input. For constants and tests only.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMake = (category: string, id: string): StreamId => Either.getOrThrow(make(category, id))

/**
 * @since 0.1.0
 * @category guards
 */
export const isStreamId = (u: unknown): u is StreamId => typeof u === "string" && reasonInvalid(u) === undefined

/**
 * The category of a stream id (the part before the first `-`).
 *
 * @since 0.1.0
 * @category accessors
 */
export const category = (streamId: StreamId): string => streamId.slice(0, streamId.indexOf("-"))

/**
 * The id of a stream within its category (everything after the first `-`).
 *
 * @since 0.1.0
 * @category accessors
 */
export const id = (streamId: StreamId): string => streamId.slice(streamId.indexOf("-") + 1)
