import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as ExpectedVersion from "@effect-eventsourcing/core/ExpectedVersion"
import type * as Projection from "@effect-eventsourcing/core/Projection"
import * as StoreKit from "@effect-eventsourcing/core/StoreKit"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as schemaSql from "./schema.js"

/** @internal */
export interface Options<R> {
  readonly schema?: string | undefined
  readonly inline?: ReadonlyArray<Projection.Projection<unknown, R>> | undefined
  readonly pageSize?: number | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
  readonly watchdogInterval?: Duration.DurationInput | undefined
  readonly notify?: "afterCommit" | "inTransaction" | "off" | undefined
}

interface EventRow {
  /** `"<position> <version> <recorded at, epoch ms> <event id>"` (see `packed`) */
  readonly k: string
  readonly stream_id: string
  readonly type: string
  readonly data: unknown
  readonly metadata: unknown
}

interface GlobalRow extends EventRow {
  /** the row's recorded id is below the snapshot's xmin (see the gap-safety note of the migration) */
  readonly safe: boolean
}

interface StoredRow {
  readonly id: string
  readonly stream_id: string
  readonly version: string
  readonly position: string
  readonly type: string
  readonly data: unknown
}

interface PreparedEvent {
  readonly id: string
  readonly given: boolean
  readonly type: string
  /** as stored (JSON text); parsed only when an inline projection or the idempotency check needs it */
  readonly dataJson: string
  readonly metadataJson: string
}

interface Prepared {
  readonly requests: ReadonlyArray<EventStore.AppendRequest>
  readonly events: ReadonlyArray<ReadonlyArray<PreparedEvent>>
  /** one request with at least one event: the `append_one` call (its events as one JSON document) */
  readonly one: boolean
  readonly params: ReadonlyArray<unknown>
  readonly recordedMillis: number
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" &&
      /^[0-9A-Z]{5}$/.test(cause.code)
    ? cause.code
    : undefined
}

const constraintOf = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "constraint" in cause && typeof cause.constraint === "string"
    ? cause.constraint
    : undefined
}

const detailOf = (error: SqlError): string => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "detail" in cause && typeof cause.detail === "string"
    ? cause.detail
    : ""
}

/** A statement that failed without an answer from the server: the connection broke while it ran. */
const isConnectionLoss = (error: SqlError): boolean =>
  (error.message === "Failed to execute statement" || error.message === "Connection error") &&
  sqlState(error) === undefined

