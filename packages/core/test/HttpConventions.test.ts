import { Aggregate, EventStore, ExpectedVersion, HttpConventions } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Either, Option, Schema } from "effect"

class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  balance: Schema.Int,
  requested: Schema.Int
}) {}

describe("HttpConventions", () => {
  it("etag and versionOf are inverse; weak, malformed and unsafe tags carry no version", () => {
    for (const version of [0, 1, 42, 9_007_199_254_740_991]) {
      assert.deepStrictEqual(HttpConventions.versionOf(HttpConventions.etag(version)), Option.some(version))
    }
    assert.strictEqual(HttpConventions.etag(3), "\"3\"")
    for (const tag of ["W/\"3\"", "3", "\"03\"", "\"-1\"", "\"1.5\"", "\"\"", "\"99999999999999999999\""]) {
      assert.deepStrictEqual(HttpConventions.versionOf(tag), Option.none(), tag)
    }
  })

  it("expectedVersion maps If-Match / If-None-Match to ExpectedVersion, and refuses what can never match", () => {
    assert.deepStrictEqual(HttpConventions.expectedVersion({}), Either.right(Option.none()))
    assert.deepStrictEqual(
      HttpConventions.expectedVersion({ ifMatch: "\"7\"" }),
      Either.right(Option.some(ExpectedVersion.Exact(7)))
    )
    assert.deepStrictEqual(
      HttpConventions.expectedVersion({ ifMatch: "*" }),
      Either.right(Option.some(ExpectedVersion.StreamExists))
    )
    assert.deepStrictEqual(
      HttpConventions.expectedVersion({ ifNoneMatch: "*" }),
      Either.right(Option.some(ExpectedVersion.NoStream))
    )
    for (
      const headers of [{ ifMatch: "W/\"7\"" }, { ifMatch: "\"1\", \"2\"" }, { ifNoneMatch: "\"1\"" }, {
        ifMatch: "\"1\"",
        ifNoneMatch: "*"
      }]
    ) {
      const result = HttpConventions.expectedVersion(headers)
      assert.isTrue(Either.isLeft(result), JSON.stringify(headers))
      assert.instanceOf(Either.getLeft(result).pipe(Option.getOrThrow), HttpConventions.PreconditionFailed)
    }
  })

  it("status maps the typed failures; anything else is a domain error (422)", () => {
    const conflict = new EventStore.ConcurrencyConflict({
      streamId: "a-1",
      expected: ExpectedVersion.Exact(1),
      actual: 2
    })
    assert.strictEqual(HttpConventions.status(conflict), 409)
    assert.strictEqual(HttpConventions.status(conflict, { conditional: true }), 412)
    assert.strictEqual(HttpConventions.status(new Aggregate.AggregateNotFound({ streamId: "a-1" })), 404)
    assert.strictEqual(HttpConventions.status(new EventStore.EventStoreError({ method: "append", cause: "x" })), 503)
    assert.strictEqual(
      HttpConventions.status(new EventStore.InvalidArgument({ method: "m", argument: "a", reason: "r" })),
      400
    )
    assert.strictEqual(
      HttpConventions.status(new HttpConventions.PreconditionFailed({ header: "If-Match", value: "x" })),
      412
    )
    assert.strictEqual(HttpConventions.status(new InsufficientFunds({ balance: 1, requested: 2 })), 422)
  })

  it("problem wraps a typed error in an RFC 9457 document and decodes it back to the same error", () => {
    const Problem = HttpConventions.problem(InsufficientFunds, {
      status: 422,
      type: (tag) => `https://example.com/problems/${tag}`,
      detail: (error) => `balance ${error.balance}, requested ${error.requested}`
    })
    const error = new InsufficientFunds({ balance: 10, requested: 50 })
    const document = Schema.encodeSync(Problem)(error)
    assert.deepStrictEqual(document, {
      type: "https://example.com/problems/InsufficientFunds",
      title: "Unprocessable Content",
      status: 422,
      detail: "balance 10, requested 50",
      error: { _tag: "InsufficientFunds", balance: 10, requested: 50 }
    })
    const decoded = Schema.decodeUnknownSync(Problem)(JSON.parse(JSON.stringify(document)))
    assert.instanceOf(decoded, InsufficientFunds)
    assert.deepStrictEqual(decoded, error)
    // defaults: about:blank, the status phrase, the error's message as detail
    const NotFound = HttpConventions.problem(Aggregate.AggregateNotFound, { status: 404 })
    assert.deepStrictEqual(Schema.encodeSync(NotFound)(new Aggregate.AggregateNotFound({ streamId: "account-1" })), {
      type: "about:blank",
      title: "Not Found",
      status: 404,
      detail: "Aggregate account-1 not found",
      error: { _tag: "AggregateNotFound", streamId: "account-1" }
    })
    // a document whose error does not decode is refused
    assert.isTrue(Either.isLeft(Schema.decodeUnknownEither(Problem)({ ...document, error: { _tag: "Other" } })))
  })
})
