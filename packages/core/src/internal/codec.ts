import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Aggregate from "../Aggregate.js"
import * as EventStore from "../EventStore.js"
import type { StreamId } from "../StreamId.js"
import * as FastDecode from "./fastDecode.js"

/** @internal */
export interface Codec<Event> {
  readonly encode: (
    streamId: StreamId,
    event: Event,
    metadata: EventStore.EventMetadata | undefined
  ) => Either.Either<EventStore.EventData, Aggregate.EventEncodeError>
  readonly decode: (event: EventStore.RecordedEvent) => Either.Either<Event, Aggregate.EventDecodeError>
  /** `decode` of an event read for a fold (`EventStore.readForFold`), which does not carry its stream id */
  readonly decodeIn: (
    streamId: StreamId,
    event: EventStore.FoldEvent
  ) => Either.Either<Event, Aggregate.EventDecodeError>
}

const cache = new WeakMap<object, Codec<unknown>>()

const typeOf = (event: unknown): string =>
  typeof event === "object" && event !== null && "_tag" in event && typeof event._tag === "string"
    ? event._tag
    : typeof event

/** @internal */
export const codec = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>
): Codec<Event> => {
  const cached = cache.get(aggregate)
  if (cached !== undefined) return cached as Codec<Event>
  const encode = Schema.encodeEither(aggregate.events)
  const decode = Schema.decodeUnknownEither(aggregate.events)
  // the same results as `decode`, cheaper, for the shapes it knows (see fastDecode.ts); `Fail` falls back to `decode`
  const fast = FastDecode.compile(aggregate.events.ast)
  const decodeIn = (
    streamId: StreamId,
    recorded: EventStore.FoldEvent
  ): Either.Either<Event, Aggregate.EventDecodeError> => {
    const data = recorded.data
    if (typeof data !== "object" || data === null || Array.isArray(data)) {
      return Either.left(
        new Aggregate.EventDecodeError({
          streamId,
          version: recorded.version,
          type: recorded.type,
          cause: "event data is not a JSON object"
        })
      )
    }
    if (fast !== undefined) {
      const value = fast(data, recorded.type)
      if (value !== FastDecode.Fail) return Either.right(value as Event)
    }
    const decoded = decode(FastDecode.withTag(data, recorded.type))
    return Either.isRight(decoded) ? Either.right(decoded.right) : Either.left(
      new Aggregate.EventDecodeError({
        streamId,
        version: recorded.version,
        type: recorded.type,
        cause: decoded.left
      })
    )
  }
  const result: Codec<Event> = {
    encode: (streamId, event, metadata) => {
      const encoded = encode(event)
      if (Either.isLeft(encoded)) {
        return Either.left(
          new Aggregate.EventEncodeError({
            streamId,
            type: typeOf(event),
            cause: encoded.left
          })
        )
      }
      const { _tag, ...data } = encoded.right
      return Either.right(metadata === undefined ? { type: _tag, data } : { type: _tag, data, metadata })
    },
    decode: (recorded) => decodeIn(recorded.streamId, recorded),
    decodeIn
  }
  cache.set(aggregate, result as Codec<unknown>)
  return result
}

/** @internal */
export const encodeAll = <Event>(
  encode: (
    streamId: StreamId,
    event: Event,
    metadata: EventStore.EventMetadata | undefined
  ) => Either.Either<EventStore.EventData, Aggregate.EventEncodeError>,
  streamId: StreamId,
  events: ReadonlyArray<Event>,
  metadata: EventStore.EventMetadata | undefined
): Either.Either<ReadonlyArray<EventStore.EventData>, Aggregate.EventEncodeError> => {
  const out: Array<EventStore.EventData> = []
  for (const event of events) {
    const encoded = encode(streamId, event, metadata)
    if (Either.isLeft(encoded)) return Either.left(encoded.left)
    out.push(encoded.right)
  }
  return Either.right(out)
}
