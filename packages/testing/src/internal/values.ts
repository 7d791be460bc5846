import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"
import * as Equal from "effect/Equal"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"

/** @internal structural equality: Effect's `Equal` first, then same prototype and equal own enumerable fields */
export const equivalent = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Equal.isEqual(a) && Equal.isEqual(b) && Equal.equals(a, b)) return true
  if (a instanceof Date || b instanceof Date) {
    return a instanceof Date && b instanceof Date && Object.is(a.getTime(), b.getTime())
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => equivalent(x, b[i]))
  }
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  if (a instanceof Map && b instanceof Map) {
    if (a.size !== b.size) return false
    for (const [k, v] of a) {
      if (!b.has(k) || !equivalent(v, b.get(k))) return false
    }
    return true
  }
  if (a instanceof Set && b instanceof Set) {
    if (a.size !== b.size) return false
    for (const v of a) if (!b.has(v)) return false
    return true
  }
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  return ka.every((k) => Object.hasOwn(b, k) && equivalent(ra[k], rb[k]))
}

/** @internal a compact, deterministic, cycle-safe rendering of any value (for messages and mutation checks) */
export const show = (value: unknown): string => {
  const seen = new WeakSet<object>()
  const go = (v: unknown): string => {
    switch (typeof v) {
      case "string":
        return JSON.stringify(v)
      case "number":
        return Object.is(v, -0) ? "-0" : String(v)
      case "bigint":
        return `${v}n`
      case "boolean":
        return String(v)
      case "undefined":
        return "undefined"
      case "symbol":
        return v.toString()
      case "function":
        return `[function ${v.name}]`
    }
    if (v === null) return "null"
    const o = v as object
    if (seen.has(o)) return "[Circular]"
    seen.add(o)
    try {
      if (DateTime.isDateTime(o)) return `DateTime(${DateTime.formatIso(o)})`
      if (o instanceof Date) return `Date(${Number.isNaN(o.getTime()) ? "invalid" : o.toISOString()})`
      if (Array.isArray(o)) return `[${o.map(go).join(", ")}]`
      if (o instanceof Map) return `Map(${[...o].map(([k, x]) => `${go(k)} => ${go(x)}`).join(", ")})`
      if (o instanceof Set) return `Set(${[...o].map(go).join(", ")})`
      const record = o as Record<string, unknown>
      const keys = Object.keys(o)
      const tag = typeof record._tag === "string" ? record._tag : undefined
      const fields = keys.filter((k) => k !== "_tag").map((k) => `${JSON.stringify(k)}: ${go(record[k])}`)
      if (tag !== undefined) return fields.length === 0 ? tag : `${tag} { ${fields.join(", ")} }`
      const proto = Object.getPrototypeOf(o)
      const name = proto === null || proto === Object.prototype ? "" : `${proto.constructor?.name ?? ""} `
      return `${name}{ ${fields.join(", ")} }`.replace("{  }", "{}")
    } finally {
      seen.delete(o)
    }
  }
  return go(value)
}

/** @internal encodes with a Schema, falling back to the value itself when it does not encode */
export const encodeOr = <A, I>(schema: Schema.Schema<A, I> | undefined, value: A): unknown => {
  if (schema === undefined) return value
  const encoded = Schema.encodeEither(schema)(value)
  return Either.isRight(encoded) ? encoded.right : value
}

/** @internal the encoding error of a value, if any */
export const encodeProblem = <A, I>(schema: Schema.Schema<A, I>, value: A): string | undefined => {
  const encoded = Schema.encodeEither(schema)(value)
  return Either.isLeft(encoded) ? ParseResult.TreeFormatter.formatErrorSync(encoded.left) : undefined
}

/** @internal indents every line */
export const indent = (text: string, by = "  "): string =>
  text.split("\n").map((line) => line.length === 0 ? line : by + line).join("\n")

/** @internal one value per line, numbered */
export const list = (values: ReadonlyArray<unknown>, empty = "(none)"): string =>
  values.length === 0 ? indent(empty) : values.map((v, i) => indent(`#${i + 1} ${show(v)}`)).join("\n")

/** @internal a line diff of two lists: `  ` same, `- ` expected only, `+ ` actual only (LCS based) */
export const diffLists = (expected: ReadonlyArray<unknown>, actual: ReadonlyArray<unknown>): string => {
  const n = expected.length
  const m = actual.length
  const lcs: Array<Array<number>> = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = equivalent(expected[i], actual[j])
        ? lcs[i + 1]![j + 1]! + 1
        : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
    }
  }
  const lines: Array<string> = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && equivalent(expected[i], actual[j])) {
      lines.push(`  ${show(expected[i])}`)
      i++
      j++
    } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) {
      lines.push(`- ${show(expected[i])}`)
      i++
    } else {
      lines.push(`+ ${show(actual[j])}`)
      j++
    }
  }
  return lines.length === 0 ? "  (both empty)" : lines.join("\n")
}

/** @internal runs a function that may throw, keeping what it threw */
export const attempt = <A>(f: () => A): Either.Either<A, unknown> => Either.try({ try: f, catch: (cause) => cause })

/** @internal what a function threw, readably */
export const thrown = (cause: unknown): string =>
  cause instanceof Error ? `${cause.name}: ${cause.message}` : `thrown value ${show(cause)}`
