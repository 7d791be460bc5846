/**
 * Appends: requests are validated and encoded synchronously (`prepare`, in `encoding.ts`), sent as one statement of
 * their own (`single`) or, for concurrent appends outside a transaction, together with others (`groupCommit.ts`), and a
 * failure is mapped to the port's errors (`failed`): expected-version conflicts, idempotent replays by event id
 * (the rules are `StoreKit.replay`, shared with every store), and the check by event id of a commit whose outcome the connection loss hid.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as Projection from "@effect-eventsourcing/core/Projection"
import * as StoreKit from "@effect-eventsourcing/core/StoreKit"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import type { Options } from "../PostgresEventStore.js"
import { encodeExpected, prepare } from "./encoding.js"
import type { Prepared } from "./encoding.js"
import * as GroupCommit from "./groupCommit.js"
import { conflictCode } from "./migrations/0001_create_event_store.js"
import { connectionFailure, detailOf, isUnansweredSqlError, isUniqueViolation, sqlState } from "./sqlErrors.js"
import { outsideTransaction, transaction } from "./transaction.js"

interface StoredRow {
  readonly id: string
  readonly stream_id: string
  readonly version: string
  readonly position: string
  readonly type: string
  readonly data: unknown
}

/** @internal */
export type Rows = ReadonlyArray<{ readonly version: string; readonly positions: ReadonlyArray<string> }>

type Committed = { readonly _tag: "Committed"; readonly results: ReadonlyArray<EventStore.AppendResult> }

/**
 * The canonical order of a unit of work's requests, by stream id (stable: the requests of one stream keep their
 * order), or `undefined` when they are in it already. `append_many` inserts the events in the order of its input
 * arrays, and an insert waits on another transaction's uncommitted row of the same `(stream_id, version)`: two
 * `appendMany` calls over the same streams in opposite orders would each hold the other's next key (a deadlock,
 * 40P01). In one order everywhere, the later one waits for the earlier and then retries or conflicts as usual.
 */
const canonicalOrder = (requests: ReadonlyArray<EventStore.AppendRequest>): Array<number> | undefined => {
  let sorted = true
  for (let i = 1; i < requests.length; i++) {
    if (requests[i - 1]!.streamId > requests[i]!.streamId) {
      sorted = false
      break
    }
  }
  if (sorted) return undefined
  return requests.map((_, i) => i).sort((x, y) => {
    const a = requests[x]!.streamId
    const b = requests[y]!.streamId
    return a < b ? -1 : a > b ? 1 : x - y
  })
}

const isVersionKeyViolation = (error: SqlError | EventStore.EventStoreError | EventStore.CommitOutcomeUnknown) =>
  error._tag === "SqlError" && isUniqueViolation(error, "events_stream_version_key")

/** The events of a prepared request as the replay rules see them. */
const toStored = (row: StoredRow): StoreKit.StoredEvent => ({
  streamId: row.stream_id,
  version: Number(row.version),
  position: Number(row.position),
  type: row.type,
  data: row.data
})

