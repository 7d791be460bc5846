import { SnapshotStore } from "@effect-eventsourcing/core"
import { SnapshotStoreContract } from "@effect-eventsourcing/testing"
import { assert, describe, it } from "@effect/vitest"
import { DateTime, Duration, Effect, Layer, Option } from "effect"

// The suite itself runs on the in-memory store in packages/core and on PostgreSQL in packages/postgres; here every
// check is shown to fail on a broken store.

type Service = SnapshotStore.SnapshotStore.Service

/** The in-memory store with some operations replaced by broken ones. */
const broken = (f: (inner: Service) => Partial<Service>) =>
  Layer.effect(
    SnapshotStore.SnapshotStore,
    Effect.map(SnapshotStore.makeMemory, (inner): Service => ({ ...inner, ...f(inner) }))
  )

/** A store over one map, with its own save rule. */
const mapStore = (
  saveRule: (current: SnapshotStore.Snapshot | undefined, next: SnapshotStore.Snapshot) => boolean,
  options: { readonly forgetOnDelete?: boolean } = {}
) =>
  Layer.sync(SnapshotStore.SnapshotStore, (): Service => {
    const snapshots = new Map<string, SnapshotStore.Snapshot>()
    const deleted = new Map<string, SnapshotStore.Snapshot>()
    return {
      load: (streamId) => Effect.sync(() => Option.fromNullable(snapshots.get(streamId))),
      save: (snapshot) =>
        Effect.sync(() => {
          const current = snapshots.get(snapshot.streamId) ?? deleted.get(snapshot.streamId)
          if (saveRule(current, snapshot)) snapshots.set(snapshot.streamId, snapshot)
        }),
      delete: (streamId) =>
        Effect.sync(() => {
          const current = snapshots.get(streamId)
          // remembers the deleted snapshot as a high-water mark (unless told to forget it)
          if (current !== undefined && options.forgetOnDelete !== true) deleted.set(streamId, current)
          snapshots.delete(streamId)
        })
    }
  })

const violates = (
  store: string,
  layer: Layer.Layer<SnapshotStore.SnapshotStore>,
  check: SnapshotStoreContract.CheckName,
  phrase: string
) =>
  it.live(`${store} fails ${check}`, () =>
    Effect.gen(function*() {
      const violation = yield* Effect.flip(SnapshotStoreContract.checks[check])
      assert.instanceOf(violation, SnapshotStoreContract.ContractViolation)
      assert.strictEqual(violation.contract, "SnapshotStoreContract")
      assert.strictEqual(violation.check, check)
      assert.include(violation.description, phrase)
    }).pipe(
      Effect.provide(layer),
      Effect.provideService(SnapshotStoreContract.Patience, Duration.seconds(1))
    ))

describe("SnapshotStoreContract has teeth: broken stores fail the relevant checks", () => {
  const seconds = broken((inner) => ({
    save: (s) => inner.save({ ...s, takenAt: DateTime.unsafeMake(Math.floor(s.takenAt.epochMillis / 1000) * 1000) })
  }))
  violates("a store that keeps takenAt to the second", seconds, "roundTrip", "takenAt (to the millisecond)")

  const oneForAll = broken((inner) => ({
    load: () => inner.load("all-one" as never),
    save: (s) => inner.save({ ...s, streamId: "all-one" as never })
  }))
  violates("a store with one snapshot for all streams", oneForAll, "keyedByStream", "its own snapshot")

  const lastWriteWins = mapStore(() => true, { forgetOnDelete: true })
  violates("a store where the last save wins", lastWriteWins, "newestWins", "never replaces a newer snapshot")

  const keepsFirstOfAVersion = mapStore((current, next) => current === undefined || current.version < next.version, {
    forgetOnDelete: true
  })
  violates("a store that keeps the first snapshot of a version", keepsFirstOfAVersion, "newestWins", "same version")
  violates("a store that keeps the first snapshot of a version", keepsFirstOfAVersion, "repository", "trusts")

  const highWaterMark = mapStore((current, next) => current === undefined || current.version <= next.version)
  violates("a store that remembers deleted versions", highWaterMark, "delete", "lower version is stored")

  const racy = broken((inner) => ({
    // reads the stored version, then writes (unconditionally) a while later: concurrent saves overwrite each other
    save: (s) =>
      Effect.flatMap(inner.load(s.streamId), (current) =>
        Effect.delay(
          Option.isSome(current) && current.value.version > s.version
            ? Effect.void
            : Effect.zipRight(inner.delete(s.streamId), inner.save(s)),
          Duration.millis(Math.max(0, 40 - s.version))
        ))
  }))
  violates("a store whose save is a racy read-then-write", racy, "concurrentSaves", "the newest snapshot wins")

  const noFingerprints = broken((inner) => ({ save: (s) => inner.save({ ...s, fingerprint: "" }) }))
  violates("a store that does not keep fingerprints", noFingerprints, "repository", "trusts a snapshot it saved itself")
})
