import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Tracer from "effect/Tracer"
import type * as Aggregate from "../Aggregate.js"
import * as SnapshotStore from "../SnapshotStore.js"
import type { StreamId } from "../StreamId.js"

/** A short, stable hash of a string (FNV-1a, 32 bits, hex). */
const fnv1a = (text: string): string => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16).padStart(8, "0")
}

/** @internal */
export const fingerprint = (schema: Schema.Schema.AnyNoContext): string => fnv1a(String(schema.ast))

/**
 * @internal
 * The snapshot policy of one aggregate, in one place: which snapshot to trust (`load`), when to take one (`due`)
 * and how (`save`). The repository asks `due` after every load and every append it makes, with the version of the
 * latest snapshot it knows of.
 */
export interface Snapshotting<State> {
  /** Whether the aggregate snapshots at all (`state` Schema and `snapshotEvery` > 0). */
  readonly enabled: boolean
  /** A trusted snapshot: fingerprint equal and state decoded; anything else is `None`. Never fails. */
  readonly load: (
    streamId: StreamId
  ) => Effect.Effect<Option.Option<{ readonly state: State; readonly version: number; readonly takenAt: DateTime.Utc }>>
  /**
   * The policy: a state at `version` is saved when it is `snapshotEvery` or more events past `last`, the version of
   * the latest snapshot of the stream (0: none).
   */
  readonly due: (version: number, last: number) => boolean
  /** Saves a snapshot in the background (when a `SnapshotStore` is provided); never fails. */
  readonly save: (streamId: StreamId, state: State, version: number) => Effect.Effect<void>
}

const disabled: Snapshotting<never> = {
  enabled: false,
  load: () => Effect.succeedNone,
  due: () => false,
  save: () => Effect.void
}

/** @internal */
export const make = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>
): Snapshotting<State> => {
  const schema = aggregate.state
  const every = aggregate.snapshotEvery
  if (schema === undefined || every === undefined || every <= 0) return disabled as unknown as Snapshotting<State>
  const print = fingerprint(schema)
  const decode = Schema.decodeUnknownEither(schema)
  const encode = Schema.encodeEither(schema)

  return {
    enabled: true,
    load: (streamId) =>
      Effect.flatMap(Effect.serviceOption(SnapshotStore.SnapshotStore), (service) => {
        if (Option.isNone(service)) return Effect.succeedNone
        return service.value.load(streamId).pipe(
          Effect.flatMap((snapshot) => {
            if (Option.isNone(snapshot)) return Effect.succeedNone
            const { fingerprint, state, takenAt, version } = snapshot.value
            const decoded = fingerprint === print ? decode(state) : undefined
            if (decoded === undefined || Either.isLeft(decoded)) {
              return Effect.as(Metric.increment(SnapshotStore.ignored), Option.none())
            }
            return Effect.succeedSome({ state: decoded.right, version, takenAt })
          }),
          Effect.catchAllCause((cause) =>
            Effect.as(
              Effect.zipRight(
                Metric.increment(SnapshotStore.ignored),
                Effect.logWarning("snapshot load failed; loading from events", cause)
              ),
              Option.none()
            )
          )
        )
      }),
    due: (version, last) => version - last >= every,
    save: (streamId, state, version) =>
      Effect.flatMap(Effect.serviceOption(SnapshotStore.SnapshotStore), (service) => {
        if (Option.isNone(service)) return Effect.void
        const save = Effect.flatMap(
          encode(state),
          (encoded) =>
            Effect.flatMap(
              DateTime.now,
              (takenAt) => service.value.save({ streamId, version, fingerprint: print, state: encoded, takenAt })
            )
        ).pipe(
          Effect.catchAllCause((cause) =>
            Effect.zipRight(
              Metric.increment(SnapshotStore.saveFailures),
              Effect.logWarning(`snapshot save failed for ${streamId}@${version}`, cause)
            )
          ),
          Effect.withSpan("Repository.saveSnapshot", {
            attributes: { "stream.id": streamId, "stream.version": version }
          })
        )
        // in the background, possibly after the caller ended: not in the caller's context, whose database
        // transaction (`EventStore.withLock` on PostgreSQL, a `sql.withTransaction` of the caller) may be over by
        // then; only the snapshot store and the parent span are kept
        const isolated = Effect.mapInputContext(save, (context: Context.Context<never>) => {
          const only = Context.make(SnapshotStore.SnapshotStore, service.value)
          const parent = Context.getOption(context, Tracer.ParentSpan)
          return Option.isSome(parent) ? Context.add(only, Tracer.ParentSpan, parent.value) : only
        })
        return Effect.asVoid(Effect.forkDaemon(isolated))
      })
  }
}
