/**
 * The aggregate state cache of `Repository` / `CommandHandler` (opt-in, `{ cache: { capacity } }`): the last loaded
 * `(state, version)` of each stream, per store, in a bounded LRU, so that a load reads only the events after the
 * cached version.
 *
 * An entry also keeps the position of the event at its version. Positions are never reused, so when the tail read
 * from the cached version (inclusive) starts with that same event, the stream is the one the state was folded from;
 * anything else (no such event: the stream was deleted, or its append rolled back; another position: deleted and
 * re-created) makes the load fold the whole stream again. Appends by other processes are picked up because every
 * load reads the tail.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as EventStore from "../EventStore.js"
import type * as Repository from "../Repository.js"

/** @internal What is cached of a stream. */
export interface Entry<State> {
  readonly state: State
  readonly version: number
  /** the position of the event at `version` */
  readonly position: number
  /** the version of the latest snapshot known to be stored (0: none), for the snapshot policy */
  readonly snapshot: number
}

/** @internal */
export interface AggregateCache<State> {
  readonly get: (store: EventStore.EventStore.Service, streamId: string) => Entry<State> | undefined
  readonly set: (store: EventStore.EventStore.Service, streamId: string, entry: Entry<State>) => void
  readonly delete: (store: EventStore.EventStore.Service, streamId: string) => void
}

/** A bounded map that forgets the least recently used key first (a `Map` keeps insertion order). */
class Lru<V> {
  private readonly entries = new Map<string, V>()
  constructor(private readonly capacity: number) {}
  get(key: string): V | undefined {
    const value = this.entries.get(key)
    if (value !== undefined) {
      this.entries.delete(key)
      this.entries.set(key, value)
    }
    return value
  }
  set(key: string, value: V): void {
    this.entries.delete(key)
    this.entries.set(key, value)
    if (this.entries.size > this.capacity) {
      this.entries.delete(this.entries.keys().next().value!)
    }
  }
  delete(key: string): void {
    this.entries.delete(key)
  }
}

/**
 * @internal
 * A cache per store service (a repository used with two stores never serves one's state for the other), or the
 * `InvalidArgument` every load then fails with when the capacity is not a positive integer.
 */
export const make = <State>(
  method: string,
  options: Repository.CacheOptions
): Either.Either<AggregateCache<State>, EventStore.InvalidArgument> => {
  const capacity = options.capacity
  if (!Number.isSafeInteger(capacity) || capacity < 1) {
    return Either.left(
      new EventStore.InvalidArgument({
        method,
        argument: "options.cache.capacity",
        reason: `${String(capacity)}: must be a positive integer`
      })
    )
  }
  const byStore = new WeakMap<EventStore.EventStore.Service, Lru<Entry<State>>>()
  return Either.right({
    get: (store, streamId) => byStore.get(store)?.get(streamId),
    set: (store, streamId, entry) => {
      let lru = byStore.get(store)
      if (lru === undefined) {
        lru = new Lru(capacity)
        byStore.set(store, lru)
      }
      lru.set(streamId, entry)
    },
    delete: (store, streamId) => byStore.get(store)?.delete(streamId)
  })
}
