import * as Chunk from "effect/Chunk"
import type * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import type * as InMemoryEventStore from "../InMemoryEventStore.js"
import type * as Projection from "../Projection.js"
import type { StreamId } from "../StreamId.js"
import * as StoreKit from "./storeKit.js"

/** @internal the service of `InMemoryEventStore.Control` (declared there, with `HeldCommit`) */
export type Control = InMemoryEventStore.Control["Type"]

/** @internal */
export interface Options {
  readonly inline?: ReadonlyArray<Projection.Projection<unknown>>
}

interface StreamState {
  readonly events: Array<EventStore.RecordedEvent>
  /** the version including commits that are reserved but not yet visible */
  reserved: number
}

interface Pending {
  readonly positions: Deferred.Deferred<ReadonlyArray<number>>
  /** `true`: commit (`release`), `false`: fail (`rollback`) */
  readonly release: Deferred.Deferred<boolean>
}

const PAGE = 1024

const copyJson = (value: unknown): unknown => {
  const text = JSON.stringify(value)
  if (text === undefined) throw new TypeError("not a JSON value")
  return JSON.parse(text)
}

/** @internal */
export const make = (
  options: Options = {}
): Effect.Effect<{ readonly store: EventStore.EventStore.Service; readonly control: Control }> =>
  Effect.sync(() => {
    const streams = new Map<string, StreamState>()
    /** index = position - 1 (events and tombstones); `undefined` for reserved, deleted or aborted positions */
    const log: Array<EventStore.LogEntry | undefined> = []
    /** first positions of the commits that are reserved but not yet visible */
    const inFlight = new Set<number>()
    const holds: Array<Pending> = []
    const keyedLock = StoreKit.makeKeyedLock()
    const lock = (streamId: StreamId, options?: EventStore.LockOptions) =>
      options?.timeout === undefined
        ? keyedLock(streamId)
        : Effect.timeoutFail(keyedLock(streamId), {
          duration: options.timeout,
          onTimeout: () => new EventStore.LockTimeout({ streamId })
        })
    const ids = new Map<string, EventStore.RecordedEvent>()
    const lookup = (id: string) => ids.get(id)
    /** wakes subscribers on every change */
    const signal = StoreKit.makeSignal()
    const inline = options.inline ?? []

    const visibleUpTo = (): number => {
      let watermark = log.length
      for (const first of inFlight) {
        if (first - 1 < watermark) watermark = first - 1
      }
      return watermark
    }

    const notify = signal.wake

    const visibleVersion = (stream: StreamState | undefined): number =>
      stream === undefined || stream.events.length === 0 ? 0 : stream.events[stream.events.length - 1]!.version

    interface Prepared {
      readonly streamId: StreamId
      readonly stream: StreamState | undefined
      readonly from: number
      readonly events: ReadonlyArray<EventStore.EventData>
    }

    /**
     * Idempotency by event id (the rules of `StoreKit.replay`): `undefined` when no given id is known (the normal
     * path), the original results when every request is a batch that was committed before, an `EventIdConflict`
     * otherwise.
     */
    const replayed = (
      requests: ReadonlyArray<EventStore.AppendRequest>
    ): Exit.Exit<ReadonlyArray<EventStore.AppendResult>, EventStore.EventIdConflict> | undefined => {
      const replay = StoreKit.replay(requests, lookup)
      if (replay === undefined) return undefined
      if (replay instanceof EventStore.EventIdConflict) return Exit.fail(replay)
      return Exit.succeed(replay.map((last, i) =>
        last === undefined
          ? { version: visibleVersion(streams.get(requests[i]!.streamId)), position: 0 }
          : { version: last.version, position: last.position }
      ))
    }

    /** Checks every request against the current (reserved) versions without writing anything. */
    const check = (
      requests: ReadonlyArray<EventStore.AppendRequest>
    ): Exit.Exit<ReadonlyArray<Prepared>, EventStore.ConcurrencyConflict | EventStore.EventStoreError> => {
      const tentative = requests.length > 1 ? new Map<string, number>() : undefined
      const prepared: Array<Prepared> = []
      for (const request of requests) {
        const stream = streams.get(request.streamId)
        const actual = tentative?.get(request.streamId) ?? stream?.reserved ?? 0
        if (!ExpectedVersion.matches(request.expected, actual)) {
          return Exit.fail(
            new EventStore.ConcurrencyConflict({ streamId: request.streamId, expected: request.expected, actual })
          )
        }
        tentative?.set(request.streamId, actual + request.events.length)
        prepared.push({ streamId: request.streamId, stream, from: actual, events: request.events })
      }
      return Exit.succeed(prepared)
    }

    // consecutive commits usually share their millisecond: reuse the (immutable) DateTime
    const recordedAtOf = StoreKit.makeDateTimeCache()

    /** `pick` maps the results (the single result of `append`) without another effect on the hot path. */
    const commitUnsafe = <A>(
      method: string,
      requests: ReadonlyArray<EventStore.AppendRequest>,
      pick: (results: ReadonlyArray<EventStore.AppendResult>) => A
    ): Effect.Effect<A, EventStore.AppendError> =>
      Effect.clockWith((
        clock
      ): Effect.Effect<A, EventStore.AppendError> => {
        // the same instant as `DateTime.now`, read synchronously (one effect less on the hot path)
        const recordedAt = recordedAtOf(clock.unsafeCurrentTimeMillis())
        const replay = replayed(requests)
        if (replay !== undefined) return Exit.map(replay, pick)
        const checked = check(requests)
        if (Exit.isFailure(checked)) {
          return checked as Exit.Exit<never, EventStore.ConcurrencyConflict | EventStore.EventStoreError>
        }
        const prepared = checked.value
        // copy everything before reserving anything (`EventStore.make` has checked the input: the copy is the
        // store's own, and cannot fail on JSON values)
        const built: Array<Array<EventStore.RecordedEvent>> = []
        let position = log.length + 1
        try {
          for (const p of prepared) {
            const events: Array<EventStore.RecordedEvent> = []
            for (let i = 0; i < p.events.length; i++) {
              const e = p.events[i]!
              events.push({
                id: e.id ?? globalThis.crypto.randomUUID(),
                streamId: p.streamId,
                version: p.from + i + 1,
                position: position++,
                type: e.type,
                data: copyJson(e.data),
                metadata: e.metadata === undefined ? {} : copyJson(e.metadata) as EventStore.EventMetadata,
                recordedAt
              })
            }
            built.push(events)
          }
        } catch (cause) {
          return Effect.fail(new EventStore.EventStoreError({ method, cause }))
        }
        const results: Array<EventStore.AppendResult> = prepared.map((p, i) => {
          const events = built[i]!
          return {
            version: p.from + events.length,
            position: events.length === 0 ? 0 : events[events.length - 1]!.position
          }
        })
        const all = built.length === 1 ? built[0]! : built.flat()
        if (all.length === 0) {
          return Exit.succeed(pick(results))
        }

        // reserve: versions and positions belong to this commit from now on
        const first = all[0]!.position
        for (let i = 0; i < prepared.length; i++) {
          const p = prepared[i]!
          let stream = streams.get(p.streamId)
          if (stream === undefined) {
            stream = { events: [], reserved: 0 }
            streams.set(p.streamId, stream)
          }
          stream.reserved = Math.max(stream.reserved, results[i]!.version)
        }
        for (let i = 0; i < all.length; i++) log.push(undefined)

        const publishNow = () => {
          for (const event of all) {
            const stream = streams.get(event.streamId)
            if (stream === undefined) continue // deleted while in flight
            stream.events.push(event)
            log[event.position - 1] = event
            ids.set(event.id, event)
          }
          inFlight.delete(first)
          notify()
          return results
        }

        const hold = holds.shift()
        // the common case: nothing to wait for, the commit is one synchronous step
        if (hold === undefined && inline.length === 0) return Exit.succeed(pick(publishNow()))
        const publish = Effect.sync(() => pick(publishNow()))

        const runInline = inline.length === 0
          ? Effect.void
          : Effect.forEach(inline, (projection) => Effect.forEach(all, projection.handle, { discard: true }), {
            discard: true
          })

        inFlight.add(first)
        const rollback = Effect.sync(() => {
          // leave a hole: the positions are never reused, versions go back
          for (let i = 0; i < prepared.length; i++) {
            const stream = streams.get(prepared[i]!.streamId)
            if (stream !== undefined && stream.reserved === results[i]!.version) {
              stream.reserved = visibleVersion(stream)
            }
          }
          inFlight.delete(first)
          notify()
        })
        const waitForRelease = hold === undefined
          ? Effect.void
          : Deferred.succeed(hold.positions, all.map((e) => e.position)).pipe(
            Effect.zipRight(Deferred.await(hold.release)),
            Effect.flatMap((commits) =>
              commits ? Effect.void : Effect.fail(
                new EventStore.EventStoreError({
                  method,
                  cause: new Error("the held commit was rolled back (HeldCommit.rollback)")
                })
              )
            )
          )
        return waitForRelease.pipe(
          Effect.zipRight(
            Effect.mapError(runInline, (cause) => new EventStore.EventStoreError({ method, cause }))
          ),
          Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : rollback),
          Effect.zipRight(publish)
        )
      })

    // with inline handlers a commit is no longer one synchronous step: run commits one at a time so that a
    // failing handler can give its versions back without disturbing another writer (in arrival order: see
    // `makeFifoLock`)
    const commitLock = StoreKit.makeFifoLock()
    const commit = <A>(
      method: string,
      requests: ReadonlyArray<EventStore.AppendRequest>,
      pick: (results: ReadonlyArray<EventStore.AppendResult>) => A
    ): Effect.Effect<A, EventStore.AppendError> =>
      inline.length === 0
        ? commitUnsafe(method, requests, pick)
        : commitLock.withLock(commitUnsafe(method, requests, pick))
    const firstResult = (results: ReadonlyArray<EventStore.AppendResult>) => results[0]!
    const allResults = (results: ReadonlyArray<EventStore.AppendResult>) => results

    /** the visible entries at positions `cursor + 1 .. end`: tombstones only when `deletions` */
    const page = (
      cursor: number,
      end: number,
      filter: EventStore.Filter | undefined,
      deletions: boolean
    ): Chunk.Chunk<EventStore.LogEntry> => {
      const out: Array<EventStore.LogEntry> = []
      for (let p = cursor + 1; p <= end; p++) {
        const entry = log[p - 1]
        if (entry === undefined) continue
        if (EventStore.isTombstone(entry)) {
          if (deletions && StoreKit.matchesEntry(filter, entry)) out.push(entry)
        } else if (StoreKit.matchesFilter(filter, entry)) out.push(entry)
      }
      return Chunk.unsafeFromArray(out)
    }

    const readAllFrom = (
      from: number,
      filter: EventStore.Filter | undefined,
      deletions: boolean,
      upTo: () => number
    ): Stream.Stream<EventStore.LogEntry> =>
      Stream.suspend(() => {
        let cursor = Math.max(1, from) - 1
        return Stream.repeatEffectChunkOption(Effect.suspend(() => {
          const end = Math.min(upTo(), cursor + PAGE)
          if (end <= cursor) return Effect.fail(Option.none())
          const out = page(cursor, end, filter, deletions)
          cursor = end
          return Effect.succeed(out)
        }))
      })

    const read = (streamId: StreamId, options: EventStore.ReadOptions = {}): Stream.Stream<EventStore.RecordedEvent> =>
      Stream.suspend(() => {
        const events = streams.get(streamId)?.events ?? []
        const last = events.length === 0 ? 0 : events[events.length - 1]!.version
        const from = Math.max(1, options.from ?? 1)
        const to = Math.min(last, options.to ?? last)
        if (to < from || (options.limit !== undefined && options.limit <= 0)) return Stream.empty
        const offset = events[0]!.version
        let slice = events.slice(from - offset, to - offset + 1)
        if (options.direction === "backward") slice = slice.reverse()
        if (options.limit !== undefined) slice = slice.slice(0, options.limit)
        return Stream.fromChunk(Chunk.unsafeFromArray(slice))
      })

    const deleteHolds: Array<Pending> = []

    /**
     * Removes the stream's events and writes its tombstone at the next position, like a commit: visible only once
     * every commit in flight before it has ended; held in flight itself by `Control.holdNextDelete`.
     */
    const removeStream = (streamId: StreamId, clock: Clock.Clock): Effect.Effect<void, EventStore.EventStoreError> => {
      const stream = streams.get(streamId)
      if (stream === undefined) return Effect.void
      const version = visibleVersion(stream)
      if (version === 0) {
        // nothing visible to delete: no tombstone
        streams.delete(streamId)
        return Effect.void
      }
      const position = log.length + 1
      const apply = () => {
        const current = streams.get(streamId)
        if (current !== undefined) {
          for (const event of current.events) {
            log[event.position - 1] = undefined
            ids.delete(event.id)
          }
          streams.delete(streamId)
        }
        log[position - 1] = {
          _tag: "Tombstone",
          streamId,
          version,
          position,
          recordedAt: recordedAtOf(clock.unsafeCurrentTimeMillis())
        }
        inFlight.delete(position)
        notify()
      }
      log.push(undefined)
      const hold = deleteHolds.shift()
      if (hold === undefined) {
        apply()
        return Effect.void
      }
      inFlight.add(position)
      const abort = Effect.sync(() => {
        inFlight.delete(position)
        notify()
      })
      return Deferred.succeed(hold.positions, [position]).pipe(
        Effect.zipRight(Deferred.await(hold.release)),
        Effect.onInterrupt(() => abort),
        Effect.flatMap((commits) =>
          commits ? Effect.sync(apply) : Effect.zipRight(
            abort,
            Effect.fail(
              new EventStore.EventStoreError({
                method: "delete",
                cause: new Error("the held delete was rolled back (HeldCommit.rollback)")
              })
            )
          )
        )
      )
    }

    const store = EventStore.make({
      name: "memory",
      append: (streamId, events, expected) => commit("append", [{ streamId, events, expected }], firstResult),
      appendMany: (requests) => commit("appendMany", requests, allResults),
      read,
      // the recorded events are kept whole: a fold reads them as they are
      readForFold: (streamId, options = {}) =>
        Effect.sync(() => {
          const events = streams.get(streamId)?.events ?? []
          const last = events.length === 0 ? 0 : events[events.length - 1]!.version
          const from = Math.max(1, options.from ?? 1)
          const to = Math.min(last, options.to ?? last, options.limit === undefined ? last : from + options.limit - 1)
          if (to < from) return []
          const offset = events[0]!.version
          return events.slice(from - offset, to - offset + 1)
        }),
      streamVersion: (streamId) => Effect.sync(() => visibleVersion(streams.get(streamId))),
      readAll: (options = {}) => {
        const stream = Stream.suspend(() => {
          const upTo = visibleUpTo()
          return readAllFrom(options.from ?? 1, options.filter, options.deletions === true, () => upTo)
        })
        return options.limit === undefined ? stream : Stream.take(stream, options.limit)
      },
      subscribe: (options = {}) =>
        Stream.suspend(() => {
          let cursor = Math.max(1, options.from ?? 1) - 1
          const deletions = options.deletions === true
          return Stream.repeatEffectChunk(Effect.suspend(() => {
            const end = Math.min(visibleUpTo(), cursor + PAGE)
            if (end <= cursor) {
              return Effect.as(Deferred.await(signal.next()), Chunk.empty<EventStore.LogEntry>())
            }
            const out = page(cursor, end, options.filter, deletions)
            cursor = end
            return Effect.succeed(out)
          }))
        }),
      delete: (streamId) =>
        Effect.suspend(() => {
          const runHooks = Effect.forEach(
            inline,
            (handler) => handler.onDelete === undefined ? Effect.void : handler.onDelete(streamId),
            { discard: true }
          ).pipe(Effect.mapError((cause) => new EventStore.EventStoreError({ method: "delete", cause })))
          return Effect.zipRight(runHooks, Effect.clockWith((clock) => removeStream(streamId, clock)))
        }),
      lock,
      headPosition: Effect.sync(() => {
        // the last event below the first commit in flight (holes: rolled back or deleted positions)
        for (let p = visibleUpTo(); p > 0; p--) {
          if (log[p - 1] !== undefined) return p
        }
        return 0
      })
    })

    const holdIn = (queue: Array<Pending>) =>
      Effect.sync((): InMemoryEventStore.HeldCommit => {
        const pending: Pending = {
          positions: Deferred.unsafeMake<ReadonlyArray<number>>(FiberId.none),
          release: Deferred.unsafeMake<boolean>(FiberId.none)
        }
        queue.push(pending)
        return {
          reserved: Deferred.await(pending.positions),
          release: Effect.asVoid(Deferred.succeed(pending.release, true)),
          rollback: Effect.asVoid(Deferred.succeed(pending.release, false))
        }
      })
    const control: Control = {
      holdNextCommit: holdIn(holds),
      holdNextDelete: holdIn(deleteHolds)
    }

    return { store, control }
  })
