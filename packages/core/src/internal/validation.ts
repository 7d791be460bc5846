/**
 * The input rules of the `EventStore` port, applied once for every store by `EventStore.make` (and exposed to store
 * authors by `StoreKit`). Plain functions over plain data; they return a `Problem` (turned into the typed error by
 * the caller) instead of constructing errors, so that this module imports nothing at run time and `EventStore`,
 * `StreamId` and `StoreKit` can all use it.
 *
 * Hot path: an append of small events without ids allocates nothing here (the events array is handed back as it
 * came) and scans each string once or twice natively.
 */
import type * as EventStore from "../EventStore.js"
import type * as ExpectedVersion from "../ExpectedVersion.js"

/** @internal */
export interface ArgumentProblem {
  readonly _tag: "InvalidArgument"
  readonly argument: string
  readonly reason: string
}

/** @internal */
export type Problem =
  | { readonly _tag: "InvalidStreamId"; readonly streamId: string; readonly reason: string }
  | ArgumentProblem

/**
 * The longest stream id, in UTF-8 bytes. PostgreSQL keeps it in two btree indexes, `(stream_id, version)` and the
 * snapshots' primary key, whose entries may not exceed 2,704 bytes (a third of an 8 kB page, btree version 4):
 * 1,000 bytes plus the 8-byte version and the tuple header stays far below that, whatever the characters.
 *
 * @internal
 */
export const maxStreamIdBytes = 1000

/**
 * The longest event type, in UTF-8 bytes (the type is indexed as `(type, position)` in PostgreSQL, under the same
 * 2,704-byte limit as stream ids).
 *
 * @internal
 */
export const maxEventTypeBytes = 1000

/** @internal The length of a string in UTF-8 bytes (a lone surrogate counts 3, as its replacement character). */
export const utf8Length = (s: string): number => {
  let bytes = 0
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) bytes += 1
    else if (c < 0x800) bytes += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4
        i++
      } else {
        bytes += 3
      }
    } else {
      bytes += 3
    }
  }
  return bytes
}

const surrogate = /[\ud800-\udfff]/

const hex = (c: number) => `U+${c.toString(16).toUpperCase()}`

/**
 * Why a string cannot be stored as text or inside JSON by every store: a NUL character (PostgreSQL text and jsonb
 * refuse it) or a lone surrogate (no UTF-8 form: jsonb refuses it, text would silently turn it into U+FFFD).
 *
 * @internal
 */
export const textProblem = (s: string): string | undefined => {
  if (s.includes("\u0000")) return "contains a NUL character (U+0000)"
  if (!surrogate.test(s)) return undefined
  const n = s.length
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0xd800 || c > 0xdfff) continue
    if (c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++
        continue
      }
    }
    return `contains a lone surrogate (${hex(c)} at index ${i})`
  }
  return undefined
}

/** @internal Why a value is not a valid stream id (`"<category>-<id>"`), `undefined` when it is one. */
export const streamIdProblem = (s: unknown): string | undefined => {
  if (typeof s !== "string") return "not a string"
  const n = s.length
  if (n === 0) return "empty"
  // a string is never shorter in UTF-8 bytes than in UTF-16 units, and at most 3 times longer
  if (n > maxStreamIdBytes || (n * 3 > maxStreamIdBytes && utf8Length(s) > maxStreamIdBytes)) {
    return `longer than ${maxStreamIdBytes} bytes in UTF-8`
  }
  const text = textProblem(s)
  if (text !== undefined) return text
  const dash = s.indexOf("-")
  if (dash <= 0) return "expected \"<category>-<id>\""
  if (dash === n - 1) return "empty id"
  return undefined
}

/** @internal Why a value is not a valid event type. */
export const eventTypeProblem = (type: unknown): string | undefined => {
  if (typeof type !== "string") return "not a string"
  const n = type.length
  if (n === 0) return "empty"
  if (n > maxEventTypeBytes || (n * 3 > maxEventTypeBytes && utf8Length(type) > maxEventTypeBytes)) {
    return `longer than ${maxEventTypeBytes} bytes in UTF-8`
  }
  return textProblem(type)
}

const lowerUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const anyCaseUuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** @internal Whether a value is a uuid in its canonical text form (`8-4-4-4-12` hex digits, any case). */
export const isUuid = (u: unknown): u is string => typeof u === "string" && anyCaseUuid.test(u)

// -------------------------------------------------------------------------------------
// JSON
// -------------------------------------------------------------------------------------

interface Located {
  readonly path: string
  readonly what: string
}

