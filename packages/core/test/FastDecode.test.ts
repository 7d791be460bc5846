/**
 * The fast event decoder (src/internal/fastDecode.ts) must give exactly what the Schema decoder gives for
 * `{ ...data, _tag: type }` whenever it answers, and leave everything else to it. Checked on generated valid events,
 * on mutations of them (missing, extra, mistyped, `_tag` and `__proto__` properties), and through the codec (values
 * and errors the same as the plain Schema decoder's).
 */
import { EventStore, StreamId } from "@effect-eventsourcing/core"
import { assert, describe, it } from "@effect/vitest"
import { Arbitrary, Either, FastCheck, ParseResult, Schema } from "effect"
import { codec } from "../src/internal/codec.js"
import * as FastDecode from "../src/internal/fastDecode.js"
import { Wallet } from "./fixtures.js"

enum Color {
  Red = "red",
  Blue = 2
}

const Flat = Schema.TaggedStruct("Flat", { amount: Schema.Number, note: Schema.String })

const Rich = Schema.TaggedStruct("Rich", {
  count: Schema.Int.pipe(Schema.positive()),
  name: Schema.NonEmptyString,
  maybe: Schema.optional(Schema.String),
  nullable: Schema.NullOr(Schema.Number),
  kind: Schema.Literal("a", "b", 3),
  color: Schema.Enums(Color),
  tags: Schema.Array(Schema.String),
  nested: Schema.Struct({ x: Schema.Number, y: Schema.optional(Schema.Boolean) }),
  anything: Schema.Unknown,
  parsed: Schema.NumberFromString,
  when: Schema.Date
})

class Opened extends Schema.TaggedClass<Opened>()("Opened", { owner: Schema.String, at: Schema.DateFromNumber }) {}
class Closed extends Schema.TaggedClass<Closed>()("Closed", { reason: Schema.optional(Schema.String) }) {}
class Defaulted extends Schema.TaggedClass<Defaulted>()("Defaulted", {
  currency: Schema.optionalWith(Schema.String, { default: () => "EUR" })
}) {}

// a renamed event decoding into a class (upcasting)
const Renamed = Schema.transform(
  Schema.TaggedStruct("Renamed", { who: Schema.String }),
  Schema.typeSchema(Opened),
  {
    strict: true,
    decode: (old) => new Opened({ owner: old.who, at: new Date(0) }),
    encode: (opened) => ({ _tag: "Renamed" as const, who: opened.owner })
  }
)

const Filtered = Schema.TaggedStruct("Filtered", { low: Schema.Number, high: Schema.Number }).pipe(
  Schema.filter((v) => v.low <= v.high)
)

const schemas: ReadonlyArray<readonly [string, Schema.Schema<unknown, { readonly _tag: string }>]> = [
  ["flat struct", Flat],
  ["rich struct", Rich],
  ["union of structs", Schema.Union(Flat, Rich, Filtered)],
  ["classes", Schema.Union(Opened, Closed, Defaulted, Renamed)],
  ["a lone class", Opened],
  ["filtered struct", Filtered]
] as ReadonlyArray<readonly [string, Schema.Schema<unknown, { readonly _tag: string }>]>

/** the decoder as the codec had it: the Schema decoder on the spread */
const slowDecode = (schema: Schema.Schema<unknown, { readonly _tag: string }>) => {
  const decode = Schema.decodeUnknownEither(schema)
  return (data: object, type: string) => decode({ ...data, _tag: type })
}

/** deep equality that also compares key order and prototypes */
const same = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a === "number" && typeof b === "number") return Number.isNaN(a) && Number.isNaN(b)
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  if (a instanceof Date && b instanceof Date) {
    return a.getTime() === b.getTime() || (isNaN(a.getTime()) && isNaN(b.getTime()))
  }
  const ka = Reflect.ownKeys(a)
  const kb = Reflect.ownKeys(b)
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false
  return ka.every((k) => same((a as Record<PropertyKey, unknown>)[k], (b as Record<PropertyKey, unknown>)[k]))
}

