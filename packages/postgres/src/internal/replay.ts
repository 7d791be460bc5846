/**
 * Idempotency by event id: the rules that decide whether an append re-sends a batch committed before (and gets the
 * original result) or conflicts with stored events. Pure; the caller fetches the stored events. The in-memory store
 * applies the same rules with the same reasons.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as StreamId from "@effect-eventsourcing/core/StreamId"

/** An event of an append as the rules see it. */
export interface SentEvent {
  /** the id the caller gave; `undefined` when the store generated one */
  readonly id: string | undefined
  readonly type: string
  /** the data as it would be stored (read only for an event with a given id that is stored) */
  readonly data: unknown
}

/** A stored event, found by its id. */
export interface StoredEvent {
  readonly streamId: string
  readonly version: number
  readonly position: number
  readonly type: string
  readonly data: unknown
}

/** The ids given in an append, in order, or the conflict of an id given twice. */
export const givenIds = (
  requests: ReadonlyArray<{ readonly streamId: StreamId.StreamId; readonly events: ReadonlyArray<SentEvent> }>
): ReadonlyArray<string> | EventStore.EventIdConflict => {
  const seen = new Set<string>()
  const given: Array<string> = []
  for (const request of requests) {
    for (const event of request.events) {
      if (event.id === undefined) continue
      if (seen.has(event.id)) {
        return new EventStore.EventIdConflict({
          streamId: request.streamId,
          eventId: event.id,
          reason: "the id appears twice in the same append"
        })
      }
      seen.add(event.id)
      given.push(event.id)
    }
  }
  return given
}

/**
 * One request of an append whose given ids are (partly) stored: its last stored event when every event is stored,
 * in order, in the same stream, with the same content (`undefined` for a request without events), or the conflict.
 */
export const replayRequest = (
  request: { readonly streamId: StreamId.StreamId; readonly events: ReadonlyArray<SentEvent> },
  stored: (id: string) => StoredEvent | undefined
): StoredEvent | undefined | EventStore.EventIdConflict => {
  let last: StoredEvent | undefined
  for (const event of request.events) {
    const row = event.id === undefined ? undefined : stored(event.id)
    const reason = row === undefined
      ? "the batch mixes new events with stored ones"
      : row.streamId !== request.streamId
      ? `it is stored in stream ${row.streamId}`
      : last !== undefined && row.version !== last.version + 1
      ? "it is stored at another version"
      : !EventStore.sameContent(event, row)
      ? "it is stored with other content"
      : undefined
    if (row === undefined || reason !== undefined) {
      return new EventStore.EventIdConflict({
        streamId: request.streamId,
        eventId: event.id ?? "",
        reason: reason ?? "the batch mixes new events with stored ones"
      })
    }
    last = row
  }
  return last
}