/** the objects being walked (a module-level stack: a walk is synchronous, and pushing allocates nothing) */
const ancestors: Array<object> = []

const segment = (key: string | number): string =>
  typeof key === "number" ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`

const within = (key: string | number, inner: Located): Located => ({
  path: segment(key) + inner.path,
  what: inner.what
})

const leaf = (what: string): Located => ({ path: "", what })

const valueProblem = (value: unknown, key: string): Located | undefined => {
  switch (typeof value) {
    case "string": {
      const text = textProblem(value)
      return text === undefined ? undefined : leaf(`a string ${text}`)
    }
    case "number":
      return Number.isFinite(value) ? undefined : leaf(`${value} is not a JSON number`)
    case "boolean":
      return undefined
    case "object":
      return value === null ? undefined : objectProblem(value, key)
    case "bigint":
      return leaf("a bigint is not a JSON value")
    default:
      return leaf(`${typeof value === "undefined" ? "undefined" : `a ${typeof value}`} is not a JSON value`)
  }
}

const objectProblem = (value: object, key: string): Located | undefined => {
  if (ancestors.includes(value)) return leaf("a cycle is not a JSON value")
  const toJSON = (value as { readonly toJSON?: unknown }).toJSON
  if (typeof toJSON === "function") {
    // what JSON.stringify would write (a Date becomes its ISO string)
    ancestors.push(value)
    const problem = valueProblem(toJSON.call(value, key), key)
    ancestors.pop()
    return problem
  }
  ancestors.push(value)
  let problem: Located | undefined
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = valueProblem(value[i], String(i))
      if (inner !== undefined) {
        problem = within(i, inner)
        break
      }
    }
  } else {
    const record = value as Record<string, unknown>
    for (const k in record) {
      if (!Object.hasOwn(record, k)) continue
      const keyText = textProblem(k)
      if (keyText !== undefined) {
        problem = leaf(`the key ${JSON.stringify(k.slice(0, 40))} ${keyText}`)
        break
      }
      const v = record[k]
      // an undefined field is left out (as JSON.stringify does): it means "absent"
      if (v === undefined) continue
      const inner = valueProblem(v, k)
      if (inner !== undefined) {
        problem = within(k, inner)
        break
      }
    }
  }
  ancestors.pop()
  return problem
}

/**
 * Why a value cannot be stored as JSON by every store, `undefined` when it can: JSON values are null, booleans,
 * finite numbers, strings without NUL or lone surrogates (keys included), arrays and objects of them; fields whose
 * value is `undefined` are left out and `toJSON` is honoured, as `JSON.stringify` does.
 *
 * @internal
 */
export const jsonProblem = (value: unknown): string | undefined => {
  ancestors.length = 0
  let problem: Located | undefined
  try {
    problem = valueProblem(value, "")
  } catch (cause) {
    // a throwing getter or toJSON, or nesting deeper than the call stack
    problem = leaf(`cannot be read as JSON (${cause instanceof Error ? cause.message : String(cause)})`)
  }
  ancestors.length = 0
  if (problem === undefined) return undefined
  return problem.path === "" ? problem.what : `at ${problem.path}: ${problem.what}`
}

const metadataProblem = (metadata: unknown): string | undefined => {
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) return "not a JSON object"
  return jsonProblem(metadata)
}

// -------------------------------------------------------------------------------------
// the port's arguments
// -------------------------------------------------------------------------------------

const invalidArgument = (argument: string, reason: string): ArgumentProblem => ({
  _tag: "InvalidArgument",
  argument,
  reason
})

/** @internal Why an expected version is invalid (an `Exact` version must be a non-negative integer). */
export const expectedProblem = (expected: ExpectedVersion.ExpectedVersion): string | undefined => {
  if (typeof expected !== "object" || expected === null) return "not an ExpectedVersion"
  switch (expected._tag) {
    case "Any":
    case "NoStream":
    case "StreamExists":
      return undefined
    case "Exact":
      return Number.isSafeInteger(expected.version) && expected.version >= 0
        ? undefined
        : `Exact(${String(expected.version)}): the version must be a non-negative integer`
    default:
      return "not an ExpectedVersion"
  }
}

/**
 * Checks the events of one append and lower-cases the event ids (stores compare them case-insensitively, as
 * PostgreSQL compares uuids). Returns the events unchanged (the same array) when nothing needed lower-casing.
 *
 * @internal
 */
export const checkEvents = (
  events: ReadonlyArray<EventStore.EventData>,
  argument: string
): Problem | ReadonlyArray<EventStore.EventData> => {
  if (!Array.isArray(events)) return invalidArgument(argument, "not an array")
  let out: Array<EventStore.EventData> | undefined
  for (let i = 0; i < events.length; i++) {
    const event = events[i] as EventStore.EventData
    if (typeof event !== "object" || event === null) return invalidArgument(`${argument}[${i}]`, "not an object")
    const type = eventTypeProblem(event.type)
    if (type !== undefined) return invalidArgument(`${argument}[${i}].type`, type)
    const id = event.id
    if (id !== undefined) {
      if (typeof id !== "string" || !lowerUuid.test(id)) {
        if (!isUuid(id)) {
          return invalidArgument(
            `${argument}[${i}].id`,
            `not a uuid: ${JSON.stringify(String(id).slice(0, 100))}`
          )
        }
        out ??= events.slice()
        out[i] = { ...event, id: id.toLowerCase() }
      }
    }
    const data = jsonProblem(event.data)
    if (data !== undefined) return invalidArgument(`${argument}[${i}].data`, data)
    if (event.metadata !== undefined) {
      const metadata = metadataProblem(event.metadata)
      if (metadata !== undefined) return invalidArgument(`${argument}[${i}].metadata`, metadata)
    }
  }
  return out ?? events
}

/** @internal The arguments of `append`; the events as the store must see them, or the first problem. */
export const checkAppend = (
  streamId: string,
  events: ReadonlyArray<EventStore.EventData>,
  expected: ExpectedVersion.ExpectedVersion
): Problem | ReadonlyArray<EventStore.EventData> => {
  const stream = streamIdProblem(streamId)
  if (stream !== undefined) return { _tag: "InvalidStreamId", streamId: String(streamId), reason: stream }
  const version = expectedProblem(expected)
  if (version !== undefined) return invalidArgument("expected", version)
  return checkEvents(events, "events")
}

/** @internal The requests of `appendMany` as the store must see them, or the first problem. */
export const checkRequests = (
  requests: ReadonlyArray<EventStore.AppendRequest>
): Problem | ReadonlyArray<EventStore.AppendRequest> => {
  if (!Array.isArray(requests)) return invalidArgument("requests", "not an array")
  let out: Array<EventStore.AppendRequest> | undefined
  for (let i = 0; i < requests.length; i++) {
    const request = requests[i] as EventStore.AppendRequest
    if (typeof request !== "object" || request === null) return invalidArgument(`requests[${i}]`, "not an object")
    const stream = streamIdProblem(request.streamId)
    if (stream !== undefined) {
      return { _tag: "InvalidStreamId", streamId: String(request.streamId), reason: stream }
    }
    const version = expectedProblem(request.expected)
    if (version !== undefined) return invalidArgument(`requests[${i}].expected`, version)
    const events = checkEvents(request.events, `requests[${i}].events`)
    if (!Array.isArray(events)) return events as Problem
    if (events !== request.events) {
      out ??= requests.slice()
      out[i] = { ...request, events }
    }
  }
  return out ?? requests
}

const countProblem = (value: unknown): string | undefined =>
  value === undefined || (Number.isSafeInteger(value) && (value as number) >= 0)
    ? undefined
    : `${typeof value === "number" ? String(value) : typeof value}: must be a non-negative integer`

/** @internal The arguments of `read`. */
export const checkRead = (streamId: string, options: EventStore.ReadOptions | undefined): Problem | undefined => {
  const stream = streamIdProblem(streamId)
  if (stream !== undefined) return { _tag: "InvalidStreamId", streamId: String(streamId), reason: stream }
  if (options === undefined) return undefined
  const from = countProblem(options.from)
  if (from !== undefined) return invalidArgument("options.from", from)
  const to = countProblem(options.to)
  if (to !== undefined) return invalidArgument("options.to", to)
  const limit = countProblem(options.limit)
  if (limit !== undefined) return invalidArgument("options.limit", limit)
  const direction = options.direction
  if (direction !== undefined && direction !== "forward" && direction !== "backward") {
    return invalidArgument("options.direction", `${JSON.stringify(String(direction))}: must be forward or backward`)
  }
  return undefined
}

/** @internal The options of `readAll` and `subscribe` (`limit` only exists for `readAll`). */
export const checkGlobal = (
  options: { readonly from?: number | undefined; readonly limit?: number | undefined } | undefined
): ArgumentProblem | undefined => {
  if (options === undefined) return undefined
  const from = countProblem(options.from)
  if (from !== undefined) return invalidArgument("options.from", from)
  const limit = countProblem(options.limit)
  if (limit !== undefined) return invalidArgument("options.limit", limit)
  return undefined
}