const jsonValue = FastCheck.jsonValue({ maxDepth: 2 })

/** a valid encoded event (as stored: `data` without `_tag`), then maybe mutated */
const eventOf = (schema: Schema.Schema<unknown, { readonly _tag: string }>) =>
  FastCheck.tuple(
    Arbitrary.make(schema).map((value) => Schema.encodeSync(schema)(value)),
    FastCheck.array(
      FastCheck.oneof(
        FastCheck.record({ op: FastCheck.constant("delete" as const), key: FastCheck.nat(20) }),
        FastCheck.record({ op: FastCheck.constant("set" as const), key: FastCheck.nat(20), value: jsonValue }),
        FastCheck.record({ op: FastCheck.constant("extra" as const), key: FastCheck.string(), value: jsonValue }),
        FastCheck.record({
          op: FastCheck.constant("tag" as const),
          value: FastCheck.oneof(FastCheck.string(), jsonValue)
        }),
        FastCheck.record({ op: FastCheck.constant("proto" as const), value: jsonValue }),
        FastCheck.record({ op: FastCheck.constant("type" as const), value: FastCheck.string() })
      ),
      { maxLength: 2 }
    )
  ).map(([encoded, mutations]) => {
    // through JSON, as a store hands data back (dates as numbers / strings stay as they are)
    const { _tag, ...rest } = encoded as { readonly _tag: string }
    const data: Record<string, unknown> = JSON.parse(JSON.stringify(rest))
    let type = _tag
    for (const m of mutations) {
      const keys = Object.keys(data)
      switch (m.op) {
        case "delete":
          if (keys.length > 0) delete data[keys[m.key % keys.length]!]
          break
        case "set":
          if (keys.length > 0) data[keys[m.key % keys.length]!] = m.value
          break
        case "extra":
          if (m.key !== "__proto__") data[m.key] = m.value
          break
        case "tag":
          data._tag = m.value
          break
        case "proto":
          Object.assign(data, JSON.parse(`{"__proto__": ${JSON.stringify(m.value)}}`))
          break
        case "type":
          type = m.value
          break
      }
    }
    return { data, type, mutated: mutations.length > 0 }
  })

