/**
 * Stream identifiers: `"<category>-<id>"`, where the category is the aggregate's name and may not contain `-`.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as validation from "./internal/validation.js"

/**
 * The longest stream id accepted by every store, in UTF-8 bytes (not characters): 1,000 ASCII characters, but only
 * 333 characters of three bytes each. PostgreSQL indexes stream ids in btrees whose entries may not exceed 2,704
 * bytes; 1,000 bytes keeps every index entry well below that whatever the characters.
 *
 * @since 0.1.0
 * @category models
 */
export const maxLength: number = validation.maxStreamIdBytes

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

/**
 * Why a string is not a stream id: empty, longer than {@link maxLength} UTF-8 bytes, a NUL character or a lone
 * surrogate (neither can be stored as text by every store), no `-` after a non-empty category, or an empty id.
 */
const reasonInvalid = validation.streamIdProblem

const reasonInvalidCategory = (category: string): string | undefined => {
  if (category.length === 0) return "empty category"
  if (category.includes("-")) return "category may not contain '-'"
  const text = validation.textProblem(category)
  if (text !== undefined) return `category ${text}`
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
