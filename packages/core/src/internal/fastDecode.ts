/**
 * A faster decoder for the common shapes of event Schemas, used before the Schema decoder and never instead of it.
 *
 * `compile(ast)` walks the event Schema's AST once and, when every node on the way is of a kind it knows, returns a
 * function that decodes `{ ...data, _tag: type }` without building that object and without the interpreter's
 * per-node bookkeeping. It mirrors what `ParseResult` does for those nodes, with the options the codec uses (none:
 * excess properties ignored, `exact` off, first error only, property order "none"):
 *
 * - string / number / boolean / bigint / symbol / object / undefined / unknown / any / void keywords, literals,
 *   enums: the value itself when it passes the same predicate;
 * - unions of those (a value that one member accepts comes out unchanged);
 * - refinements: the `from` result when the same filter returns no issue;
 * - structs (type literals without index signatures): a new object with the declared properties, in declared
 *   order, excess properties dropped; an optional property that is absent stays absent;
 * - arrays (`Schema.Array`): a new array of the decoded elements;
 * - transformations of kind "final" (e.g. `Schema.transform`, `Schema.Class` / `TaggedClass`) and declarations
 *   (the class side of a `Class`): the same decode functions, called the same way, when they answer synchronously;
 * - at the top, a union of members whose encoded side has a distinct `_tag` literal: the member of the event's type.
 *
 * Whenever the input is not what the fast path can prove it decodes to (any check fails, a required property is
 * absent, a transformation answers with an effect or an issue), it answers `Fail` and the caller runs the Schema
 * decoder, which produces the value or the error itself. The fast path never produces an error of its own, so a
 * success is the only thing it can contribute, and `test/FastDecode.test.ts` checks that it is always the same
 * value, with the same keys in the same order, as the Schema decoder's.
 *
 * Anything else (parse-option or decoding-fallback annotations, index signatures, property signature
 * transformations such as `optionalWith` defaults, suspended / recursive schemas, tuples with fixed elements,
 * template literals, a union member without a `_tag` literal) makes `compile` return `undefined` for the whole
 * Schema, or for that event type, and the Schema decoder is used as before.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as AST from "effect/SchemaAST"

/** @internal */
export const Fail: unique symbol = Symbol("@effect-eventsourcing/core/internal/fastDecode/Fail")

/** @internal */
export type Fail = typeof Fail

/** Decodes one value, or answers `Fail` (the Schema decoder then decides). */
type Node = (input: unknown) => unknown

interface Compiled {
  readonly run: Node
  /** the output is the input itself whenever it is not `Fail` */
  readonly identity: boolean
  /** for type literals: the same decode, reading `_tag` from `tag` and the other properties from `data` */
  readonly top?: ((data: object, tag: string) => unknown) | undefined
}

const hasOwn = Object.prototype.hasOwnProperty
const isEnumerable = Object.prototype.propertyIsEnumerable

const plain = (ast: AST.AST): boolean =>
  Option.isNone(AST.getParseOptionsAnnotation(ast)) && Option.isNone(AST.getDecodingFallbackAnnotation(ast))

const leaf = (test: (u: unknown) => boolean): Compiled => ({
  run: (u) => test(u) ? u : Fail,
  identity: true
})

const go = (ast: AST.AST, depth: number): Compiled | undefined => {
  if (depth > 50 || !plain(ast)) return undefined
  switch (ast._tag) {
    case "StringKeyword":
      return leaf((u) => typeof u === "string")
    case "NumberKeyword":
      return leaf((u) => typeof u === "number")
    case "BooleanKeyword":
      return leaf((u) => typeof u === "boolean")
    case "BigIntKeyword":
      return leaf((u) => typeof u === "bigint")
    case "SymbolKeyword":
      return leaf((u) => typeof u === "symbol")
    case "ObjectKeyword":
      return leaf((u) => (typeof u === "object" && u !== null) || typeof u === "function")
    case "UndefinedKeyword":
      return leaf((u) => u === undefined)
    case "UnknownKeyword":
    case "AnyKeyword":
    case "VoidKeyword":
      return leaf(() => true)
    case "Literal": {
      const literal = ast.literal
      return leaf((u) => u === literal)
    }
    case "Enums": {
      const values = ast.enums.map(([, value]) => value)
      return leaf((u) => values.some((value) => value === u))
    }
    case "Union": {
      // only unions of members that return their input: the first member that accepts gives the input back
      const members: Array<Node> = []
      for (const type of ast.types) {
        const member = go(type, depth + 1)
        if (member === undefined || !member.identity) return undefined
        members.push(member.run)
      }
      return leaf((u) => members.some((member) => member(u) !== Fail))
    }
    case "Refinement": {
      const from = go(ast.from, depth + 1)
      if (from === undefined) return undefined
      const refinement = ast
      const check = (out: unknown) =>
        out === Fail || Option.isSome(refinement.filter(out, AST.defaultParseOption, refinement)) ? Fail : out
      const top = from.top
      return {
        run: (u) => check(from.run(u)),
        identity: from.identity,
        top: top === undefined ? undefined : (data, tag) => check(top(data, tag))
      }
    }
    case "TypeLiteral":
      return typeLiteral(ast, depth)
    case "TupleType": {
      // `Schema.Array(item)` only
      if (ast.elements.length !== 0 || ast.rest.length !== 1) return undefined
      const item = go(ast.rest[0]!.type, depth + 1)
      if (item === undefined) return undefined
      const run = item.run
      return {
        run: (u) => {
          if (!Array.isArray(u)) return Fail
          const length = u.length
          const out = new Array<unknown>(length)
          for (let i = 0; i < length; i++) {
            const value = run(u[i])
            if (value === Fail) return Fail
            out[i] = value
          }
          return out
        },
        identity: false
      }
    }
    case "Declaration": {
      const decode = ast.decodeUnknown(...ast.typeParameters)
      const declaration = ast
      return {
        run: (u) => {
          const result = decode(u, AST.defaultParseOption, declaration)
          return Either.isEither(result) && Either.isRight(result) ? result.right : Fail
        },
        identity: false
      }
    }
    case "Transformation": {
      if (ast.transformation._tag === "TypeLiteralTransformation") return undefined
      const from = go(ast.from, depth + 1)
      const to = go(ast.to, depth + 1)
      if (from === undefined || to === undefined) return undefined
      const transformation = ast.transformation
      const self = ast
      const step = (i: unknown, a: unknown): unknown => {
        if (a === Fail) return Fail
        if (transformation._tag === "ComposeTransformation") return to.run(a)
        const result = transformation.decode(a, AST.defaultParseOption, self, i)
        return Either.isEither(result) && Either.isRight(result) ? to.run(result.right) : Fail
      }
      const top = from.top
      return {
        run: (u) => step(u, from.run(u)),
        identity: false,
        // `i` (the encoded input) is only passed through to the transformation; it needs the whole input object
        top: top === undefined ? undefined : (data, tag) => {
          const a = top(data, tag)
          return a === Fail ? Fail : step(withTag(data, tag), a)
        }
      }
    }
    default:
      // Suspend, TemplateLiteral, UniqueSymbol, NeverKeyword: the Schema decoder
      return undefined
  }
}

