/**
 * What every HTTP service over an event store repeats, without any HTTP dependency (this module needs `effect`
 * only; use it with `@effect/platform`'s `HttpApi`, or any server):
 *
 * - **ETag ↔ version**: the stream version of a resource is its entity tag (`"3"`); `If-Match: "3"` becomes
 *   `ExpectedVersion.Exact(3)`, `If-Match: *` `StreamExists`, `If-None-Match: *` `NoStream` ({@link expectedVersion}).
 * - **Status codes** for the typed failures of the stores and handlers ({@link status}): `AggregateNotFound` 404,
 *   `ConcurrencyConflict` 409 (412 when the client sent a precondition), `InvalidStreamId` / `InvalidArgument` 400,
 *   `CommitOutcomeUnknown` / `EventStoreError` 503, data errors 500, and 422 for the domain's own errors.
 * - **Problem details** (RFC 9457): {@link problem} turns an error Schema into a Schema of an
 *   `application/problem+json` body carrying the error, so both ends keep the typed error.
 *
 * @example
 * ```ts
 * import { ExpectedVersion, HttpConventions } from "@effect-eventsourcing/core"
 * import { Either, Option } from "effect"
 *
 * assert.strictEqual(HttpConventions.etag(3), "\"3\"")
 * assert.deepStrictEqual(
 *   HttpConventions.expectedVersion({ ifMatch: "\"3\"" }),
 *   Either.right(Option.some(ExpectedVersion.Exact(3)))
 * )
 * assert.strictEqual(HttpConventions.status({ _tag: "ConcurrencyConflict" }, { conditional: true }), 412)
 * ```
 *
 * @since 0.2.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as ExpectedVersion from "./ExpectedVersion.js"

// -------------------------------------------------------------------------------------
// ETag ↔ version
// -------------------------------------------------------------------------------------

/**
 * The entity tag of a stream version: a strong tag, `"<version>"` (quotes included), for an `ETag` header.
 *
 * @since 0.2.0
 * @category etag
 */
export const etag = (version: number): string => `"${version}"`

/**
 * The version in a strong entity tag made by {@link etag} (`"3"` → 3). `None` for anything else, weak tags
 * (`W/"3"`) included: `If-Match` compares strongly.
 *
 * @since 0.2.0
 * @category etag
 */
export const versionOf = (entityTag: string): Option.Option<number> => {
  const match = /^"(0|[1-9][0-9]*)"$/.exec(entityTag.trim())
  if (match === null) return Option.none()
  const version = Number(match[1])
  return Number.isSafeInteger(version) ? Option.some(version) : Option.none()
}

/**
 * A precondition (`If-Match` / `If-None-Match`) that no version of the resource can satisfy: a malformed or weak
 * entity tag, or several tags. Answer 412.
 *
 * @since 0.2.0
 * @category errors
 */
export class PreconditionFailed extends Schema.TaggedError<PreconditionFailed>()("PreconditionFailed", {
  header: Schema.String,
  value: Schema.String,
  /** The resource's current version, when known. */
  actual: Schema.optional(Schema.Number)
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `${this.header}: ${this.value} does not match${
      this.actual === undefined ? "" : ` the current version ${etag(this.actual)}`
    }`
  }
}

/**
 * The expected version a request asks for through its conditional headers:
 *
 * - `If-Match: "n"` → `Exact(n)`; `If-Match: *` → `StreamExists`;
 * - `If-None-Match: *` → `NoStream` (create only);
 * - none → `None` (the handler decides: e.g. reload and retry on conflicts).
 *
 * A value no version can satisfy (weak, malformed, a list, or `If-None-Match` with a tag) fails with
 * {@link PreconditionFailed}.
 *
 * @since 0.2.0
 * @category etag
 */
export const expectedVersion = (headers: {
  readonly ifMatch?: string | undefined
  readonly ifNoneMatch?: string | undefined
}): Either.Either<Option.Option<ExpectedVersion.ExpectedVersion>, PreconditionFailed> => {
  const { ifMatch, ifNoneMatch } = headers
  if (ifMatch !== undefined && ifNoneMatch !== undefined) {
    return Either.left(new PreconditionFailed({ header: "If-None-Match", value: ifNoneMatch }))
  }
  if (ifMatch !== undefined) {
    if (ifMatch.trim() === "*") return Either.right(Option.some(ExpectedVersion.StreamExists))
    return Option.match(versionOf(ifMatch), {
      onNone: () => Either.left(new PreconditionFailed({ header: "If-Match", value: ifMatch })),
      onSome: (version) => Either.right(Option.some(ExpectedVersion.Exact(version)))
    })
  }
  if (ifNoneMatch !== undefined) {
    return ifNoneMatch.trim() === "*"
      ? Either.right(Option.some(ExpectedVersion.NoStream))
      : Either.left(new PreconditionFailed({ header: "If-None-Match", value: ifNoneMatch }))
  }
  return Either.right(Option.none())
}