describe("fastDecode", () => {
  for (const [name, schema] of schemas) {
    it(`${name}: whenever the fast path answers, it is the Schema decoder's value`, () => {
      const fast = FastDecode.compile(schema.ast)
      assert(fast !== undefined, "the fast path handles this schema")
      const slow = slowDecode(schema)
      let answered = 0
      let valid = 0
      FastCheck.assert(
        FastCheck.property(eventOf(schema), ({ data, mutated, type }) => {
          const before = JSON.stringify(data)
          const expected = slow(data, type)
          const got = fast(data, type)
          assert.strictEqual(JSON.stringify(data), before, "the input is not modified")
          if (!mutated) valid++
          if (got === FastDecode.Fail) return
          answered++
          assert(Either.isRight(expected), "the fast path answered where the Schema decoder fails")
          assert(same(got, expected.right), "different value, key order or prototype")
        }),
        { numRuns: 400 }
      )
      assert(answered > valid / 2, `the fast path answered for valid events (${answered} of ${valid})`)
    })
  }

  it("valid events of a supported shape take the fast path", () => {
    const fast = FastDecode.compile(Flat.ast)!
    assert.deepStrictEqual(fast({ amount: 1, note: "n", extra: true }, "Flat"), { _tag: "Flat", amount: 1, note: "n" })
    assert.strictEqual(fast({ amount: "1", note: "n" }, "Flat"), FastDecode.Fail)
    const union = FastDecode.compile(Schema.Union(Opened, Closed).ast)!
    const opened = union({ owner: "o", at: 5 }, "Opened")
    assert(opened instanceof Opened)
    assert.strictEqual(opened.at.getTime(), 5)
    assert(union({}, "Closed") instanceof Closed)
    assert.strictEqual(union({ owner: "o", at: 5 }, "Other"), FastDecode.Fail)
  })

  it("shapes it does not know are left to the Schema decoder", () => {
    // a property signature transformation (default value)
    assert.strictEqual(FastDecode.compile(Defaulted.ast), undefined)
    // index signatures, recursion
    assert.strictEqual(
      FastDecode.compile(
        Schema.Struct({ _tag: Schema.Literal("R") }, Schema.Record({ key: Schema.String, value: Schema.Number })).ast
      ),
      undefined
    )
    interface Tree {
      readonly _tag: "Tree"
      readonly children: ReadonlyArray<Tree>
    }
    const Tree: Schema.Schema<Tree> = Schema.Struct({
      _tag: Schema.Literal("Tree"),
      children: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree))
    })
    assert.strictEqual(FastDecode.compile(Tree.ast), undefined)
    // a union member without a `_tag` literal could decode any type
    assert.strictEqual(FastDecode.compile(Schema.Union(Flat, Schema.Struct({ _tag: Schema.String })).ast), undefined)
    // two members with the same tag: that type is left to the Schema decoder (which tries them in order)
    const twice = FastDecode.compile(
      Schema.Union(Flat, Schema.TaggedStruct("Flat", { other: Schema.String }), Rich).ast
    )!
    assert.strictEqual(twice({ amount: 1, note: "n" }, "Flat"), FastDecode.Fail)
  })

  it("withTag builds the same object as the spread", () => {
    const data = JSON.parse(`{"a": 1, "_tag": "x", "__proto__": {"p": 1}, "b": [2]}`) as object
    const spread = { ...data, _tag: "T" }
    assert(same(FastDecode.withTag(data, "T"), spread))
    assert(same(FastDecode.withTag({ a: 1, b: { c: 2 } }, "T"), { a: 1, b: { c: 2 }, _tag: "T" }))
    assert.strictEqual(Object.getPrototypeOf(FastDecode.withTag(data, "T")), Object.prototype)
  })

  it("the codec decodes exactly as the Schema decoder did: values, and errors with stream, version and type", () => {
    const { decode } = codec(Wallet)
    const slow = slowDecode(Wallet.events as unknown as Schema.Schema<unknown, { readonly _tag: string }>)
    const streamId = StreamId.unsafeMake("wallet", "1")
    const cases: ReadonlyArray<readonly [string, unknown]> = [
      ["Opened", { owner: "A" }],
      ["Opened", { owner: 1 }],
      ["Deposited", { amount: 10, extra: "dropped" }],
      ["Deposited", { amount: -1 }],
      ["Deposited", { amount: 1.5 }],
      ["Withdrawn", {}],
      ["Unknown", { amount: 1 }],
      ["Deposited", JSON.parse(`{"amount": 3, "__proto__": {"amount": 4}}`)]
    ]
    for (const [type, data] of cases) {
      const recorded: EventStore.RecordedEvent = {
        id: "00000000-0000-0000-0000-000000000000",
        streamId,
        version: 7,
        position: 9,
        type,
        data,
        metadata: {},
        recordedAt: undefined as never
      }
      const got = decode(recorded)
      const expected = slow(data as object, type)
      if (Either.isRight(expected)) {
        assert(Either.isRight(got), `${type}: ${JSON.stringify(data)}`)
        assert(same(got.right, expected.right))
      } else {
        assert(Either.isLeft(got), `${type}: ${JSON.stringify(data)}`)
        assert(got.left instanceof EventStore.EventDecodeError)
        assert.strictEqual(got.left.streamId, streamId)
        assert.strictEqual(got.left.version, 7)
        assert.strictEqual(got.left.type, type)
        assert.strictEqual(
          ParseResult.TreeFormatter.formatErrorSync(got.left.cause as ParseResult.ParseError),
          ParseResult.TreeFormatter.formatErrorSync(expected.left)
        )
      }
    }
  })
})
