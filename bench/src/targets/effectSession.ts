/**
 * A `Session` over any Layer that provides our `EventStore`: W1/W2/W5/W6 through `EventStore.append` (the untyped
 * port), W3 through `CommandHandler` (reload + retry on conflict), W4 and W4w through `Repository.load` (W4w with
 * the aggregate cache when the library has one, see `aggregateCache.ts`), W5/M1 through `EventStore.readAll` as a
 * Stream. Each phase runs as one Effect program.
 */
import { EventStore, ExpectedVersion, Repository } from "@effect-eventsourcing/core"
import type { StreamId } from "@effect-eventsourcing/core/StreamId"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Account, counters, Deposited, SnapshottedAccount } from "../domain.js"
import type { CacheUse, SeenEvent, Session } from "../target.js"
import { deposit, NOTE } from "../target.js"
import * as AggregateCache from "./aggregateCache.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/** the aggregate id of a stream id `account-<id>` */
const idOf = (streamId: string) => streamId.slice(streamId.indexOf("-") + 1)

export const effectSession = async <E>(
  // may provide more, e.g. a SnapshotStore (found by the Repository at run time)
  layer: Layer.Layer<EventStore.EventStore, E>,
  options: {
    readonly snapshots?: boolean
    /** W3's command handler through the aggregate cache too (the `*-cached` variants); W4w always asks for it */
    readonly cachedCommands?: boolean
  } = {}
): Promise<Session> => {
  const runtime = ManagedRuntime.make(Layer.merge(layer, AggregateCache.layer))
  const store = await runtime.runPromise(EventStore.EventStore)
  const aggregate = options.snapshots === true ? SnapshottedAccount : Account
  // every target retries a conflicting command until it goes through, at once (no backoff)
  const handle = AggregateCache.commandHandler(
    aggregate,
    { retry: Schedule.forever },
    options.cachedCommands === true
  )
  // W4 is the cold load: never through a cache
  const repository = Repository.make(aggregate)
  // W4w: through the cache when the library has one
  const warmRepository = AggregateCache.repository(aggregate, true)
  const warmCache: CacheUse = AggregateCache.available ? "on" : "unavailable"

  return {
    appendNew: (batches, concurrency) =>
      // `concurrency` workers pulling the next batch, as forEachConcurrent does for the Promise targets
      runtime.runPromise(Effect.suspend(() => {
        let next = 0
        const worker = Effect.whileLoop({
          while: () => next < batches.length,
          body: () => {
            const batch = batches[next++]!
            return store.append(batch.streamId as StreamId, batch.events, ExpectedVersion.NoStream)
          },
          step: () => undefined
        })
        return Effect.all(Array.from({ length: Math.min(concurrency, batches.length) }, () => worker), {
          concurrency: "unbounded",
          discard: true
        })
      })),
    contended: (streamId, writers, perWriter) =>
      runtime.runPromise(Effect.suspend(() => {
        const id = idOf(streamId)
        const before = counters.decisions
        let succeeded = 0
        let failed = 0
        return Effect.forEach(
          range(writers),
          (writer) =>
            Effect.forEach(
              range(perWriter),
              (i) =>
                handle(id, { amount: ((writer * perWriter + i) % 100) + 1, note: NOTE }).pipe(
                  Effect.match({
                    onFailure: () => {
                      failed++
                    },
                    onSuccess: () => {
                      succeeded++
                    }
                  })
                ),
              { discard: true }
            ),
          { concurrency: writers, discard: true }
        ).pipe(
          Effect.map(() => ({
            succeeded,
            failed,
            conflicts: counters.decisions - before - succeeded - failed
          }))
        )
      })),
    rehydrate: (streamId, times) =>
      runtime.runPromise(Effect.gen(function*() {
        const id = idOf(streamId)
        const durations: Array<number> = []
        let sum = 0
        for (let i = 0; i < times; i++) {
          const start = performance.now()
          const loaded = yield* repository.load(id)
          durations.push(performance.now() - start)
          sum = loaded.state
        }
        return { durations, sum }
      })),
    warmRehydrate: (streamId, times, first) =>
      runtime.runPromise(Effect.gen(function*() {
        const id = idOf(streamId)
        const durations: Array<number> = []
        let loaded = yield* warmRepository.load(id)
        for (let i = 0; i < times; i++) {
          const { data } = deposit(first + i)
          yield* warmRepository.append(id, [Deposited.make(data)], ExpectedVersion.Exact(loaded.version))
          const start = performance.now()
          loaded = yield* warmRepository.load(id)
          durations.push(performance.now() - start)
        }
        return { durations, sum: loaded.state, cache: warmCache }
      })),
    appendSequential: (batches) =>
      runtime.runPromise(Effect.suspend(() => {
        const durations: Array<number> = []
        let next = 0
        let start = 0
        return Effect.whileLoop({
          while: () => next < batches.length,
          body: () => {
            const batch = batches[next++]!
            start = performance.now()
            return store.append(batch.streamId as StreamId, batch.events, ExpectedVersion.NoStream)
          },
          step: () => {
            durations.push(performance.now() - start)
          }
        }).pipe(Effect.as(durations))
      })),
    readAll: (onChunk) =>
      runtime.runPromise(
        Stream.runForEachChunk(store.readAll(), (chunk) =>
          Effect.sync(() =>
            onChunk(
              Chunk.toReadonlyArray(chunk).map((event): SeenEvent => ({
                streamId: event.streamId,
                version: event.version,
                amount: (event.data as { readonly amount: number }).amount
              }))
            )
          ))
      ),
    close: () => runtime.dispose()
  }
}
