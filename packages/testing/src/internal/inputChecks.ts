/**
 * The bad-input checks of `EventStoreContract`: every store gives the same typed answer to the same invalid input
 * (`InvalidStreamId`, `InvalidArgument`), writes nothing, and never hangs or dies; event ids compare
 * case-insensitively; an `EventIdConflict` for a batch mixing stored and new events names the stored id.
 *
 * `EventStoreContract` registers them (see `make`); the helpers it shares come in as `Tools`, so that this module
 * needs nothing of it at run time.
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import type { ContractViolation } from "./contract.js"
import { show } from "./values.js"

/** @internal */
export interface Tools {
  readonly violation: (
    description: string,
    details?: { readonly expected?: unknown; readonly actual?: unknown }
  ) => ContractViolation
  /** fails with a violation when `effect` takes longer than the caller's patience */
  readonly withPatience: <A, R>(
    effect: Effect.Effect<A, ContractViolation, R>,
    what: string
  ) => Effect.Effect<A, ContractViolation, R>
}

type InputCheck = Effect.Effect<void, ContractViolation, EventStore.EventStore>

/** @internal */
export const titles = {
  invalidStreamIds:
    "stream ids without '-', with NUL or lone surrogates, or over StreamId.maxLength UTF-8 bytes: InvalidStreamId",
  invalidEvents:
    "empty or over-long types, non-uuid ids, non-JSON data or metadata (NUL, lone surrogates, keys included): " +
    "InvalidArgument, nothing written",
  invalidNumbers:
    "NaN, Infinity, fractions and negatives as from / to / limit or Exact version: InvalidArgument, never a hang",
  eventIdCase: "event ids compare case-insensitively: a lower-cased re-send of an upper-case id replays",
  eventIdConflictNamesStoredId: "an append mixing stored and new event ids: the EventIdConflict names the stored id"
} as const

let counter = 0

const uuid = (): string => globalThis.crypto.randomUUID()

