/**
 * The encoding of append requests: validated and turned into the parameters of one call of an append function
 * (`append_one` for one request with events, `append_many` otherwise), synchronously.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import * as StreamId from "@effect-eventsourcing/core/StreamId"

/** @internal */
export interface PreparedEvent {
  readonly id: string
  readonly given: boolean
  readonly type: string
  /** as stored (JSON text); parsed only when an inline projection or the idempotency check needs it */
  readonly dataJson: string
  readonly metadataJson: string
}

/** @internal */
export interface Prepared {
  readonly requests: ReadonlyArray<EventStore.AppendRequest>
  readonly events: ReadonlyArray<ReadonlyArray<PreparedEvent>>
  /** one request with at least one event: the `append_one` call (its events as one JSON document) */
  readonly one: boolean
  readonly params: ReadonlyArray<unknown>
  readonly recordedMillis: number
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** @internal */
export const encodeExpected = (expected: ExpectedVersion.ExpectedVersion): number | undefined => {
  switch (expected._tag) {
    case "Any":
      return -1
    case "NoStream":
      return 0
    case "StreamExists":
      return -2
    case "Exact":
      return Number.isSafeInteger(expected.version) && expected.version >= 0 ? expected.version : undefined
  }
}

/**
 * Validates and encodes the requests (synchronously: this is the hot path of every append). An `Exact` version
 * that is not a non-negative integer never matches (as in the in-memory store): returns that request's index.
 * `channelParam`: the channel of `pg_notify` inside the append's transaction, or `null`.
 *
 * @internal
 */
export const prepare = (
  method: string,
  requests: ReadonlyArray<EventStore.AppendRequest>,
  recordedMillis: number,
  channelParam: string | null
): Prepared | EventStore.EventStoreError | number => {
  const streamIds: Array<string> = []
  const categories: Array<string> = []
  const expected: Array<number> = []
  const req: Array<number> = []
  const ids: Array<string> = []
  const types: Array<string> = []
  const data: Array<string> = []
  const metadata: Array<string> = []
  const events: Array<Array<PreparedEvent>> = []
  // the flattened event arrays of the general call; one request with events takes `append_one`
  const many = requests.length !== 1 || requests[0]!.events.length === 0
  try {
    for (let i = 0; i < requests.length; i++) {
      const request = requests[i]!
      if (!StreamId.isStreamId(request.streamId)) {
        throw new TypeError(`invalid stream id ${JSON.stringify(String(request.streamId).slice(0, 100))}`)
      }
      const exp = encodeExpected(request.expected)
      if (exp === undefined) return i
      streamIds.push(request.streamId)
      categories.push(StreamId.category(request.streamId))
      expected.push(exp)
      const prepared: Array<PreparedEvent> = []
      for (const event of request.events) {
        if (typeof event.type !== "string" || event.type.length === 0) {
          throw new TypeError("event type must be a non-empty string")
        }
        if (event.id !== undefined && (typeof event.id !== "string" || !uuidPattern.test(event.id))) {
          throw new TypeError(`event id must be a uuid, got ${JSON.stringify(String(event.id).slice(0, 100))}`)
        }
        const dataJson = JSON.stringify(event.data)
        if (dataJson === undefined) {
          throw new TypeError("event data is not a JSON value")
        }
        const metadataJson = event.metadata === undefined ? "{}" : JSON.stringify(event.metadata)
        if (metadataJson === undefined || !metadataJson.startsWith("{")) {
          throw new TypeError("event metadata is not a JSON object")
        }
        const id = event.id?.toLowerCase() ?? globalThis.crypto.randomUUID()
        prepared.push({
          id,
          given: event.id !== undefined,
          type: event.type,
          dataJson,
          metadataJson
        })
        if (many) {
          req.push(i + 1)
          ids.push(id)
          types.push(event.type)
          data.push(dataJson)
          metadata.push(metadataJson)
        }
      }
      events.push(prepared)
    }
  } catch (cause) {
    return new EventStore.EventStoreError({ method, cause })
  }
  const recordedAt = new Date(recordedMillis).toISOString()
  if (!many) {
    // the ids are uuids (checked above, or generated) and the other values are JSON already: no escaping needed
    const only = events[0]!
    let payload = "["
    for (let k = 0; k < only.length; k++) {
      const event = only[k]!
      payload += `${k === 0 ? "" : ","}{"id":"${event.id}","type":${
        JSON.stringify(event.type)
      },"data":${event.dataJson},"metadata":${event.metadataJson}}`
    }
    payload += "]"
    return {
      requests,
      events,
      one: true,
      recordedMillis,
      params: [streamIds[0], categories[0], expected[0], payload, recordedAt, channelParam]
    }
  }
  return {
    requests,
    events,
    one: false,
    recordedMillis,
    params: [
      streamIds,
      categories,
      expected,
      req,
      ids,
      types,
      data,
      metadata,
      recordedAt,
      channelParam
    ]
  }
}
