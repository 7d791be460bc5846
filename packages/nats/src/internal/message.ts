/**
 * The wire format shared by the relay and the source: subject tokens, header names and values, and the
 * RecordedEvent <-> message mapping.
 */
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as DateTime from "effect/DateTime"
import * as Either from "effect/Either"

/** Header names (the event id travels as `Nats-Msg-Id`, JetStream's de-duplication key). */
export const headerNames = {
  id: "Nats-Msg-Id",
  streamId: "Event-Stream-Id",
  type: "Event-Type",
  version: "Event-Version",
  position: "Event-Position",
  recordedAt: "Event-Recorded-At",
  metadata: "Event-Metadata"
} as const

const hex = (code: number): string => `%${code.toString(16).toUpperCase().padStart(2, "0")}`

/**
 * Letters, digits, `-` and `_` stay; every other character becomes `%` and two upper-case hex digits per UTF-8 byte
 * (URL percent-encoding with a smaller set of unreserved characters). The result is never empty for a non-empty
 * input, is pure ASCII and holds no `.`, `*`, `>`, whitespace or control character: a valid NATS subject token and
 * a valid header value. `decodeToken` reverses it.
 */
export const encodeToken = (value: string): string =>
  // encodeURIComponent leaves A-Z a-z 0-9 - _ . ! ~ * ' ( ) alone: escape the ones that are not ours
  encodeURIComponent(value).replace(/[.!~*'()]/g, (c) => hex(c.charCodeAt(0)))

/** The inverse of {@link encodeToken}; `undefined` for a malformed token. */
export const decodeToken = (token: string): string | undefined => {
  if (!/^(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+$/.test(token)) return undefined
  try {
    return decodeURIComponent(token)
  } catch {
    return undefined
  }
}

/** Why a subject prefix is not usable (`undefined` when it is): non-empty tokens, no wildcards, no whitespace. */
export const prefixProblem = (prefix: string): string | undefined => {
  if (prefix.length === 0) return "empty"
  for (const token of prefix.split(".")) {
    if (token.length === 0) return "empty token (leading, trailing or double '.')"
    if (token === "*" || token === ">" || /[*>]/.test(token)) return "wildcards ('*', '>') are not allowed"
    // eslint-disable-next-line no-control-regex
    if (/[\s\u0000-\u001f\u007f]/.test(token)) return "whitespace and control characters are not allowed"
  }
  return undefined
}

/** `<prefix>.<category>.<streamId>`, tokens encoded with {@link encodeToken}. */
export const subjectOf = (prefix: string, streamId: StreamId.StreamId): string =>
  `${prefix}.${encodeToken(StreamId.category(streamId))}.${encodeToken(streamId)}`

/** Escapes every non-ASCII UTF-16 unit of a JSON text as `\uXXXX` (still the same JSON value). */
const asciiJson = (value: unknown): string =>
  JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** The header values of an event (besides `Nats-Msg-Id`). */
export const headerValues = (event: EventStore.RecordedEvent): ReadonlyArray<readonly [string, string]> => [
  [headerNames.streamId, encodeToken(event.streamId)],
  [headerNames.type, encodeToken(event.type)],
  [headerNames.version, String(event.version)],
  [headerNames.position, String(event.position)],
  [headerNames.recordedAt, DateTime.formatIso(event.recordedAt)],
  [headerNames.metadata, asciiJson(event.metadata)]
]

/** The message body: the event's data as JSON (UTF-8). */
export const body = (event: EventStore.RecordedEvent): string => JSON.stringify(event.data)

/** The parts of a received message the decoder reads. */
export interface Received {
  readonly header: (name: string) => string | undefined
  readonly body: () => string
}

const positiveInteger = (text: string | undefined): number | undefined => {
  if (text === undefined || !/^[1-9][0-9]*$/.test(text)) return undefined
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : undefined
}

/** Rebuilds the RecordedEvent from a relayed message, or says what is wrong with it. */
export const decode = (message: Received): Either.Either<EventStore.RecordedEvent, string> => {
  const get = (name: string): Either.Either<string, string> => {
    const value = message.header(name)
    return value === undefined || value === "" ? Either.left(`header ${name} is missing`) : Either.right(value)
  }
  return Either.gen(function*() {
    const id = yield* get(headerNames.id)
    const encodedStreamId = yield* get(headerNames.streamId)
    const rawStreamId = decodeToken(encodedStreamId)
    if (rawStreamId === undefined) return yield* Either.left(`header ${headerNames.streamId} is not encoded`)
    const streamId = yield* Either.mapLeft(StreamId.parse(rawStreamId), (e) => e.message)
    const type = decodeToken(yield* get(headerNames.type))
    if (type === undefined) return yield* Either.left(`header ${headerNames.type} is not encoded`)
    const version = positiveInteger(message.header(headerNames.version))
    if (version === undefined) return yield* Either.left(`header ${headerNames.version} is not a positive integer`)
    const position = positiveInteger(message.header(headerNames.position))
    if (position === undefined) return yield* Either.left(`header ${headerNames.position} is not a positive integer`)
    const recordedAtText = yield* get(headerNames.recordedAt)
    const recordedAt = DateTime.make(recordedAtText)
    if (recordedAt._tag === "None" || !recordedAtText.endsWith("Z")) {
      return yield* Either.left(`header ${headerNames.recordedAt} is not an ISO-8601 UTC date`)
    }
    const metadata = yield* parseJson(yield* get(headerNames.metadata), `header ${headerNames.metadata}`)
    if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
      return yield* Either.left(`header ${headerNames.metadata} is not a JSON object`)
    }
    const data = yield* parseJson(message.body(), "body")
    const event: EventStore.RecordedEvent = {
      id,
      streamId,
      version,
      position,
      type,
      data,
      metadata: metadata as EventStore.EventMetadata,
      recordedAt: DateTime.toUtc(recordedAt.value)
    }
    return event
  })
}

const parseJson = (text: string, what: string): Either.Either<unknown, string> =>
  Either.try({ try: (): unknown => JSON.parse(text), catch: () => `${what} is not JSON` })

/** Does the subject pattern `pattern` (wildcards allowed) match every subject that `subject` matches? */
export const covers = (pattern: string, subject: string): boolean => {
  const p = pattern.split(".")
  const s = subject.split(".")
  for (let i = 0; i < p.length; i++) {
    const token = p[i]!
    if (token === ">") return i < s.length
    const other = s[i]
    if (other === undefined) return false
    if (token === "*") {
      if (other === ">") return false
      continue
    }
    if (token !== other) return false
  }
  return p.length === s.length
}