/** @internal */
export const make = ({ violation, withPatience }: Tools): { readonly [K in keyof typeof titles]: InputCheck } => {
  const fail = (description: string, details?: { readonly expected?: unknown; readonly actual?: unknown }) =>
    Effect.fail(violation(description, details))

  const ensure = (condition: boolean, description: string): Effect.Effect<void, ContractViolation> =>
    condition ? Effect.void : fail(description)

  const describe = (u: unknown): string =>
    typeof u === "object" && u !== null && "_tag" in u && u instanceof Error
      ? `${String(u._tag)}: ${u.message}`
      : show(u)

  const ok = <A, E>(effect: Effect.Effect<A, E>, what: string): Effect.Effect<A, ContractViolation> =>
    withPatience(
      Effect.mapError(effect, (error) => violation(`${what} failed: ${describe(error)}`, { actual: error })),
      what
    )

  /** the effect must fail with the given tag (and, for InvalidArgument, the method) within the caller's patience */
  const refused = <A, E>(
    effect: Effect.Effect<A, E>,
    tag: "InvalidArgument" | "InvalidStreamId",
    what: string,
    method?: string
  ): Effect.Effect<void, ContractViolation> =>
    withPatience(
      Effect.flatMap(Effect.either(Effect.catchAllDefect(effect, (defect) => Effect.fail({ defect }))), (result) => {
        if (Either.isRight(result)) {
          return fail(`${what}: expected ${tag}, but it succeeded with ${show(result.right)}`, {
            expected: tag,
            actual: result.right
          })
        }
        const error = result.left as unknown
        if (typeof error === "object" && error !== null && "defect" in error) {
          return fail(`${what}: expected ${tag}, got a defect: ${describe(error.defect)}`, {
            expected: tag,
            actual: error
          })
        }
        const actualTag = typeof error === "object" && error !== null && "_tag" in error ? error._tag : undefined
        if (actualTag !== tag) {
          return fail(`${what}: expected ${tag}, got ${describe(error)}`, { expected: tag, actual: error })
        }
        if (method !== undefined && (error as EventStore.InvalidArgument).method !== method) {
          return fail(`${what}: InvalidArgument.method should be ${method}`, {
            expected: method,
            actual: (error as EventStore.InvalidArgument).method
          })
        }
        return Effect.void
      }),
      what
    )

  const drain = <A, E>(stream: Stream.Stream<A, E>) => Effect.map(Stream.runCollect(stream), Chunk.toReadonlyArray)

  /** a fresh category; the streams made through `stream` are deleted at the end */
  const fixture = (
    body: (fx: {
      readonly store: EventStore.EventStore.Service
      readonly category: string
      readonly stream: (id: string) => StreamId.StreamId
    }) => Effect.Effect<void, ContractViolation>
  ): InputCheck =>
    Effect.flatMap(EventStore.EventStore, (store) => {
      const category = `in${++counter}x${uuid().replaceAll("-", "").slice(0, 12)}`
      const created: Array<StreamId.StreamId> = []
      const stream = (id: string) => {
        const s = StreamId.unsafeMake(category, id)
        created.push(s)
        return s
      }
      return Effect.ensuring(
        body({ store, category, stream }),
        Effect.forEach(created, (s) => Effect.ignore(store.delete(s)), { discard: true })
      )
    })

  const nothingWritten = (
    store: EventStore.EventStore.Service,
    category: string,
    expected: number,
    what: string
  ) =>
    Effect.flatMap(
      ok(drain(store.readAll({ filter: { categories: [category] } })), "readAll"),
      (events) =>
        ensure(
          events.length === expected,
          `${what}: expected ${expected} events in the check's category, found ${events.length} ` +
            `(${show(events.map((e) => [e.streamId.slice(0, 40), e.type]))})`
        )
    )

  const event = (data: unknown = { n: 1 }): EventStore.EventData => ({ type: "Fine", data })

  // -------------------------------------------------------------------------------------------------------------

  const invalidStreamIds = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const good = stream("good")
      const bad: ReadonlyArray<readonly [string, string]> = [
        ["nodash", "a stream id without '-'"],
        [`-${category}`, "a stream id with an empty category"],
        [`${category}-`, "a stream id with an empty id"],
        ["", "an empty stream id"],
        [`${category}-x\u0000y`, "a stream id with a NUL character"],
        [`${category}\u0000-x`, "a stream id with a NUL character in the category"],
        [`${category}-\ud800`, "a stream id with a lone high surrogate"],
        [`${category}-a\udc00b`, "a stream id with a lone low surrogate"],
        [`${category}-${"€".repeat(340)}`, "a stream id of 340 three-byte characters (over 1,000 UTF-8 bytes)"],
        [`${category}-${"😀".repeat(260)}`, "a stream id of 260 four-byte characters (over 1,000 UTF-8 bytes)"]
      ]
      for (const [id, what] of bad) {
        const streamId = id as StreamId.StreamId
        yield* refused(store.append(streamId, [event()], ExpectedVersion.Any), "InvalidStreamId", `append to ${what}`)
        yield* refused(
          store.appendMany([
            { streamId: good, events: [event()], expected: ExpectedVersion.Any },
            { streamId, events: [event()], expected: ExpectedVersion.Any }
          ]),
          "InvalidStreamId",
          `appendMany with ${what}`
        )
        yield* refused(drain(store.read(streamId)), "InvalidStreamId", `read of ${what}`)
        yield* refused(store.readForFold(streamId), "InvalidStreamId", `readForFold of ${what}`)
      }
      yield* ensure(
        (yield* ok(store.streamVersion(good), "streamVersion")) === 0,
        "appendMany with an invalid stream id must write nothing to the other requests' streams"
      )
      yield* nothingWritten(store, category, 0, "refused stream ids")
      // at the limit: accepted, whatever the characters (within PostgreSQL's index row limit)
      const prefix = `${category}-`
      const room = StreamId.maxLength - prefix.length
      for (const [char, bytes] of [["€", 3], ["😀", 4], ["x", 1]] as const) {
        const id = `${char.repeat(Math.floor(room / bytes))}`
        const parsed = StreamId.make(category, id)
        if (Either.isLeft(parsed)) {
          return yield* fail(
            `StreamId.make refused a stream id of at most StreamId.maxLength bytes: ${parsed.left.reason}`
          )
        }
        const s = stream(id)
        yield* ok(
          store.append(s, [event({ char })], ExpectedVersion.NoStream),
          `append to a ${char} stream id at the limit`
        )
        const back = yield* ok(drain(store.read(s)), "read")
        yield* ensure(
          back.length === 1 && back[0]!.streamId === s,
          `a stream id of ${StreamId.maxLength} bytes at most (${char}) must round-trip`
        )
      }
      yield* nothingWritten(store, category, 3, "stream ids at the limit")
    })
  )

  const invalidEvents = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const s = stream("events")
      const other = stream("other")
      const cycle: Record<string, unknown> = { a: 1 }
      cycle.self = cycle
      const bad: ReadonlyArray<readonly [Partial<EventStore.EventData> & Record<string, unknown>, string]> = [
        [{ type: "", data: {} }, "an empty type"],
        [{ type: "€".repeat(334), data: {} }, "a type over 1,000 UTF-8 bytes"],
        [{ type: "A\u0000B", data: {} }, "a type with a NUL character"],
        [{ type: "A\ud800", data: {} }, "a type with a lone surrogate"],
        [{ type: 42 as never, data: {} }, "a type that is not a string"],
        [{ type: "Fine", id: "not-a-uuid", data: {} }, "an id that is not a uuid"],
        [{ type: "Fine", id: `{${uuid()}}`, data: {} }, "an id in braces"],
        [{ type: "Fine", data: { note: "a\u0000b" } }, "data with a NUL character"],
        [{ type: "Fine", data: { ["k\u0000"]: 1 } }, "data with a NUL character in a key"],
        [{ type: "Fine", data: { list: [{ deep: ["ok", "\ud83d"] }] } }, "data with a lone high surrogate, nested"],
        [{ type: "Fine", data: { ["\ude00"]: 1 } }, "data with a lone low surrogate in a key"],
        [{ type: "Fine", data: "\u0000" }, "data that is a NUL string"],
        [{ type: "Fine", data: { n: Number.NaN } }, "data with NaN"],
        [{ type: "Fine", data: { n: Number.POSITIVE_INFINITY } }, "data with Infinity"],
        [{ type: "Fine", data: { n: 10n } }, "data with a bigint"],
        [{ type: "Fine", data: undefined }, "undefined data"],
        [{ type: "Fine", data: { f: () => 1 } }, "data with a function"],
        [{ type: "Fine", data: cycle }, "data with a cycle"],
        [{ type: "Fine", data: {}, metadata: ["x"] as never }, "metadata that is an array"],
        [{ type: "Fine", data: {}, metadata: "x" as never }, "metadata that is a string"],
        [{ type: "Fine", data: {}, metadata: { correlationId: "c\u0000" } }, "metadata with a NUL character"],
        [{ type: "Fine", data: {}, metadata: { ["\ud800"]: "x" } }, "metadata with a lone surrogate in a key"]
      ]
      for (const [bad1, what] of bad) {
        const events = [event(), bad1 as EventStore.EventData]
        yield* refused(store.append(s, events, ExpectedVersion.Any), "InvalidArgument", `append of ${what}`, "append")
        yield* refused(
          store.appendMany([
            { streamId: other, events: [event()], expected: ExpectedVersion.Any },
            { streamId: s, events, expected: ExpectedVersion.Any }
          ]),
          "InvalidArgument",
          `appendMany of ${what}`,
          "appendMany"
        )
      }
      yield* refused(
        store.append(s, "not events" as never, ExpectedVersion.Any),
        "InvalidArgument",
        "append of events that are not an array",
        "append"
      )
      yield* nothingWritten(store, category, 0, "refused events")
      // the same values that are fine: astral characters, keys with quotes, undefined fields (left out), dates
      const valid: ReadonlyArray<EventStore.EventData> = [
        { id: uuid(), type: "Fine😀", data: { "😀": "𠜎", "a\"b": [null, true, 1.5, -0.25], skipped: undefined } },
        { id: uuid(), type: "Fine", data: { at: new Date(0) }, metadata: { correlationId: "c-😀" } }
      ]
      const first = yield* ok(
        store.append(s, valid, ExpectedVersion.NoStream),
        "append of valid unicode data, undefined fields and a Date"
      )
      const again = yield* ok(store.append(s, valid, ExpectedVersion.NoStream), "re-sending that batch")
      yield* ensure(
        again.version === first.version && again.position === first.position,
        `re-sending a batch with undefined fields and a Date must replay ${show(first)}, got ${show(again)}`
      )
      const back = yield* ok(drain(store.read(s)), "read")
      yield* ensure(
        back.length === 2 && !("skipped" in (back[0]!.data as object)) &&
          (back[1]!.data as { at?: unknown }).at === "1970-01-01T00:00:00.000Z",
        `undefined fields are left out and a Date is stored as its JSON form, got ${show(back.map((e) => e.data))}`
      )
    })
  )

  const invalidNumbers = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const s = stream("numbers")
      const fresh = stream("fresh")
      yield* ok(store.append(s, [event(), event(), event()], ExpectedVersion.NoStream), "append")
      const numbers = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5, -1]
      for (const n of numbers) {
        for (const key of ["from", "to", "limit"] as const) {
          yield* refused(drain(store.read(s, { [key]: n })), "InvalidArgument", `read({ ${key}: ${n} })`, "read")
        }
        for (const key of ["from", "to", "limit"] as const) {
          yield* refused(
            store.readForFold(s, { [key]: n }),
            "InvalidArgument",
            `readForFold({ ${key}: ${n} })`,
            "readForFold"
          )
        }
        for (const key of ["from", "limit"] as const) {
          yield* refused(
            drain(store.readAll({ [key]: n, filter: { categories: [category] } })),
            "InvalidArgument",
            `readAll({ ${key}: ${n} })`,
            "readAll"
          )
        }
        yield* refused(
          drain(Stream.take(store.subscribe({ from: n, filter: { categories: [category] } }), 1)),
          "InvalidArgument",
          `subscribe({ from: ${n} })`,
          "subscribe"
        )
        const expected = ExpectedVersion.Exact(n)
        for (const target of [s, fresh]) {
          yield* refused(
            store.append(target, [event()], expected),
            "InvalidArgument",
            `append with Exact(${n}) (not a ConcurrencyConflict)`,
            "append"
          )
        }
        yield* refused(
          store.appendMany([
            { streamId: fresh, events: [event()], expected: ExpectedVersion.NoStream },
            { streamId: s, events: [event()], expected }
          ]),
          "InvalidArgument",
          `appendMany with Exact(${n})`,
          "appendMany"
        )
      }
      yield* refused(
        store.append(s, [event()], { _tag: "Sometimes" } as never),
        "InvalidArgument",
        "append with an unknown ExpectedVersion",
        "append"
      )
      yield* refused(
        drain(store.read(s, { direction: "sideways" as never })),
        "InvalidArgument",
        "read({ direction: \"sideways\" })",
        "read"
      )
      yield* nothingWritten(store, category, 3, "refused numbers")
      // the edges that are valid
      const zero = yield* ok(drain(store.read(s, { from: 0, limit: 0 })), "read({ from: 0, limit: 0 })")
      yield* ensure(zero.length === 0, "read({ limit: 0 }) reads nothing")
      const all = yield* ok(drain(store.read(s, { from: 0 })), "read({ from: 0 })")
      yield* ensure(all.length === 3, "read({ from: 0 }) reads the whole stream")
      const global = yield* ok(
        drain(store.readAll({ from: 0, limit: 2, filter: { categories: [category] } })),
        "readAll({ from: 0, limit: 2 })"
      )
      yield* ensure(global.length === 2, "readAll({ from: 0, limit: 2 }) reads two events")
    })
  )

  const eventIdCase = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const s = stream("case")
      const upper = uuid().toUpperCase()
      const lower = upper.toLowerCase()
      const first = yield* ok(
        store.append(s, [{ id: upper, type: "Cased", data: { n: 1 } }], ExpectedVersion.NoStream),
        "append with an upper-case id"
      )
      const [recorded] = yield* ok(drain(store.read(s)), "read")
      yield* ensure(
        recorded?.id === lower,
        `an upper-case event id is stored in lower case (as a uuid): expected ${lower}, got ${show(recorded?.id)}`
      )
      for (const [id, what] of [[lower, "lower-cased"], [upper, "upper-case"]] as const) {
        const again = yield* ok(
          store.append(s, [{ id, type: "Cased", data: { n: 1 } }], ExpectedVersion.NoStream),
          `re-sending the batch with the ${what} id`
        )
        yield* ensure(
          again.version === first.version && again.position === first.position,
          `re-sending with the ${what} id must replay the original result ${show(first)}, got ${show(again)}`
        )
      }
      const mixedCase = lower.slice(0, 9) + upper.slice(9)
      const elsewhere = stream("elsewhere")
      const conflict = yield* Effect.either(
        store.append(elsewhere, [{ id: mixedCase, type: "Cased", data: { n: 1 } }], ExpectedVersion.Any)
      )
      yield* ensure(
        Either.isLeft(conflict) && conflict.left._tag === "EventIdConflict",
        `the same id in other case in another stream must be an EventIdConflict, got ${
          Either.isLeft(conflict) ? describe(conflict.left) : "success"
        }`
      )
      yield* nothingWritten(store, category, 1, "re-sends in other case")
    })
  )

  const eventIdConflictNamesStoredId = fixture(({ category, store, stream }) =>
    Effect.gen(function*() {
      const s = stream("named")
      const a = uuid()
      const b = uuid()
      yield* ok(
        store.append(
          s,
          [{ id: a, type: "Known", data: { n: 1 } }, { id: b, type: "Known", data: { n: 2 } }],
          ExpectedVersion.NoStream
        ),
        "append"
      )
      const cases: ReadonlyArray<readonly [ReadonlyArray<EventStore.EventData>, string]> = [
        [
          [{ id: uuid(), type: "New", data: {} }, { id: a, type: "Known", data: { n: 1 } }],
          "a new id, then a stored one"
        ],
        [
          [{ type: "New", data: {} }, { id: a, type: "Known", data: { n: 1 } }],
          "an event without id, then a stored one"
        ],
        [
          [{ id: a, type: "Known", data: { n: 1 } }, { id: uuid(), type: "New", data: {} }],
          "a stored id, then a new one"
        ],
        [
          [{ id: a.toUpperCase(), type: "Known", data: { n: 1 } }, { type: "New", data: {} }],
          "a stored id in upper case"
        ]
      ]
      for (const [events, what] of cases) {
        const result = yield* Effect.either(store.append(s, events, ExpectedVersion.Any))
        if (Either.isRight(result) || result.left._tag !== "EventIdConflict") {
          return yield* fail(
            `${what}: expected an EventIdConflict, got ${
              Either.isRight(result) ? `success ${show(result.right)}` : describe(result.left)
            }`
          )
        }
        yield* ensure(
          result.left.eventId === a,
          `${what}: the EventIdConflict must name the stored id ${a}, named ${show(result.left.eventId)}`
        )
      }
      yield* nothingWritten(store, category, 2, "mixed batches")
    })
  )

  return { invalidStreamIds, invalidEvents, invalidNumbers, eventIdCase, eventIdConflictNamesStoredId }
}