/** @internal */
export const make = <R>(options: {
  readonly sql: SqlClient.SqlClient
  /** the quoted schema name */
  readonly s: string
  readonly channel: string
  readonly notify: NonNullable<Options["notify"]>
  readonly inline: ReadonlyArray<Projection.Projection<unknown, R>>
  /** provides the requirements of inline projections captured when the store was built */
  readonly withContext: <A, E>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E>
  readonly versionOf: (streamId: string) => Effect.Effect<number, SqlError>
  /** after a commit whose last position is `position` (> 0) */
  readonly committed: (position: number) => void
  /** after a commit that notified other processes itself (`pg_notify` inside its transaction): wakes local ones */
  readonly notified: (position: number) => void
  readonly groupCommit: Options["groupCommit"]
}): Appender => {
  const { channel, inline, notify: notifyMode, s, sql, versionOf, withContext } = options

  // one request with at least one event: its events as one jsonb document (migration 4)
  const appendOneSql = `select version, positions from ${s}.append_one($1::text, $2::text, $3::bigint, $4::jsonb, ` +
    `$5::timestamptz, $6::text)`
  // every other append (several requests, or one without events): the events as arrays, spread by `unnest` (the
  // function of migration 1, `append_many` since migration 3, whose `append` would only forward these calls to it)
  const appendManySql = `select version, positions from ${s}.append_many($1::text[], $2::text[], $3::bigint[], ` +
    `$4::int[], $5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz, $10::text)`

  /** The conflict of an `Exact` version that can never match, with the stream's actual version. */
  const neverMatches = (method: string, request: EventStore.AppendRequest) =>
    Effect.flatMap(
      Effect.mapError(versionOf(request.streamId), (cause) => new EventStore.EventStoreError({ method, cause })),
      (actual) =>
        Effect.fail(
          new EventStore.ConcurrencyConflict({ streamId: request.streamId, expected: request.expected, actual })
        )
    )

  const fetchStored = (ids: ReadonlyArray<string>) =>
    outsideTransaction(
      sql.unsafe<StoredRow>(
        `select event_id::text as id, stream_id, version, position, type, data from ${s}.events ` +
          `where event_id = any($1::uuid[])`,
        [ids]
      )
    )

  /**
   * Idempotency by event id (the rules are `StoreKit.replay`, shared with every store): `undefined` when no given
   * id is stored, the original results when every request is a batch committed before, an `EventIdConflict`
   * otherwise. The requests are the caller's (ids lower-cased by `EventStore.make`, as the uuid column's text).
   */
  const replayed = (
    prepared: Prepared
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult> | EventStore.EventIdConflict | undefined, SqlError> =>
    Effect.gen(function*() {
      const requests = prepared.requests
      const given = StoreKit.givenIds(requests)
      if (given instanceof EventStore.EventIdConflict) return given
      if (given.length === 0) return undefined
      const rows = yield* fetchStored(given)
      if (rows.length === 0) return undefined
      const stored = new Map(rows.map((row) => [row.id, toStored(row)]))
      const lasts = StoreKit.replay(requests, (id) => stored.get(id))
      if (lasts === undefined || lasts instanceof EventStore.EventIdConflict) return lasts
      const results: Array<EventStore.AppendResult> = []
      for (let i = 0; i < requests.length; i++) {
        const last = lasts[i]
        results.push(
          last === undefined
            ? { version: yield* outsideTransaction(versionOf(requests[i]!.streamId)), position: 0 }
            : { version: last.version, position: last.position }
        )
      }
      return results
    })

  /** After a lost connection: whether the batch was committed, by its event ids. */
  const checkCommitted = (
    method: string,
    prepared: Prepared,
    cause: unknown
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.CommitOutcomeUnknown> =>
    Effect.gen(function*() {
      const ids = prepared.events.flatMap((events) => events.map((event) => event.id))
      const rows = ids.length === 0 ? [] : yield* fetchStored(ids)
      const stored = new Map(rows.map((row) => [row.id, row]))
      if (ids.length === 0 || stored.size !== ids.length) {
        return yield* new EventStore.CommitOutcomeUnknown({ method, cause })
      }
      const results: Array<EventStore.AppendResult> = []
      for (let i = 0; i < prepared.requests.length; i++) {
        const events = prepared.events[i]!
        const last = events.length === 0 ? undefined : stored.get(events[events.length - 1]!.id)
        results.push(
          last === undefined
            ? { version: yield* outsideTransaction(versionOf(prepared.requests[i]!.streamId)), position: 0 }
            : { version: Number(last.version), position: Number(last.position) }
        )
      }
      return results
    }).pipe(
      Effect.catchTag("SqlError", () => Effect.fail(new EventStore.CommitOutcomeUnknown({ method, cause })))
    )

  const runInline = (
    method: string,
    prepared: Prepared,
    rows: Rows
  ): Effect.Effect<void, EventStore.EventStoreError> => {
    if (inline.length === 0) return Effect.void
    const recordedAt = DateTime.unsafeMake(prepared.recordedMillis)
    const recorded: Array<EventStore.RecordedEvent> = []
    for (let i = 0; i < prepared.requests.length; i++) {
      const request = prepared.requests[i]!
      const events = prepared.events[i]!
      const row = rows[i]!
      const first = Number(row.version) - events.length
      for (let k = 0; k < events.length; k++) {
        const event = events[k]!
        recorded.push({
          id: event.id,
          streamId: request.streamId,
          version: first + k + 1,
          position: Number(row.positions[k]),
          type: event.type,
          data: JSON.parse(event.dataJson),
          metadata: JSON.parse(event.metadataJson),
          recordedAt
        })
      }
    }
    recorded.sort((a, b) => a.position - b.position)
    return Effect.forEach(
      inline,
      (projection) => Effect.forEach(recorded, (event) => withContext(projection.handle(event)), { discard: true }),
      { discard: true }
    ).pipe(Effect.mapError((cause) => new EventStore.EventStoreError({ method, cause })))
  }

  /** Maps a failed append statement to the port's errors (the idempotency check runs on this path only). */
  const mapFailure = (
    method: string,
    prepared: Prepared,
    error: SqlError
  ): Effect.Effect<
    EventStore.ConcurrencyConflict | EventStore.EventIdConflict | EventStore.EventStoreError | Committed,
    never
  > =>
    Effect.gen(function*() {
      const code = sqlState(error)
      const isConflict = code === conflictCode || isUniqueViolation(error, "events_stream_version_key")
      if (isConflict || isUniqueViolation(error, "events_event_id_key")) {
        const replay = yield* replayed(prepared)
        if (replay !== undefined) {
          return replay instanceof EventStore.EventIdConflict ? replay : { _tag: "Committed" as const, results: replay }
        }
      }
      if (code === conflictCode) {
        const [index, actual] = detailOf(error).split(":")
        const request = prepared.requests[Number(index)]
        if (request !== undefined) {
          return new EventStore.ConcurrencyConflict({
            streamId: request.streamId,
            expected: request.expected,
            actual: Number(actual)
          })
        }
      }
      if (isConflict) {
        const request = prepared.requests.find((r) => detailOf(error).includes(r.streamId)) ?? prepared.requests[0]
        if (request !== undefined) {
          const actual = yield* outsideTransaction(versionOf(request.streamId))
          return new EventStore.ConcurrencyConflict({
            streamId: request.streamId,
            expected: request.expected,
            actual
          })
        }
      }
      return new EventStore.EventStoreError({ method, cause: error })
    }).pipe(Effect.catchAll((cause) => Effect.succeed(new EventStore.EventStoreError({ method, cause }))))

  /** The failure path of an append: connection loss, conflicts and idempotent replays (see mapFailure). */
  const failed = (
    method: string,
    prepared: Prepared,
    joined: boolean,
    error: SqlError | EventStore.EventStoreError | EventStore.CommitOutcomeUnknown
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> => {
    switch (error._tag) {
      case "EventStoreError":
        return Effect.fail(error)
      case "CommitOutcomeUnknown":
        return checkCommitted(method, prepared, error.cause)
      case "SqlError": {
        // the statement may have run and committed: find out by the event ids (nothing was sent when the
        // connection could not be made; inside the caller's transaction, the caller's commit decides)
        if (!joined && connectionFailure(error) === "lost") return checkCommitted(method, prepared, error)
        return Effect.flatMap(
          mapFailure(method, prepared, error),
          (mapped) => mapped._tag === "Committed" ? Effect.succeed(mapped.results) : Effect.fail(mapped)
        )
      }
    }
  }

  const committed = (
    prepared: Prepared,
    rows: Rows,
    notifiedInside: boolean
  ): ReadonlyArray<EventStore.AppendResult> => {
    let top = 0
    const results = new Array<EventStore.AppendResult>(rows.length)
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!
      const positions = row.positions
      const position = prepared.events[i]!.length === 0 ? 0 : Number(positions[positions.length - 1])
      if (position > top) top = position
      results[i] = { version: Number(row.version), position }
    }
    if (top > 0) (notifiedInside ? options.notified : options.committed)(top)
    return results
  }

  /** Today's path: the prepared requests in one statement of their own (joining the caller's transaction, if any). */
  const single = (
    method: string,
    prepared: Prepared,
    joined: boolean,
    notifiedInside = notifyMode === "inTransaction"
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> => {
    const requests = prepared.requests
    const call = sql.unsafe<Rows[number]>(prepared.one ? appendOneSql : appendManySql, prepared.params)
    // a transaction of our own only when needed: inline projections, or a savepoint inside the caller's one
    const ownTransaction = !joined && inline.length > 0
    const run: Effect.Effect<Rows, SqlError | EventStore.EventStoreError | EventStore.CommitOutcomeUnknown> =
      joined || ownTransaction
        ? transaction(sql, Effect.tap(call, (rows) => runInline(method, prepared, rows))).pipe(
          // a failed COMMIT is a SqlError failure of `transaction` (see `failed`); a defect here comes from user
          // code (an inline projection, its own nested `sql.withTransaction`)
          Effect.catchAllDefect((defect) =>
            Effect.fail(
              isUnansweredSqlError(defect)
                ? new EventStore.CommitOutcomeUnknown({ method, cause: defect })
                : new EventStore.EventStoreError({ method, cause: defect })
            )
          )
        )
        : call
    // two writers of the same stream read the same version: the later insert fails on the unique key once the
    // first commits; running the call again checks the expectation against the new version (a conflict with the
    // real actual version, or success for Any / StreamExists)
    // (the single-request NoStream / Exact(0) fast path of the append function never reads the version: there the
    // violation is the conflict, mapped below without running the call again)
    const only = requests.length === 1 ? requests[0] : undefined
    const retries = only !== undefined && only.events.length > 0 && encodeExpected(only.expected) === 0 ? 0 : 50
    const attempt = (left: number): typeof run =>
      left === 0 ? run : Effect.catchIf(run, isVersionKeyViolation, () => attempt(left - 1))
    return Effect.matchEffect(attempt(retries), {
      onFailure: (error) => failed(method, prepared, joined, error),
      onSuccess: (rows) => Effect.succeed(committed(prepared, rows, notifiedInside))
    })
  }

  /** the channel of an append that may go through the batcher: its statements notify inside their transactions */
  const batchChannel = notifyMode === "off" ? null : channel

  // concurrent single-stream appends outside a transaction, without inline projections: one statement for many
  const batcher = options.groupCommit === false || inline.length > 0 ? undefined : GroupCommit.make({
    sql,
    s,
    // a batch notifies inside its transaction in both modes: once per batch, and with one batch in flight at a time
    // the serialised commits of notifying transactions cost nothing; "afterCommit"'s separate statement per wake-up
    // (about one per two batches in bench W1) is spared
    channel: batchChannel,
    maxBatch: typeof options.groupCommit === "object" ? options.groupCommit.maxBatch : undefined,
    maxInFlight: typeof options.groupCommit === "object" ? options.groupCommit.maxInFlight : undefined,
    // a request sent alone by the batcher notifies inside its transaction too (`append` prepares it with the
    // channel): with "afterCommit" a lone append is then not followed by a `pg_notify` statement of its own — a
    // second round trip per append for a single writer (bench W6), competing with the writer's next statement (W4w's
    // load). Such statements run at most `maxInFlight` at once, plus those sent beside the batches (see
    // `groupCommit.ts`): an `Exact`/`NoStream` append behind another of its stream, which commits only when that one
    // failed, and appends of 16 events or more, whose commit outweighs waiting for another notifying commit (W2 and
    // W3 were measured with it)
    single: (method, prepared) => single(method, prepared, false, notifyMode !== "off"),
    replayed,
    checkCommitted,
    committed: notifyMode === "afterCommit" ? options.notified : options.committed
  })

  const channelParam = notifyMode === "inTransaction" ? channel : null

  // The hot path of every append: one fiber-runtime step reads the clock and the caller's transaction (if any),
  // the requests are encoded synchronously, then exactly one statement runs (alone, or in a group commit).
  const run = (
    method: string,
    requests: ReadonlyArray<EventStore.AppendRequest>
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> =>
    Effect.withFiberRuntime((fiber) => {
      const millis = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      const prepared = prepare(method, requests, millis, channelParam)
      if (typeof prepared === "number") return neverMatches(method, requests[prepared]!)
      if (prepared instanceof EventStore.EventStoreError) return Effect.fail(prepared)
      return single(
        method,
        prepared,
        Context.getOption(fiber.currentContext, SqlClient.TransactionConnection)._tag === "Some"
      )
    })

  // several requests are written in the canonical order (no deadlock between units of work over the same streams)
  // and answered in the caller's
  const commit = (
    method: string,
    requests: ReadonlyArray<EventStore.AppendRequest>
  ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> => {
    const order = canonicalOrder(requests)
    if (order === undefined) return run(method, requests)
    return Effect.map(run(method, order.map((i) => requests[i]!)), (sorted) => {
      const results = new Array<EventStore.AppendResult>(sorted.length)
      for (let k = 0; k < sorted.length; k++) results[order[k]!] = sorted[k]!
      return results
    })
  }

  const first = (results: ReadonlyArray<EventStore.AppendResult>) => results[0]!

  return {
    commit,
    // one request: group commit when possible (its result without an array around it: no step to take it out)
    append: (streamId, events, expected) =>
      Effect.withFiberRuntime((fiber) => {
        const millis = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const requests = [{ streamId, events, expected }]
        const joined = Context.getOption(fiber.currentContext, SqlClient.TransactionConnection)._tag === "Some"
        const batched = batcher !== undefined && !joined
        const prepared = prepare("append", requests, millis, batched ? batchChannel : channelParam)
        if (typeof prepared === "number") return neverMatches("append", requests[prepared]!)
        if (prepared instanceof EventStore.EventStoreError) return Effect.fail(prepared)
        return batched && prepared.one
          ? batcher.submit("append", prepared)
          : Effect.map(single("append", prepared, joined, batched ? notifyMode !== "off" : undefined), first)
      })
  }
}

/** @internal */
export interface Appender {
  /** `append` (one request) or `appendMany`: exactly one statement (group commit is for `append` only) */
  readonly commit: (
    method: string,
    requests: ReadonlyArray<EventStore.AppendRequest>
  ) => Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>
  readonly append: EventStore.EventStore.Service["append"]
}
