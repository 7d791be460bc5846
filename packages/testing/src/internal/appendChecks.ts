/**
 * The append checks of `EventStoreContract`: versions and positions, expected versions, atomic batches and
 * `appendMany`, idempotent appends by event id, unicode and large payloads, hostile stream ids.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { ContractViolation } from "./contract.js"
import { describeError, ensure, ensureEqual, fail, ok } from "./contract.js"
import {
  ensureIncreasingPositions,
  ev,
  expectConflict,
  fixture,
  ids,
  newId,
  numbered,
  payloads,
  positions,
  readAllOf,
  readStream,
  versions
} from "./fixture.js"
import { show } from "./values.js"

export const versionsCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("versions")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 0, "a new stream is at version 0")
    yield* ensureEqual(yield* readStream(store, s), [], "a new stream reads empty")
    const first = [
      { id: newId(), type: "Opened", data: { owner: "Ada", tags: ["a", "b"], nested: { n: 1, ok: true, none: null } } },
      {
        id: newId(),
        type: "Deposited",
        data: { amount: 10 },
        metadata: { correlationId: "corr-1", causationId: "cause-1", user: { name: "ops" } }
      }
    ]
    const r1 = yield* ok(store.append(s, first, ExpectedVersion.NoStream), "append")
    yield* ensureEqual(r1.version, 2, "the first batch of 2 events brings the stream to version 2")
    const r2 = yield* ok(store.append(s, [ev("Deposited", { amount: 5 })], ExpectedVersion.Exact(2)), "append")
    yield* ensureEqual(r2.version, 3, "the next event gets version 3")
    yield* ensure(r2.position > r1.position, `later appends get higher positions (${r1.position} then ${r2.position})`)
    const events = yield* readStream(store, s)
    yield* ensureEqual(versions(events), [1, 2, 3], "versions start at 1 and increase by one")
    yield* ensureIncreasingPositions(events, "read")
    yield* ensureEqual(positions(events)[1], r1.position, "AppendResult.position is the position of the last event")
    yield* ensureEqual(positions(events)[2], r2.position, "AppendResult.position is the position of the last event")
    yield* ensureEqual(
      events.map((e) => ({ type: e.type, data: e.data })),
      [
        { type: "Opened", data: first[0]!.data },
        { type: "Deposited", data: { amount: 10 } },
        { type: "Deposited", data: { amount: 5 } }
      ],
      "types and data round-trip"
    )
    yield* ensureEqual(events.slice(0, 2).map((e) => e.id), first.map((e) => e.id), "caller-given event ids are kept")
    yield* ensure(typeof events[2]!.id === "string" && events[2]!.id.length > 0, "the store generates missing ids")
    yield* ensure(events.every((e) => e.streamId === s), "every event carries its stream id")
    yield* ensure(events.every((e) => DateTime.isDateTime(e.recordedAt)), "recordedAt is a DateTime")
    yield* ensureEqual(
      { correlationId: events[1]!.metadata.correlationId, causationId: events[1]!.metadata.causationId },
      { correlationId: "corr-1", causationId: "cause-1" },
      "correlation and causation ids round-trip"
    )
    yield* ensureEqual(events[1]!.metadata.user, { name: "ops" }, "user metadata fields round-trip")
    yield* ensure(
      typeof events[0]!.metadata === "object" && events[0]!.metadata !== null,
      "an event appended without metadata has an empty metadata record"
    )
    const empty = yield* ok(store.append(s, [], ExpectedVersion.Any), "an empty append")
    yield* ensureEqual(empty, { version: 3, position: 0 }, "an empty append returns the current version, position 0")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 3, "an empty append writes nothing")
  })
)

export const expectedVersionsCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const cases: ReadonlyArray<readonly [number, ExpectedVersion.ExpectedVersion, boolean]> = [
      [0, ExpectedVersion.Any, true],
      [2, ExpectedVersion.Any, true],
      [0, ExpectedVersion.NoStream, true],
      [2, ExpectedVersion.NoStream, false],
      [0, ExpectedVersion.StreamExists, false],
      [2, ExpectedVersion.StreamExists, true],
      [0, ExpectedVersion.Exact(0), true],
      [2, ExpectedVersion.Exact(0), false],
      [2, ExpectedVersion.Exact(2), true],
      [2, ExpectedVersion.Exact(1), false],
      [2, ExpectedVersion.Exact(3), false],
      [0, ExpectedVersion.Exact(1), false]
    ]
    for (let i = 0; i < cases.length; i++) {
      const [existing, expected, succeeds] = cases[i]!
      const s = stream(`ev${i}`)
      if (existing > 0) yield* ok(store.append(s, numbered(existing), ExpectedVersion.NoStream), "append")
      const what = `${ExpectedVersion.format(expected)} on a stream at version ${existing}`
      const attempt = store.append(s, [ev("Attempt", { i })], expected)
      if (succeeds) {
        const result = yield* ok(attempt, what)
        yield* ensureEqual(result.version, existing + 1, `${what}: the new version`)
        yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing + 1, `${what}: streamVersion`)
      } else {
        yield* expectConflict(attempt, s, expected, existing, what)
        yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), existing, `${what}: nothing written`)
        yield* ensureEqual((yield* readStream(store, s)).length, existing, `${what}: nothing written`)
      }
    }
  })
)

export const batchAtomicityCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("batch")
    yield* ok(store.append(s, numbered(2), ExpectedVersion.NoStream), "append")
    yield* expectConflict(
      store.append(s, numbered(5, "Rejected"), ExpectedVersion.Exact(1)),
      s,
      ExpectedVersion.Exact(1),
      2,
      "a batch of 5 with a stale expectation"
    )
    const bad = [ev("Good", { n: 1 }), ev("Bad", { n: 10n })]
    const refused = yield* Effect.either(store.append(s, bad, ExpectedVersion.Exact(2)))
    yield* ensure(Either.isLeft(refused), "a batch holding data that is not JSON (a bigint) must be refused")
    const fresh = stream("fresh")
    const refusedNew = yield* Effect.either(store.append(fresh, bad, ExpectedVersion.NoStream))
    yield* ensure(Either.isLeft(refusedNew), "a batch holding data that is not JSON (a bigint) must be refused")
    yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 2, "a refused batch writes nothing")
    yield* ensureEqual(yield* ok(store.streamVersion(fresh), "streamVersion"), 0, "a refused batch writes nothing")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.map((e) => e.type), ["Numbered", "Numbered"], "refused batches leave no event behind")
  })
)

export const appendManyAtomicityCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const a = stream("a")
    const b = stream("b")
    const results = yield* ok(
      store.appendMany([
        { streamId: a, events: numbered(2), expected: ExpectedVersion.NoStream },
        { streamId: b, events: numbered(3), expected: ExpectedVersion.NoStream }
      ]),
      "appendMany"
    )
    yield* ensureEqual(results.map((r) => r.version), [2, 3], "appendMany returns one result per request, in order")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 5, "appendMany writes every request")
    yield* ensureIncreasingPositions(all, "appendMany")
    yield* ensureEqual(
      results.map((r) => r.position),
      [all.filter((e) => e.streamId === a).at(-1)!.position, all.filter((e) => e.streamId === b).at(-1)!.position],
      "each AppendResult.position is the position of the request's last event"
    )

    const c = stream("c")
    for (const order of ["conflict last", "conflict first"] as const) {
      const requests: Array<EventStore.AppendRequest> = [
        { streamId: c, events: numbered(2, "MustNotExist"), expected: ExpectedVersion.NoStream },
        { streamId: a, events: numbered(1, "MustNotExist"), expected: ExpectedVersion.Exact(1) }
      ]
      if (order === "conflict first") requests.reverse()
      yield* expectConflict(
        store.appendMany(requests),
        a,
        ExpectedVersion.Exact(1),
        2,
        `appendMany with a stale request (${order})`
      )
      yield* ensureEqual(
        yield* ok(store.streamVersion(c), "streamVersion"),
        0,
        `appendMany (${order}): a conflict in one request writes nothing to the others`
      )
      const after = yield* readAllOf(store, { filter: { categories: [category] } })
      yield* ensureEqual(ids(after), ids(all), `appendMany (${order}): nothing at all is written`)
    }
  })
)

export const idempotencyCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("idem")
    const batch: ReadonlyArray<EventStore.EventData> = [
      { id: newId(), type: "Deposited", data: { amount: 1 } },
      { id: newId(), type: "Deposited", data: { amount: 2 } }
    ]
    const first = yield* ok(store.append(s, batch, ExpectedVersion.NoStream), "append")
    yield* ok(store.append(stream("between"), numbered(1), ExpectedVersion.NoStream), "append")
    const again = yield* ok(
      store.append(s, batch, ExpectedVersion.NoStream),
      "re-sending a committed batch with the same ids"
    )
    yield* ensureEqual(again, first, "re-sending a committed batch returns the original AppendResult")
    yield* ensureEqual(
      yield* ok(store.streamVersion(s), "streamVersion"),
      2,
      "re-sending a committed batch writes nothing"
    )
    const idConflict = (
      effect: Effect.Effect<unknown, unknown>,
      what: string
    ): Effect.Effect<void, ContractViolation> =>
      Effect.flatMap(Effect.either(effect), (result) =>
        Either.isLeft(result) && result.left instanceof EventStore.EventIdConflict
          ? Effect.void
          : fail(
            `${what}: expected an EventIdConflict, got ${
              Either.isLeft(result) ? describeError(result.left) : `success ${show(result.right)}`
            }`
          ))
    yield* idConflict(
      store.append(s, [{ ...batch[0]!, data: { amount: 100 } }, batch[1]!], ExpectedVersion.NoStream),
      "the same id with other content"
    )
    const elsewhere = stream("elsewhere")
    yield* idConflict(store.append(elsewhere, batch, ExpectedVersion.Any), "the same ids in another stream")
    yield* ensureEqual(yield* ok(store.streamVersion(elsewhere), "streamVersion"), 0, "an id conflict writes nothing")
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, 3, "no duplicates were written")
  })
)

export const unicodeCheck = fixture(({ category, store, stream }) =>
  Effect.gen(function*() {
    const s = stream("unicode")
    const texts = [
      "héllo wörld",
      "日本語のテキスト",
      "emoji 😀🎉👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
      "RTL: مرحبا بالعالم שלום",
      "combining: e\u0301 a\u030a",
      "line separators \u2028 \u2029 and\nnew\r\nlines\ttabs",
      "quotes \" ' ` and backslashes \\ \\\\ \\u0041",
      "json-ish {\"a\": [1, 2]} and sql-ish '); drop table events; --",
      "astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𠜎𠜱"
    ]
    const data = { texts, "ключ 🔑": "значение", nested: { "a\"b": texts[2] } }
    const metadata = { correlationId: "相关-😀", note: texts[5] }
    yield* ok(store.append(s, [ev("Ünïcødé😀", data, metadata)], ExpectedVersion.NoStream), "append")
    const [event] = yield* readStream(store, s)
    yield* ensureEqual(event?.data, data, "unicode data round-trips through read")
    yield* ensureEqual(event?.type, "Ünïcødé😀", "a unicode event type round-trips")
    yield* ensureEqual(
      { correlationId: event?.metadata.correlationId, note: event?.metadata.note },
      metadata,
      "unicode metadata round-trips"
    )
    const all = yield* readAllOf(store, { filter: { categories: [category], types: ["Ünïcødé😀"] } })
    yield* ensureEqual(payloads(all), [data], "unicode data round-trips through readAll and a unicode type filter")
  })
)

export const largePayloadCheck = fixture(({ store, stream }) =>
  Effect.gen(function*() {
    const s = stream("large")
    const chunk = "0123456789abcdefghijklmnopqrstuvwxyzÀÉÎÕÜ€😀"
    const big = chunk.repeat(Math.ceil(1_100_000 / chunk.length))
    const data = { big, items: Array.from({ length: 2000 }, (_, i) => ({ i, label: `item ${i}` })) }
    yield* ok(store.append(s, [ev("Large", data)], ExpectedVersion.NoStream), "append of a payload over 1 MB")
    const [event] = yield* readStream(store, s)
    const read = event?.data as { readonly big?: unknown } | undefined
    yield* ensure(read?.big === big, `a payload of ${big.length} characters must round-trip unchanged`)
    yield* ensureEqual(event?.data, data, "a large payload round-trips")
    const many = yield* ok(store.append(s, numbered(1000), ExpectedVersion.Exact(1)), "append of 1000 events")
    yield* ensureEqual(many.version, 1001, "a batch of 1000 events")
    const events = yield* readStream(store, s, { from: 2 })
    yield* ensureEqual(payloads(events), Array.from({ length: 1000 }, (_, i) => ({ n: i + 1 })), "1000 events")
  })
)

export const hostileStreamIdsCheck = fixture(({ category, store, track }) =>
  Effect.gen(function*() {
    const hostile = [
      "it's",
      "double\"quote",
      "semi;colon",
      "back\\slash\\\\",
      "'; DROP TABLE events; --",
      "\" OR 1=1 --",
      "$1 ? %s %_ *",
      "percent%like_",
      "new\nline\ttab",
      "ünïcødé-😀-日本",
      "dash-inside-id",
      "space and  spaces ",
      "x".repeat(StreamId.maxLength - category.length - 1)
    ]
    for (const id of hostile) {
      const parsed = StreamId.make(category, id)
      if (Either.isLeft(parsed)) {
        yield* ensure(
          parsed.left instanceof StreamId.InvalidStreamId,
          `StreamId.make refused ${show(id)} without a typed InvalidStreamId`
        )
        continue
      }
      const s = track(parsed.right)
      const what = `stream id ${show(id.length > 40 ? `${id.slice(0, 40)}… (${id.length} chars)` : id)}`
      yield* ok(store.append(s, [ev("Hostile", { id })], ExpectedVersion.NoStream), `append to ${what}`)
      const events = yield* readStream(store, s)
      yield* ensureEqual(events.map((e) => [e.streamId, e.data]), [[s, { id }]], `${what} round-trips through read`)
      yield* ensureEqual(yield* ok(store.streamVersion(s), "streamVersion"), 1, `${what}: streamVersion`)
      const viaFilter = yield* readAllOf(store, { filter: { streamIds: [s] } })
      yield* ensureEqual(viaFilter.map((e) => e.streamId), [s], `${what}: readAll by stream id`)
    }
    const all = yield* readAllOf(store, { filter: { categories: [category] } })
    yield* ensureEqual(all.length, hostile.length, "every hostile stream id is in its category")
    const tooLong = StreamId.make(category, "y".repeat(StreamId.maxLength))
    yield* ensure(
      Either.isLeft(tooLong) && tooLong.left instanceof StreamId.InvalidStreamId,
      "a stream id over the maximum length is refused with InvalidStreamId"
    )
    const nothing = yield* readAllOf(store, {
      filter: { categories: ["'; DROP TABLE events; --", "x\" OR \"1\"=\"1"], types: ["' OR 1=1 --"] }
    })
    yield* ensureEqual(nothing, [], "hostile filter values match nothing and break nothing")
    for (const event of all) yield* ok(store.delete(event.streamId), `delete ${show(event.streamId.slice(0, 40))}`)
    yield* ensureEqual(
      yield* readAllOf(store, { filter: { categories: [category] } }),
      [],
      "hostile stream ids can be deleted"
    )
  })
)
