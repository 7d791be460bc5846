/**
 * Snapshots of aggregate states, keyed by stream. A snapshot carries the stream version it reflects and a
 * fingerprint of the state Schema; a repository ignores (and replaces) a snapshot whose fingerprint differs or that
 * fails to decode: snapshots are an optimisation, never the truth.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { causeMessage } from "./internal/causeMessage.js"
import type { StreamId } from "./StreamId.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Snapshot {
  readonly streamId: StreamId
  /** The stream version the state reflects. */
  readonly version: number
  /** Identifies the state Schema the snapshot was encoded with. */
  readonly fingerprint: string
  /** The encoded (JSON) state. */
  readonly state: unknown
  readonly takenAt: DateTime.Utc
}

/**
 * An infrastructure failure of a snapshot store (connection, SQL, ...). The cause is kept for logs. Repositories
 * never surface it: a snapshot that cannot be loaded or saved is logged, counted and skipped.
 *
 * @since 0.2.0
 * @category errors
 */
export class SnapshotStoreError extends Schema.TaggedError<SnapshotStoreError>()("SnapshotStoreError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.2.0
   */
  override get message(): string {
    return `SnapshotStore.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class SnapshotStore extends Context.Tag("@effect-eventsourcing/core/SnapshotStore")<
  SnapshotStore,
  SnapshotStore.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace SnapshotStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The latest snapshot of the stream, if any. */
    readonly load: (streamId: StreamId) => Effect.Effect<Option.Option<Snapshot>, SnapshotStoreError>
    /** Stores a snapshot, unless a newer one is already stored. */
    readonly save: (snapshot: Snapshot) => Effect.Effect<void, SnapshotStoreError>
    /** Removes every snapshot of the stream. */
    readonly delete: (streamId: StreamId) => Effect.Effect<void, SnapshotStoreError>
  }
}

/**
 * Snapshot saves that failed. A failed save is logged and counted here, never surfaced as a command's error.
 *
 * @since 0.1.0
 * @category metrics
 */
export const saveFailures = Metric.counter("effect_eventsourcing_snapshot_save_failures_total", {
  description: "Snapshot saves that failed (the command itself succeeded)"
})

/**
 * Snapshots ignored because their fingerprint differed, their state did not decode, or loading them failed.
 *
 * @since 0.1.0
 * @category metrics
 */
export const ignored = Metric.counter("effect_eventsourcing_snapshots_ignored_total", {
  description: "Snapshots ignored (other fingerprint, undecodable state, or a failed load)"
})

/**
 * An in-memory snapshot store (one latest snapshot per stream).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<SnapshotStore.Service> = Effect.sync(() => {
  const snapshots = new Map<string, Snapshot>()
  return {
    load: (streamId) => Effect.sync(() => Option.fromNullable(snapshots.get(streamId))),
    save: (snapshot) =>
      Effect.sync(() => {
        const current = snapshots.get(snapshot.streamId)
        if (current === undefined || current.version <= snapshot.version) {
          snapshots.set(snapshot.streamId, snapshot)
        }
      }),
    delete: (streamId) => Effect.sync(() => void snapshots.delete(streamId))
  }
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SnapshotStore> = Layer.effect(SnapshotStore, makeMemory)
