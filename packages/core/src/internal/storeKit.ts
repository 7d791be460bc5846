import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as EventStore from "../EventStore.js"
import type * as StoreKit from "../StoreKit.js"

// -------------------------------------------------------------------------------------
// content and filters
// -------------------------------------------------------------------------------------

const hasToJSON = (u: object): u is { toJSON: (key: string) => unknown } =>
  typeof (u as { readonly toJSON?: unknown }).toJSON === "function"

const definedKeys = (o: Record<string, unknown>): number => {
  let n = 0
  for (const k in o) if (Object.hasOwn(o, k) && o[k] !== undefined) n++
  return n
}

/** equality of the JSON the two values stand for: `toJSON` is applied and `undefined` fields are absent */
const jsonEquals = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (typeof a === "object" && a !== null && hasToJSON(a)) return jsonEquals(a.toJSON(""), b)
  if (typeof b === "object" && b !== null && hasToJSON(b)) return jsonEquals(a, b.toJSON(""))
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEquals(x, b[i]))
  }
  if (Array.isArray(b)) return false
  const ra = a as Record<string, unknown>
  const rb = b as Record<string, unknown>
  if (definedKeys(ra) !== definedKeys(rb)) return false
  for (const k in ra) {
    if (!Object.hasOwn(ra, k) || ra[k] === undefined) continue
    if (!Object.hasOwn(rb, k) || !jsonEquals(ra[k], rb[k])) return false
  }
  return true
}

/** @internal */
export const sameContent = (
  sent: { readonly type: string; readonly data: unknown },
  stored: { readonly type: string; readonly data: unknown }
): boolean => sent.type === stored.type && jsonEquals(sent.data, stored.data)

/** @internal */
export const matchesFilter = (filter: EventStore.Filter | undefined, event: EventStore.RecordedEvent): boolean => {
  if (filter === undefined) return true
  if (filter.types !== undefined && !filter.types.includes(event.type)) return false
  if (filter.streamIds !== undefined && !filter.streamIds.includes(event.streamId)) return false
  if (filter.categories !== undefined) {
    const category = event.streamId.slice(0, event.streamId.indexOf("-"))
    if (!filter.categories.includes(category)) return false
  }
  if (filter.after !== undefined && event.recordedAt.epochMillis <= filter.after.epochMillis) return false
  if (filter.before !== undefined && event.recordedAt.epochMillis >= filter.before.epochMillis) return false
  return true
}

// -------------------------------------------------------------------------------------
// idempotent appends
// -------------------------------------------------------------------------------------

type StoredEvent = StoreKit.StoredEvent

/** @internal */
export const reasons = {
  twice: "the id appears twice in the same append",
  mixed: "the batch mixes new events with stored ones",
  otherStream: (streamId: string) => `it is stored in stream ${streamId}`,
  otherVersion: "it is stored at another version",
  otherContent: "it is stored with other content"
} as const

/** @internal */
export const givenIds = (
  requests: ReadonlyArray<EventStore.AppendRequest>
): ReadonlyArray<string> | EventStore.EventIdConflict => {
  let seen: Set<string> | undefined
  let ids: Array<string> | undefined
  for (const request of requests) {
    for (const event of request.events) {
      const id = event.id
      if (id === undefined) continue
      seen ??= new Set()
      if (seen.has(id)) {
        return new EventStore.EventIdConflict({ streamId: request.streamId, eventId: id, reason: reasons.twice })
      }
      seen.add(id)
      ;(ids ??= []).push(id)
    }
  }
  return ids ?? noIds
}

const noIds: ReadonlyArray<string> = []

/** @internal */
export const replay = (
  requests: ReadonlyArray<EventStore.AppendRequest>,
  lookup: (id: string) => StoredEvent | undefined
): ReadonlyArray<StoredEvent | undefined> | EventStore.EventIdConflict | undefined => {
  // the normal path: no event carries an id, nothing is allocated
  const ids = givenIds(requests)
  if (!Array.isArray(ids)) return ids as EventStore.EventIdConflict
  let knownId: string | undefined
  for (let i = 0; i < ids.length && knownId === undefined; i++) {
    if (lookup(ids[i]!) !== undefined) knownId = ids[i]
  }
  if (knownId === undefined) return undefined
  // some id is stored: the append is a replay of committed batches, or a conflict
  const lasts: Array<StoredEvent | undefined> = []
  for (const request of requests) {
    let last: StoredEvent | undefined
    for (const event of request.events) {
      const stored = event.id === undefined ? undefined : lookup(event.id)
      if (stored === undefined) {
        // name the stored id: that is the one a caller can look up
        const known = requests.find((r) => r.events.some((e) => e.id === knownId))!
        return new EventStore.EventIdConflict({ streamId: known.streamId, eventId: knownId, reason: reasons.mixed })
      }
      const reason = stored.streamId !== request.streamId
        ? reasons.otherStream(stored.streamId)
        : last !== undefined && stored.version !== last.version + 1
        ? reasons.otherVersion
        : !sameContent(event, stored)
        ? reasons.otherContent
        : undefined
      if (reason !== undefined) {
        return new EventStore.EventIdConflict({ streamId: request.streamId, eventId: event.id!, reason })
      }
      last = stored
    }
    lasts.push(last)
  }
  return lasts
}

// -------------------------------------------------------------------------------------
// concurrency
// -------------------------------------------------------------------------------------

/** @internal */
export interface Signal {
  readonly next: () => Deferred.Deferred<void>
  readonly wake: () => void
}

/** @internal */
export const makeSignal = (): Signal => {
  // created only when someone waits, so that a wake-up with nobody waiting allocates nothing
  let current: Deferred.Deferred<void> | undefined
  return {
    next: () => (current ??= Deferred.unsafeMake<void>(FiberId.none)),
    wake: () => {
      const waiting = current
      if (waiting === undefined) return
      current = undefined
      Deferred.unsafeDone(waiting, Exit.void)
    }
  }
}

interface Holder {
  readonly semaphore: Effect.Semaphore
  refs: number
}

/** @internal */
export const makeKeyedLock = (): (key: string) => Effect.Effect<void, never, Scope.Scope> => {
  const holders = new Map<string, Holder>()
  return (key) =>
    Effect.uninterruptibleMask((restore) =>
      Effect.suspend(() => {
        let holder = holders.get(key)
        if (holder === undefined) {
          holder = { semaphore: Effect.unsafeMakeSemaphore(1), refs: 0 }
          holders.set(key, holder)
        }
        const entry = holder
        entry.refs++
        const forget = Effect.sync(() => {
          entry.refs--
          if (entry.refs === 0) holders.delete(key)
        })
        return restore(entry.semaphore.take(1)).pipe(
          Effect.onInterrupt(() => forget),
          Effect.zipRight(Effect.addFinalizer(() => Effect.zipRight(entry.semaphore.release(1), forget)))
        )
      })
    )
}

// -------------------------------------------------------------------------------------
// time
// -------------------------------------------------------------------------------------

/** @internal */
export const makeDateTimeCache = (): (millis: number) => DateTime.Utc => {
  let lastMillis = Number.NaN
  let last: DateTime.Utc | undefined
  return (millis) => {
    if (millis !== lastMillis || last === undefined) {
      lastMillis = millis
      last = DateTime.unsafeMake(millis)
    }
    return last
  }
}