const encodeExpected = (expected: ExpectedVersion.ExpectedVersion): number | undefined => {
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

// consecutive rows usually share their commit time: reuse the DateTime
let lastMillis = Number.NaN
let lastDateTime: DateTime.Utc | undefined

const dateTimeOf = (millis: number): DateTime.Utc => {
  if (millis !== lastMillis || lastDateTime === undefined) {
    lastMillis = millis
    lastDateTime = DateTime.unsafeMake(millis)
  }
  return lastDateTime
}

/**
 * `Number(k.slice(from, to))` without the intermediate string when the field is up to 15 decimal digits (every
 * such integer is exact in a double, so the sum is the same number); anything else (a fraction, an exponent, a
 * sign, more digits) goes through `Number`.
 *
 * @internal
 */
export const numberAt = (k: string, from: number, to: number): number => {
  if (to <= from || to - from > 15) return Number(k.slice(from, to))
  let n = 0
  for (let i = from; i < to; i++) {
    const digit = k.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return Number(k.slice(from, to))
    n = n * 10 + digit
  }
  return n
}

const toRecorded = (row: EventRow, streamId?: StreamId.StreamId): EventStore.RecordedEvent => {
  // the same strings pg would have handed out for four columns (int8 and float8 text, the uuid's text form), and the
  // same conversions as before (`Number`, pg's float8 parser being `parseFloat`: the same value for float8 output)
  const k = row.k
  const a = k.indexOf(" ")
  const b = k.indexOf(" ", a + 1)
  const c = k.indexOf(" ", b + 1)
  return {
    id: k.slice(c + 1),
    streamId: streamId ?? row.stream_id as StreamId.StreamId,
    version: numberAt(k, a + 1, b),
    position: numberAt(k, 0, a),
    type: row.type,
    data: row.data,
    metadata: (row.metadata ?? {}) as EventStore.EventMetadata,
    recordedAt: dateTimeOf(Math.round(numberAt(k, b + 1, c)))
  }
}

/**
 * Rows per query when no `pageSize` is given: a stream of up to this many events is read in one round trip, and the
 * global log in few (constant memory either way).
 */
const defaultPageSize = 5_000

/**
 * Rows per query of `readAll` and `subscribe` when no `pageSize` is given (measured: 5,000 reads the global log no
 * faster than 1,000 here, and grows the reader's heap by ~20 MB more).
 */
const defaultGlobalPageSize = 1_000

/**
 * The fixed-format fields of a row in one text column `k`: position, version, recorded time (epoch milliseconds) and
 * event id, separated by spaces (none of them contains one; all are `not null`). The pg driver's cost is per field
 * (a string decode and a type parser each): 1,000 rows of a stream read took 2.1-2.5 ms of client CPU instead of
 * 3.2-4.4 ms with the four separate columns (pg.Client, same query otherwise).
 */
const packed = (e: string) =>
  `${e}position::text || ' ' || ${e}version::text || ' ' || (date_part('epoch', ${e}recorded_at) * 1000)::text || ' ' ` +
  `|| ${e}event_id::text as k`

// empty metadata (the common case) comes back as null: no JSON parse per row
const columns = `${packed("")}, type, data, nullif(metadata, '{}'::jsonb) as metadata`

/** @internal */
export const make = <R>(
  options: Options<R> = {}
): Effect.Effect<
  EventStore.EventStore.Service,
  EventStore.EventStoreError,
  SqlClient.SqlClient | PgClient.PgClient | Scope.Scope | R
> =>
  Effect.gen(function*() {
    const schema = yield* schemaSql.validSchema("make", options.schema)
    const pageSize = options.pageSize ?? defaultPageSize
    const globalPageSize = options.pageSize ?? defaultGlobalPageSize
    if (!Number.isSafeInteger(pageSize) || pageSize < 1) {
      return yield* new EventStore.EventStoreError({
        method: "make",
        cause: new RangeError(`invalid pageSize ${String(pageSize)}`)
      })
    }
    const pollInterval = Duration.decode(options.pollInterval ?? "1 second")
    const watchdogInterval = Duration.decode(options.watchdogInterval ?? "10 seconds")
    const notifyMode = options.notify ?? "afterCommit"
    const inline = options.inline ?? []
    const channel = schema

    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const pg = yield* PgClient.PgClient
    const context = yield* Effect.context<R>()
    const scope = yield* Effect.scope

    yield* schemaSql.migrate(sql, schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((cause) => new EventStore.EventStoreError({ method: "make", cause }))
    )

    const s = `"${schema}"`
    // every append but the single-request one (see migration 4), which takes its events as one jsonb document
    const appendSql = `select version, positions from ${s}.append($1::text[], $2::text[], $3::bigint[], $4::int[], ` +
      `$5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz, $10::text)`
    const appendOneSql = `select version, positions from ${s}.append_one($1::text, $2::text, $3::bigint, $4::jsonb, ` +
      `$5::timestamptz, $6::text)`

    // ---------------------------------------------------------------------------------------------------------
    // wake-ups: local appends and LISTEN notifications wake subscribers; polling is the truth
    // ---------------------------------------------------------------------------------------------------------

    // created only when a subscriber waits: an append with nobody waiting allocates nothing
    let signal: Deferred.Deferred<void> | undefined
    const currentSignal = (): Deferred.Deferred<void> => signal ??= Deferred.unsafeMake<void>(FiberId.none)
    const wakeNow = (): void => {
      const current = signal
      if (current === undefined) return
      signal = undefined
      Deferred.unsafeDone(current, Exit.void)
    }
    const wake = Effect.sync(wakeNow)

    const outsideTransaction = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.mapInputContext(
        effect,
        (ctx: Context.Context<never>) => Context.omit(SqlClient.TransactionConnection)(ctx)
      )

    let dirty = false
    let notifierSignal = Deferred.unsafeMake<void>(FiberId.none)
    let lastPosition = 0
    const markDirty = (position: number) => {
      if (position > lastPosition) lastPosition = position
      if (dirty) return
      dirty = true
      Deferred.unsafeDone(notifierSignal, Exit.void)
    }
    if (notifyMode === "afterCommit") {
      // one pg_notify at a time, coalescing the appends that committed meanwhile (a hint only)
      yield* Effect.gen(function*() {
        yield* Deferred.await(notifierSignal)
        notifierSignal = Deferred.unsafeMake<void>(FiberId.none)
        dirty = false
        yield* outsideTransaction(sql`select pg_notify(${channel}, ${String(lastPosition)})`).pipe(Effect.ignore)
        yield* Effect.sleep("5 millis")
      }).pipe(Effect.forever, Effect.interruptible, Effect.forkIn(scope))
    }

    const listener = Effect.gen(function*() {
      const client = pg
      const ping = `ping:${globalThis.crypto.randomUUID()}`
      let pong = Deferred.unsafeMake<void>(FiberId.none)
      const listen = Stream.runForEach(client.listen(channel), (payload) => {
        if (payload === ping) return Deferred.succeed(pong, undefined)
        return wake
      })
      const watchdog = Effect.gen(function*() {
        yield* Effect.sleep(watchdogInterval)
        pong = Deferred.unsafeMake<void>(FiberId.none)
        yield* outsideTransaction(sql`select pg_notify(${channel}, ${ping})`)
        const answered = yield* Deferred.await(pong).pipe(Effect.timeout(watchdogInterval), Effect.option)
        if (Option.isNone(answered)) return yield* Effect.fail("LISTEN connection lost")
      }).pipe(Effect.forever)
      // whatever ends first (the LISTEN stream failing, or the watchdog missing its ping) restarts both
      yield* Effect.raceFirst(Effect.exit(listen), Effect.exit(watchdog))
      // events may have been committed while nobody listened: subscribers poll now
      yield* wake
      yield* Effect.sleep("500 millis")
    }).pipe(
      Effect.catchAllCause(() => Effect.sleep("500 millis")),
      Effect.forever,
      Effect.interruptible
    )
    const startListener = yield* Effect.once(Effect.asVoid(Effect.forkIn(listener, scope)))

    const withContext = <A, E>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E> =>
      Effect.mapInputContext(effect, (current: Context.Context<never>) => Context.merge(context, current))

    // ---------------------------------------------------------------------------------------------------------
    // append
    // ---------------------------------------------------------------------------------------------------------

    /**
     * Validates and encodes the requests (synchronously: this is the hot path of every append). An `Exact` version
     * that is not a non-negative integer never matches (as in the in-memory store): returns that request's index.
     */
    const prepare = (
      method: string,
      requests: ReadonlyArray<EventStore.AppendRequest>,
      recordedMillis: number
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
      const channelParam = notifyMode === "inTransaction" ? channel : null
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

    const versionOf = (streamId: string) =>
      Effect.map(
        sql.unsafe<{ version: string }>(
          `select coalesce(max(version), 0) as version from ${s}.events where stream_id = $1`,
          [streamId]
        ),
        (rows) => rows.length === 0 ? 0 : Number(rows[0]!.version)
      )

    /**
     * Idempotency by event id, the same rules as the in-memory store: `undefined` when no given id is stored,
     * the original results when every request is a batch committed before, an `EventIdConflict` otherwise.
     */
    const replayed = (
      prepared: Prepared
    ): Effect.Effect<
      Exit.Exit<ReadonlyArray<EventStore.AppendResult>, EventStore.EventIdConflict> | undefined,
      SqlError
    > =>
      Effect.gen(function*() {
        const seen = new Set<string>()
        const given: Array<string> = []
        for (let i = 0; i < prepared.requests.length; i++) {
          for (const event of prepared.events[i]!) {
            if (!event.given) continue
            if (seen.has(event.id)) {
              return Exit.fail(
                new EventStore.EventIdConflict({
                  streamId: prepared.requests[i]!.streamId,
                  eventId: event.id,
                  reason: "the id appears twice in the same append"
                })
              )
            }
            seen.add(event.id)
            given.push(event.id)
          }
        }
        if (given.length === 0) return undefined
        const rows = yield* fetchStored(given)
        if (rows.length === 0) return undefined
        const stored = new Map(rows.map((row) => [row.id, row]))
        const results: Array<EventStore.AppendResult> = []
        for (let i = 0; i < prepared.requests.length; i++) {
          const request = prepared.requests[i]!
          let last: StoredRow | undefined
          for (const event of prepared.events[i]!) {
            const row = event.given ? stored.get(event.id) : undefined
            const reason = row === undefined
              ? "the batch mixes new events with stored ones"
              : row.stream_id !== request.streamId
              ? `it is stored in stream ${row.stream_id}`
              : last !== undefined && Number(row.version) !== Number(last.version) + 1
              ? "it is stored at another version"
              : !StoreKit.sameContent({ type: event.type, data: JSON.parse(event.dataJson) }, row)
              ? "it is stored with other content"
              : undefined
            if (row === undefined || reason !== undefined) {
              return Exit.fail(
                new EventStore.EventIdConflict({
                  streamId: request.streamId,
                  eventId: event.given ? event.id : "",
                  reason: reason ?? "the batch mixes new events with stored ones"
                })
              )
            }
            last = row
          }
          results.push(
            last === undefined
              ? { version: yield* outsideTransaction(versionOf(request.streamId)), position: 0 }
              : { version: Number(last.version), position: Number(last.position) }
          )
        }
        return Exit.succeed(results)
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
      rows: ReadonlyArray<{ readonly version: string; readonly positions: ReadonlyArray<string> }>
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

    type Rows = ReadonlyArray<{ version: string; positions: ReadonlyArray<string> }>

    const isVersionKeyViolation = (error: SqlError | EventStore.EventStoreError | EventStore.CommitOutcomeUnknown) =>
      error._tag === "SqlError" && sqlState(error) === "23505" && constraintOf(error) === "events_stream_version_key"

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
          if (!joined && isConnectionLoss(error)) return checkCommitted(method, prepared, error)
          return Effect.flatMap(
            mapFailure(method, prepared, error),
            (mapped) => mapped._tag === "Committed" ? Effect.succeed(mapped.results) : Effect.fail(mapped)
          )
        }
      }
    }

    const committed = (prepared: Prepared, rows: Rows): ReadonlyArray<EventStore.AppendResult> => {
      let top = 0
      const results = new Array<EventStore.AppendResult>(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]!
        const positions = row.positions
        const position = prepared.events[i]!.length === 0 ? 0 : Number(positions[positions.length - 1])
        if (position > top) top = position
        results[i] = { version: Number(row.version), position }
      }
      if (top > 0) {
        wakeNow()
        if (notifyMode === "afterCommit") markDirty(top)
      }
      return results
    }

    // The hot path of every append: one fiber-runtime step reads the clock and the caller's transaction (if any),
    // the requests are encoded synchronously, then exactly one statement runs.
    const commit = (
      method: string,
      requests: ReadonlyArray<EventStore.AppendRequest>
    ): Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError> =>
      Effect.withFiberRuntime((fiber) => {
        const millis = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const prepared = prepare(method, requests, millis)
        if (typeof prepared === "number") return neverMatches(method, requests[prepared]!)
        if (prepared instanceof EventStore.EventStoreError) return Effect.fail(prepared)
        const joined = Context.getOption(fiber.currentContext, SqlClient.TransactionConnection)._tag === "Some"
        const call = sql.unsafe<Rows[number]>(prepared.one ? appendOneSql : appendSql, prepared.params)
        // a transaction of our own only when needed: inline projections, or a savepoint inside the caller's one
        const ownTransaction = !joined && inline.length > 0
        const run: Effect.Effect<Rows, SqlError | EventStore.EventStoreError | EventStore.CommitOutcomeUnknown> =
          joined || ownTransaction
            ? sql.withTransaction(Effect.tap(call, (rows) => runInline(method, prepared, rows))).pipe(
              Effect.catchAllDefect((defect) =>
                // the COMMIT failed (@effect/sql turns that into a defect)
                Effect.fail(
                  typeof defect === "object" && defect !== null && "_tag" in defect && defect._tag === "SqlError" &&
                    sqlState(defect as SqlError) === undefined
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
          onSuccess: (rows) => Effect.succeed(committed(prepared, rows))
        })
      })

    /** Maps a failed append statement to the port's errors (the idempotency check runs on this path only). */
    const mapFailure = (
      method: string,
      prepared: Prepared,
      error: SqlError
    ): Effect.Effect<
      | EventStore.ConcurrencyConflict
      | EventStore.EventIdConflict
      | EventStore.EventStoreError
      | { readonly _tag: "Committed"; readonly results: ReadonlyArray<EventStore.AppendResult> },
      never
    > =>
      Effect.gen(function*() {
        const code = sqlState(error)
        const isConflict = code === schemaSql.conflictCode ||
          (code === "23505" && constraintOf(error) === "events_stream_version_key")
        if (isConflict || (code === "23505" && constraintOf(error) === "events_event_id_key")) {
          const replay = yield* replayed(prepared)
          if (replay !== undefined) {
            return Exit.isSuccess(replay) ? { _tag: "Committed" as const, results: replay.value } : Cause.isFailType(
                replay.cause
              ) ?
              replay.cause.error :
              new EventStore.EventStoreError({ method, cause: error })
          }
        }
        if (code === schemaSql.conflictCode) {
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

    // ---------------------------------------------------------------------------------------------------------
    // reads
    // ---------------------------------------------------------------------------------------------------------

    const storeError = (method: string) => (cause: unknown) => new EventStore.EventStoreError({ method, cause })

    const read = (
      streamId: StreamId.StreamId,
      readOptions: EventStore.ReadOptions = {}
    ): Stream.Stream<EventStore.RecordedEvent, EventStore.EventStoreError> =>
      Stream.suspend((): Stream.Stream<EventStore.RecordedEvent, SqlError> => {
        const backward = readOptions.direction === "backward"
        const limit = readOptions.limit
        if (limit !== undefined && limit <= 0) return Stream.empty
        let low = Math.max(1, readOptions.from ?? 1)
        let high = readOptions.to ?? Number.MAX_SAFE_INTEGER
        let remaining = limit ?? Number.POSITIVE_INFINITY
        const text = `select ${columns} from ${s}.events where stream_id = $1 and version >= $2 and version <= $3 ` +
          `order by version ${backward ? "desc" : "asc"} limit $4`
        return Stream.paginateChunkEffect(true, (more): Effect.Effect<
          readonly [Chunk.Chunk<EventStore.RecordedEvent>, Option.Option<boolean>],
          SqlError
        > => {
          if (!more || low > high || remaining <= 0) {
            return Effect.succeed([Chunk.empty<EventStore.RecordedEvent>(), Option.none<boolean>()] as const)
          }
          const size = Math.min(pageSize, remaining)
          // one row more than the page tells whether another page follows, without an extra query at the end
          return Effect.map(sql.unsafe<EventRow>(text, [streamId, low, high, size + 1]), (rows) => {
            const more = rows.length > size
            const count = more ? size : rows.length
            const events = new Array<EventStore.RecordedEvent>(count)
            for (let i = 0; i < count; i++) events[i] = toRecorded(rows[i]!, streamId)
            remaining -= events.length
            if (events.length > 0) {
              const edge = events[events.length - 1]!.version
              if (backward) high = edge - 1
              else low = edge + 1
            }
            return [Chunk.unsafeFromArray(events), more ? Option.some(true) : Option.none<boolean>()] as const
          })
        })
      }).pipe(Stream.mapError(storeError("read")))

    const filterSql = (filter: EventStore.Filter | undefined, params: Array<unknown>): string => {
      if (filter === undefined) return ""
      let out = ""
      if (filter.categories !== undefined) {
        params.push([...filter.categories])
        out += ` and e.category = any($${params.length}::text[])`
      }
      if (filter.types !== undefined) {
        params.push([...filter.types])
        out += ` and e.type = any($${params.length}::text[])`
      }
      if (filter.streamIds !== undefined) {
        params.push([...filter.streamIds])
        out += ` and e.stream_id = any($${params.length}::text[])`
      }
      if (filter.after !== undefined) {
        params.push(DateTime.formatIso(DateTime.toUtc(filter.after)))
        out += ` and e.recorded_at > $${params.length}::timestamptz`
      }
      if (filter.before !== undefined) {
        params.push(DateTime.formatIso(DateTime.toUtc(filter.before)))
        out += ` and e.recorded_at < $${params.length}::timestamptz`
      }
      return out
    }

    /**
     * One page of the global log after `cursor`, cut before the first row that is not yet safe (see the gap-safety
     * note of the migration). `blocked`: the cut stopped the page early.
     */
    const globalPage = (
      cursor: number,
      head: number | undefined,
      filter: EventStore.Filter | undefined,
      size: number
    ) => {
      // The head is cut on the client: a two-sided range (`position > $1 and position <= head`) on a freshly filled
      // table (no statistics yet) makes the planner pick a bitmap scan plus a sort of the whole remaining range on
      // every page; `position > $1 order by position limit $2` is an ordered scan of one page.
      const params: Array<unknown> = [cursor, size]
      // Each value of the most selective filter gets its own keyset scan of an index ordered by position
      // ((category, position), (type, position)), merged by a union: `= any(...)` would read every matching row
      // and sort them on every page.
      const { categories, streamIds, types, ...times } = filter ?? {}
      const [column, values, rest]: readonly [string, ReadonlyArray<string>, EventStore.Filter] =
        categories !== undefined
          ? ["category", categories, { ...times, ...(types && { types }), ...(streamIds && { streamIds }) }]
          : types !== undefined
          ? ["type", types, { ...times, ...(streamIds && { streamIds }) }]
          : streamIds !== undefined
          ? ["stream_id", streamIds, times]
          : ["", [], times]
      const conditions = filterSql(rest, params)
      const branch = (condition: string) =>
        `select * from ${s}.events e where e.position > $1${condition}${conditions} ` +
        `order by e.position limit $2`
      let inner: string
      if (column === "") {
        inner = branch("")
      } else if (values.length === 0) {
        inner = `${branch("")} offset 0 limit 0`
      } else {
        const branches = [...new Set(values)].map((value) => {
          params.push(value)
          return `(${branch(` and e.${column} = $${params.length}`)})`
        })
        inner = branches.length === 1
          ? branches[0]!
          : `select * from (${branches.join(" union all ")}) u order by u.position limit $2`
      }
      const text =
        `select ${packed("e.")}, e.stream_id, e.type, e.data, nullif(e.metadata, '{}'::jsonb) as metadata, ` +
        `e.xid < s.xmin as safe ` +
        `from (select pg_snapshot_xmin(pg_current_snapshot()) as xmin) s cross join lateral (${inner}) e`
      const query = sql.unsafe<GlobalRow>(text, params)
      // without fresh statistics (a table filled quickly) the planner prefers a bitmap scan of every matching row
      // and a sort, on every page; the ordered index scan reads one page
      const run = column === ""
        ? query
        : Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (joined) =>
          Option.isSome(joined)
            ? query
            : sql.withTransaction(Effect.zipRight(sql.unsafe("set local enable_bitmapscan = off"), query)))
      return Effect.map(run, (rows) => {
        const events: Array<EventStore.RecordedEvent> = []
        let blocked = false
        let atHead = false
        for (const row of rows) {
          if (!row.safe) {
            blocked = true
            break
          }
          const event = toRecorded(row, undefined)
          if (head !== undefined && event.position > head) {
            atHead = true
            break
          }
          events.push(event)
        }
        return { events, blocked, atHead, full: rows.length === size }
      })
    }

    const readAll = (readOptions: EventStore.ReadAllOptions = {}) => {
      const stream = Stream.unwrap(
        Effect.map(
          sql.unsafe<{ head: string | null }>(`select max(position) as head from ${s}.events`),
          (rows) => {
            const head = Number(rows[0]?.head ?? 0)
            return Stream.paginateChunkEffect(Math.max(1, readOptions.from ?? 1) - 1, (cursor) =>
              Effect.map(globalPage(cursor, head, readOptions.filter, globalPageSize), (page) => {
                const next = page.events.length === 0 ? cursor : page.events[page.events.length - 1]!.position
                return [
                  Chunk.unsafeFromArray(page.events),
                  page.full && !page.blocked && !page.atHead && next < head ? Option.some(next) : Option.none()
                ]
              }))
          }
        )
      ).pipe(Stream.mapError(storeError("readAll")))
      return readOptions.limit === undefined ? stream : Stream.take(stream, readOptions.limit)
    }

    const subscribe = (subscribeOptions: EventStore.SubscribeOptions = {}) =>
      Stream.unwrap(Effect.sync(() => {
        let cursor = Math.max(1, subscribeOptions.from ?? 1) - 1
        let caughtUp = false
        let pending = currentSignal()
        return Stream.repeatEffectChunk(Effect.gen(function*() {
          if (caughtUp) {
            yield* Deferred.await(pending).pipe(Effect.timeout(pollInterval), Effect.ignore)
          }
          // taken before the query, so that a wake-up during the query is not lost
          pending = currentSignal()
          // a poll that lost its connection is tried again (the pool replaces it) before the stream fails
          const page = yield* globalPage(cursor, undefined, subscribeOptions.filter, globalPageSize).pipe(
            Effect.retry({ while: isConnectionLoss, schedule: Schedule.exponential("50 millis"), times: 5 })
          )
          if (page.events.length > 0) {
            cursor = page.events[page.events.length - 1]!.position
          }
          caughtUp = !page.full || page.blocked
          return Chunk.unsafeFromArray(page.events)
        }))
      })).pipe(
        Stream.onStart(startListener),
        Stream.mapError(storeError("subscribe"))
      )

    // ---------------------------------------------------------------------------------------------------------
    // delete and lock
    // ---------------------------------------------------------------------------------------------------------

    const deleteStream = (streamId: StreamId.StreamId) => {
      const hooks = Effect.forEach(
        inline,
        (projection) => projection.onDelete === undefined ? Effect.void : withContext(projection.onDelete(streamId)),
        { discard: true }
      ).pipe(Effect.mapError(storeError("delete")))
      const remove = sql.unsafe(
        `with n as (delete from ${s}.snapshots where stream_id = $1) ` +
          `delete from ${s}.events where stream_id = $1`,
        [streamId]
      )
      return sql.withTransaction(Effect.zipRight(hooks, remove)).pipe(
        Effect.catchAllDefect((defect) => Effect.fail(defect)),
        Effect.mapError((cause) =>
          typeof cause === "object" && cause !== null && "_tag" in cause && cause._tag === "EventStoreError"
            ? cause as EventStore.EventStoreError
            : new EventStore.EventStoreError({ method: "delete", cause })
        ),
        Effect.asVoid
      )
    }

    const lock = (streamId: StreamId.StreamId) =>
      Effect.gen(function*() {
        const conn = yield* sql.reserve
        const key = `effect-eventsourcing:${schema}:lock:${streamId}`
        // unlock unconditionally (ignoring failures: the connection may be gone, and the lock with it); an
        // interrupted wait is cancelled on the server by @effect/sql-pg before this runs
        yield* Effect.addFinalizer(() =>
          conn.execute("select pg_advisory_unlock(hashtextextended($1, 0))", [key], undefined).pipe(Effect.ignore)
        )
        yield* conn.execute("select pg_advisory_lock(hashtextextended($1, 0))", [key], undefined)
      }).pipe(Effect.mapError(storeError("lock")))

    return EventStore.make({
      append: (streamId, events, expected) =>
        Effect.map(commit("append", [{ streamId, events, expected }]), (results) => results[0]!),
      appendMany: (requests) => commit("appendMany", requests),
      read,
      streamVersion: (streamId) => versionOf(streamId).pipe(Effect.mapError(storeError("streamVersion"))),
      readAll,
      subscribe,
      delete: deleteStream,
      lock
    })
  })