// -------------------------------------------------------------------------------------
// status codes
// -------------------------------------------------------------------------------------

/**
 * The HTTP status of a typed failure, by its `_tag`:
 *
 * | failure | status |
 * |---|---|
 * | `AggregateNotFound` | 404 |
 * | `ConcurrencyConflict` | 409, or 412 with `conditional: true` (the client's `If-Match` no longer holds) |
 * | `PreconditionFailed` | 412 |
 * | `EventIdConflict` | 409 |
 * | `InvalidStreamId`, `InvalidArgument` | 400 |
 * | `CommitOutcomeUnknown`, `EventStoreError`, `SnapshotStoreError`, `CheckpointStoreError`, `LockTimeout` | 503 |
 * | `EventDecodeError`, `EventEncodeError` | 500 |
 * | anything else (the domain's errors) | 422 |
 *
 * @since 0.2.0
 * @category status
 */
export const status = (
  error: { readonly _tag: string },
  options?: { readonly conditional?: boolean | undefined }
): number => {
  switch (error._tag) {
    case "AggregateNotFound":
      return 404
    case "ConcurrencyConflict":
      return options?.conditional === true ? 412 : 409
    case "PreconditionFailed":
      return 412
    case "EventIdConflict":
      return 409
    case "InvalidStreamId":
    case "InvalidArgument":
      return 400
    case "CommitOutcomeUnknown":
    case "EventStoreError":
    case "SnapshotStoreError":
    case "CheckpointStoreError":
    case "LockTimeout":
      return 503
    case "EventDecodeError":
    case "EventEncodeError":
      return 500
    default:
      return 422
  }
}

const reasons: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  409: "Conflict",
  412: "Precondition Failed",
  422: "Unprocessable Content",
  500: "Internal Server Error",
  503: "Service Unavailable"
}

// -------------------------------------------------------------------------------------
// problem details
// -------------------------------------------------------------------------------------

/**
 * An RFC 9457 problem document as sent on the wire, with the typed error in the extension member `error` (its
 * encoded form, `_tag` included). Without a `type`, the problem type is `about:blank` and `title` the status
 * phrase.
 *
 * @since 0.2.0
 * @category problem details
 */
export interface ProblemDocument<I> {
  readonly type: string
  readonly title: string
  readonly status: number
  readonly detail?: string
  readonly error: I
}

/**
 * A Schema of the problem document ({@link ProblemDocument}) for errors of `schema`, answered with `status`:
 * decoding gives the typed error back (a client of the API fails with the same error the server did), encoding
 * wraps it. `detail` (a human explanation, default: the error's `message` when it has one) and `type` (a URI per
 * error `_tag`, default `about:blank`) can be given. Serve it as `application/problem+json`.
 *
 * @example
 * ```ts
 * import { EventStore, HttpConventions } from "@effect-eventsourcing/core"
 * import { Schema } from "effect"
 *
 * const Conflict = HttpConventions.problem(EventStore.ConcurrencyConflict, { status: 409 })
 * const body = Schema.encodeSync(Conflict)(
 *   new EventStore.ConcurrencyConflict({ streamId: "account-1", expected: { _tag: "Exact", version: 1 }, actual: 2 })
 * )
 * assert.strictEqual(body.title, "Conflict")
 * assert.strictEqual(body.error._tag, "ConcurrencyConflict")
 * ```
 *
 * @since 0.2.0
 * @category problem details
 */
export const problem = <A, I extends { readonly _tag: string }, R>(
  schema: Schema.Schema<A, I, R>,
  options: {
    readonly status: number
    readonly type?: ((tag: string) => string) | undefined
    readonly detail?: ((error: A) => string | undefined) | undefined
  }
): Schema.Schema<A, ProblemDocument<I>, R> => {
  const encoded = Schema.encodedSchema(schema) as unknown as Schema.Schema<I>
  const Document = Schema.Struct({
    type: Schema.String,
    title: Schema.String,
    status: Schema.Number,
    detail: Schema.optional(Schema.String),
    error: encoded
  })
  const title = reasons[options.status] ?? "Error"
  const detailOf = (error: A): string | undefined => {
    if (options.detail !== undefined) return options.detail(error)
    return typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" &&
        error.message !== ""
      ? error.message
      : undefined
  }
  return Schema.transformOrFail(Document, Schema.typeSchema(schema), {
    strict: true,
    decode: (document) => ParseResult.decodeUnknown(schema)(document.error),
    encode: (error) =>
      ParseResult.encode(schema)(error).pipe(
        Effect.map((encodedError) => {
          const detail = detailOf(error)
          return {
            type: options.type === undefined ? "about:blank" : options.type(encodedError._tag),
            title,
            status: options.status,
            ...(detail === undefined ? {} : { detail }),
            error: encodedError
          }
        })
      )
  }) as unknown as Schema.Schema<A, ProblemDocument<I>, R>
}