/**
 * `{ ...data, _tag: tag }`: the object the Schema decoder decodes for an event (the same own properties, in the same
 * order, with the same values). Built with `Object.assign`, several times cheaper here than that spread, except when
 * `data` has an own `__proto__` property (JSON can make one), which assigning would turn into a prototype.
 *
 * @internal
 */
export const withTag = (data: object, tag: string): Record<string, unknown> => {
  if (hasOwn.call(data, "__proto__")) return { ...data, _tag: tag }
  const out: Record<string, unknown> = Object.assign<Record<string, unknown>, object>({}, data)
  out._tag = tag
  return out
}

const typeLiteral = (ast: AST.TypeLiteral, depth: number): Compiled | undefined => {
  if (ast.indexSignatures.length > 0) return undefined
  if (ast.propertySignatures.length === 0) {
    // the Schema decoder checks only that the input is not null / undefined, and returns it
    return { run: (u) => u === null || u === undefined ? Fail : u, identity: true }
  }
  const names: Array<string> = []
  const optional: Array<boolean> = []
  const nodes: Array<Node> = []
  for (const ps of ast.propertySignatures) {
    if (typeof ps.name !== "string" || ps.name === "__proto__") return undefined
    const node = go(ps.type, depth + 1)
    if (node === undefined) return undefined
    names.push(ps.name)
    optional.push(ps.isOptional)
    nodes.push(node.run)
  }
  const count = names.length
  return {
    run: (u) => {
      if (typeof u !== "object" || u === null || Array.isArray(u)) return Fail
      const input = u as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (let i = 0; i < count; i++) {
        const name = names[i]!
        if (!hasOwn.call(input, name)) {
          if (optional[i]) continue
          return Fail
        }
        const value = nodes[i]!(input[name])
        if (value === Fail) return Fail
        out[name] = value
      }
      return out
    },
    identity: false,
    // `{ ...data, _tag: tag }` has `_tag` = tag and, otherwise, exactly the own enumerable properties of `data`
    top: (data, tag) => {
      const input = data as Record<string, unknown>
      const out: Record<string, unknown> = {}
      for (let i = 0; i < count; i++) {
        const name = names[i]!
        let value: unknown
        if (name === "_tag") {
          value = tag
        } else if (isEnumerable.call(input, name)) {
          value = input[name]
        } else if (optional[i]) {
          continue
        } else {
          return Fail
        }
        const decoded = nodes[i]!(value)
        if (decoded === Fail) return Fail
        out[name] = decoded
      }
      return out
    }
  }
}

/** The `_tag` literal of a member's encoded side, when it has one. */
const encodedTag = (ast: AST.AST): string | undefined => {
  switch (ast._tag) {
    case "TypeLiteral": {
      const ps = ast.propertySignatures.find((ps) => ps.name === "_tag")
      return ps !== undefined && !ps.isOptional && AST.isLiteral(ps.type) && typeof ps.type.literal === "string"
        ? ps.type.literal
        : undefined
    }
    case "Refinement":
    case "Transformation":
      return encodedTag(ast.from)
    default:
      return undefined
  }
}

/**
 * The fast decoder of an event Schema: `(data, type) => decoded | Fail`, or `undefined` when the Schema has a shape
 * the fast path does not handle.
 *
 * @internal
 */
export const compile = (ast: AST.AST): ((data: object, type: string) => unknown) | undefined => {
  if (ast._tag === "Union" && plain(ast)) {
    // every member must have its own `_tag` literal: then only the member of the event's type can succeed, and its
    // result is the union's result (a member without one could accept any type)
    const byTag = new Map<string, Array<AST.AST>>()
    for (const member of ast.types) {
      const tag = encodedTag(member)
      if (tag === undefined) return undefined
      byTag.set(tag, [...(byTag.get(tag) ?? []), member])
    }
    const fast = new Map<string, (data: object, tag: string) => unknown>()
    for (const [tag, members] of byTag) {
      if (members.length !== 1) continue
      const top = go(members[0]!, 0)?.top
      if (top !== undefined) fast.set(tag, top)
    }
    if (fast.size === 0) return undefined
    return (data, type) => {
      const top = fast.get(type)
      return top === undefined ? Fail : top(data, type)
    }
  }
  return go(ast, 0)?.top
}
