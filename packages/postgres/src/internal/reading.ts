/**
 * Reads: one stream by version, the global log by position (gap-safe pages, filters), subscriptions (catch-up, then
 * polling woken by the notifier), and the decoding of rows into recorded events.
 *
 * @internal
 */
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as StoreKit from "@effect-eventsourcing/core/StoreKit"
import type * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Chunk from "effect/Chunk"
import * as DateTime from "effect/DateTime"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { writersKey } from "./migrations/0005_writers_key.js"
import type { Signal } from "./notification.js"
import { isConnectionLoss, storeError } from "./sqlErrors.js"
import { transaction } from "./transaction.js"

interface EventRow {
  /** `"<position> <version> <recorded at, epoch ms> <event id>"` (see `packed`) */
  readonly k: string
  readonly stream_id: string
  readonly type: string
  readonly data: unknown
  readonly metadata: unknown
}

interface GlobalRow extends EventRow {
  /** the row's recorded id is below the horizon (see `horizon`) */
  readonly safe: boolean
}

/**
 * The gap-safety horizon of a global read, as one SQL expression (of type xid8) evaluated in the statement that reads
 * the page (`schema` unquoted): a row is handed out only when the id recorded with it (`xid`) is below it, and a page
 * stops at the first row that is not.
 *
 * It is the statement snapshot's xmin (the oldest transaction of the whole server still running), with every
 * transaction left out that is proven not to be a writer of this store: then a long transaction in another
 * database, or in this database without this store's positions, holds back nothing.
 *
 * H = min(xmax of the snapshot S, the ids in S's running list `xip` except those proven foreign), where an id x of
 * `xip` is proven foreign when ONE scan of `pg_locks` (taken after S: the snapshot is taken when the statement
 * starts) shows x's own lock (`transactionid`, ExclusiveLock) held by a virtual transaction V that holds no writer
 * lock of this store: neither the writers' key of migration 5 (advisory, this database) nor any lock on the
 * position sequence. Everything else is kept, in particular an x without a lock row (ended meanwhile, or its id just
 * assigned and its lock not yet taken). A prepared transaction keeps its virtual transaction id (the one it had, or
 * `-1/<x>` after a restart) for all its locks.
 *
 * Why no event can later commit behind a reader (the order promise). Suppose the page hands out the row of
 * transaction R at position p (visible to S, so R committed before S, and recorded w < H) and a transaction T holds a
 * position p' < p that is not visible to S and may still commit. T took p' before R took p (positions are taken in
 * order, one transaction at a time), hence before S, so T had an id by then, running at S: x = id(T) is in `xip`
 * or >= xmax. By the recorded-id rule of migration 1, id(T) <= w (T was still running when R took its positions and
 * recorded w). And T holds a writer lock from before taking p' until it ends: the writers' key is taken before the
 * positions (migration 5), and `nextval` locks the sequence (RowExclusiveLock, owned by the top-level transaction)
 * before it hands out a value. At the scan (after S), either T has ended (its locks are gone: x is kept) or it holds
 * its writer lock under its own V, shown by the same scan (the key is in the main lock table, read as one picture;
 * the sequence lock may be a fast-path lock, read backend by backend BEFORE the main table: a lock held from before
 * S until after the main table is read is shown either way) - x is kept. Either way H <= x = id(T) <= w < H, a
 * contradiction. No step needs S to be the latest snapshot, so the statement may run in any transaction.
 *
 * Ids are compared as 32-bit xids (`pg_locks` has no epoch): the running ids are less than 2^31 apart, so equal
 * 32-bit ids are the same transaction. On a standby `pg_locks` shows no such rows: nothing is left out.
 *
 * @internal
 */
export const horizon = (schema: string): string => {
  const s = `"${schema}"`
  const key = writersKey(schema)
  return `(with l as materialized (
    select l.virtualtransaction as v, l.transactionid as x, l.locktype <> 'transactionid' as writer
    from pg_catalog.pg_locks l
    where (l.locktype = 'transactionid' and l.mode = 'ExclusiveLock' and l.granted)
      or (l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
        and ((l.locktype = 'advisory' and l.objsubid = 1 and l.classid = ((${key} >> 32) & 4294967295)::oid
            and l.objid = (${key} & 4294967295)::oid)
          or (l.locktype = 'relation' and l.relation = '${s}.events_position_seq'::regclass)))
  )
  select least(pg_snapshot_xmax(c.snap), (
    select min(i.x) from pg_snapshot_xip(c.snap) as i(x)
    where not exists (
      select from l r
      where r.x = xid(i.x) and not r.writer
        and not exists (select from l h where h.v = r.v and h.writer))))
  from (select pg_current_snapshot() as snap) c)`
}

// consecutive rows usually share their commit time: reuse the DateTime (StoreKit's per-millisecond cache)
const dateTimeOf = StoreKit.makeDateTimeCache()

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

/** A row of the global log read with deletions: a tombstone's row has no type (null; see `globalPage`). */
const toEntry = (row: GlobalRow): EventStore.LogEntry => {
  if ((row.type as string | null) !== null) return toRecorded(row, undefined)
  const k = row.k
  const a = k.indexOf(" ")
  const b = k.indexOf(" ", a + 1)
  const c = k.indexOf(" ", b + 1)
  return {
    _tag: "Tombstone",
    streamId: row.stream_id as StreamId.StreamId,
    version: numberAt(k, a + 1, b),
    position: numberAt(k, 0, a),
    recordedAt: dateTimeOf(Math.round(numberAt(k, b + 1, c)))
  }
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

interface FoldRow {
  /** `"<version> <position>"` */
  readonly k: string
  readonly type: string
  readonly data: unknown
}

const toFoldEvent = (row: FoldRow): EventStore.FoldEvent => {
  const k = row.k
  const a = k.indexOf(" ")
  return { version: numberAt(k, 0, a), position: numberAt(k, a + 1, k.length), type: row.type, data: row.data }
}

/**
 * Rows per query when no `pageSize` is given: a stream of up to this many events is read in one round trip, and the
 * global log in few (constant memory either way).
 *
 * @internal
 */
export const defaultPageSize = 5_000

/**
 * Rows per query of `readAll` and `subscribe` when no `pageSize` is given (measured: 5,000 reads the global log no
 * faster than 1,000 here, and grows the reader's heap by ~20 MB more).
 *
 * @internal
 */
export const defaultGlobalPageSize = 1_000

/**
 * The fixed-format fields of a row in one text column `k`: position, version, recorded time (epoch milliseconds) and
 * event id, separated by spaces (none of them contains one; all are `not null`). The pg driver's cost is per field
 * (a string decode and a type parser each): 1,000 rows of a stream read took 2.1-2.5 ms of client CPU instead of
 * 3.2-4.4 ms with the four separate columns (pg.Client, same query otherwise).
 */
const packed = (e: string, eventId = `${e}event_id::text`) =>
  `${e}position::text || ' ' || ${e}version::text || ' ' || (date_part('epoch', ${e}recorded_at) * 1000)::text || ' ' ` +
  `|| ${eventId} as k`

// empty metadata (the common case) comes back as null: no JSON parse per row
const columns = `${packed("")}, type, data, nullif(metadata, '{}'::jsonb) as metadata`

// what a fold needs (`EventStore.FoldEvent`): three fields per row (the version and position packed as in `packed`)
const foldColumns = `version::text || ' ' || position::text as k, type, data`

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

type Implementation = Parameters<typeof EventStore.make>[0]

/** @internal */
export interface Reader {
  readonly read: EventStore.EventStore.Service["read"]
  readonly readForFold: EventStore.EventStore.Service["readForFold"]
  readonly readAll: Implementation["readAll"]
  readonly subscribe: Implementation["subscribe"]
  /** the stream's version (0 when it has no events) */
  readonly versionOf: (streamId: string) => Effect.Effect<number, SqlError>
  readonly headPosition: EventStore.EventStore.Service["headPosition"]
}

/** @internal */
export const make = (options: {
  readonly sql: SqlClient.SqlClient
  /** the quoted schema name */
  readonly s: string
  readonly pageSize: number
  readonly globalPageSize: number
  readonly pollInterval: Duration.Duration
  readonly signal: Signal
  readonly startListener: Effect.Effect<void>
}): Reader => {
  const { globalPageSize, pageSize, pollInterval, s, signal, sql, startListener } = options
  // the quoted name's inside (the name is a validated plain identifier)
  const horizonSql = horizon(s.slice(1, -1))

  const versionOf = (streamId: string) =>
    Effect.map(
      sql.unsafe<{ version: string }>(
        `select coalesce(max(version), 0) as version from ${s}.events where stream_id = $1`,
        [streamId]
      ),
      (rows) => rows.length === 0 ? 0 : Number(rows[0]!.version)
    )

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

  const foldText = `select ${foldColumns} from ${s}.events where stream_id = $1 and version >= $2 and version <= $3 ` +
    `order by version asc limit $4`
  const readForFold = (
    streamId: StreamId.StreamId,
    foldOptions: EventStore.FoldOptions = {}
  ): Effect.Effect<ReadonlyArray<EventStore.FoldEvent>, EventStore.EventStoreError> => {
    if (foldOptions.limit !== undefined && foldOptions.limit <= 0) return Effect.succeed([])
    // one query: `limit null` is no limit (the caller chose the page)
    const params = [
      streamId,
      Math.max(1, foldOptions.from ?? 1),
      foldOptions.to ?? Number.MAX_SAFE_INTEGER,
      foldOptions.limit ?? null
    ]
    return Effect.mapError(
      Effect.map(sql.unsafe<FoldRow>(foldText, params), (rows) => {
        const events = new Array<EventStore.FoldEvent>(rows.length)
        for (let i = 0; i < rows.length; i++) events[i] = toFoldEvent(rows[i]!)
        return events
      }),
      storeError("readForFold")
    )
  }

  /**
   * One page of the global log after `cursor`, cut before the first row that is not yet safe (see `horizon`).
   * `blocked`: the cut stopped the page early.
   */
  const globalPage = (
    cursor: number,
    head: number | undefined,
    filter: EventStore.Filter | undefined,
    size: number,
    deletions: boolean
  ) => {
    // The head is cut on the client: a two-sided range (`position > $1 and position <= head`) on a freshly filled
    // table (no statistics yet) makes the planner pick a bitmap scan plus a sort of the whole remaining range on
    // every page; `position > $1 order by position limit $2` is an ordered scan of one page.
    const params: Array<unknown> = [cursor, size]
    // Each value of the most selective filter gets its own keyset scan of an index ordered by position
    // ((category, position), (type, position)), merged by a union: `= any(...)` would read every matching row
    // and sort them on every page.
    const { categories, streamIds, types, ...times } = filter ?? {}
    const [column, values, rest]: readonly [string, ReadonlyArray<string>, EventStore.Filter] = categories !== undefined
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
    if (deletions) {
      // the tombstones (migration 8) merged in position order, cut at the same horizon: the rows of both tables are
      // allocated positions and recorded ids alike; a tombstone has no event id, type, data nor metadata, and a
      // types filter never excludes it
      const untyped = { ...times, ...(categories && { categories }), ...(streamIds && { streamIds }) }
      const tombstoneConditions = filterSql(untyped, params)
      const tombstones =
        `select e.position, null::uuid, e.stream_id, e.category, e.version, null::text, null::jsonb, ` +
        `null::jsonb, e.recorded_at, e.xid from ${s}.tombstones e where e.position > $1${tombstoneConditions} ` +
        `order by e.position limit $2`
      inner = `select * from ((${inner}) union all (${tombstones})) x order by x.position limit $2`
    }
    const text =
      `select ${
        deletions ? packed("e.", "coalesce(e.event_id::text, '')") : packed("e.")
      }, e.stream_id, e.type, e.data, nullif(e.metadata, '{}'::jsonb) as metadata, ` +
      `e.xid < s.horizon as safe ` +
      `from (select ${horizonSql} as horizon) s cross join lateral (${inner}) e`
    const query = sql.unsafe<GlobalRow>(text, params)
    // without fresh statistics (a table filled quickly) the planner prefers a bitmap scan of every matching row
    // and a sort, on every page; the ordered index scan reads one page
    const run = column === ""
      ? query
      : Effect.flatMap(Effect.serviceOption(SqlClient.TransactionConnection), (joined) =>
        Option.isSome(joined)
          ? query
          : transaction(sql, Effect.zipRight(sql.unsafe("set local enable_bitmapscan = off"), query)))
    return Effect.map(run, (rows) => {
      const events: Array<EventStore.LogEntry> = []
      let blocked = false
      let atHead = false
      for (const row of rows) {
        if (!row.safe) {
          blocked = true
          break
        }
        const event = deletions ? toEntry(row) : toRecorded(row, undefined)
        if (head !== undefined && event.position > head) {
          atHead = true
          break
        }
        events.push(event)
      }
      return { events, blocked, atHead, full: rows.length === size }
    })
  }

  const readAll = (readOptions: EventStore.ReadAllOptions & Partial<EventStore.WithDeletions> = {}) => {
    const deletions = readOptions.deletions === true
    const stream = Stream.unwrap(
      Effect.map(
        sql.unsafe<{ head: string | null }>(
          deletions
            ? `select greatest((select max(position) from ${s}.events), (select max(position) from ${s}.tombstones)) ` +
              `as head`
            : `select max(position) as head from ${s}.events`
        ),
        (rows) => {
          const head = Number(rows[0]?.head ?? 0)
          return Stream.paginateChunkEffect(
            Math.max(1, readOptions.from ?? 1) - 1,
            (cursor) =>
              Effect.map(globalPage(cursor, head, readOptions.filter, globalPageSize, deletions), (page) => {
                const next = page.events.length === 0 ? cursor : page.events[page.events.length - 1]!.position
                return [
                  Chunk.unsafeFromArray(page.events),
                  page.full && !page.blocked && !page.atHead && next < head ? Option.some(next) : Option.none()
                ]
              })
          )
        }
      )
    ).pipe(Stream.mapError(storeError("readAll")))
    return readOptions.limit === undefined ? stream : Stream.take(stream, readOptions.limit)
  }

  const subscribe = (subscribeOptions: EventStore.SubscribeOptions & Partial<EventStore.WithDeletions> = {}) =>
    Stream.unwrap(Effect.sync(() => {
      const deletions = subscribeOptions.deletions === true
      let cursor = Math.max(1, subscribeOptions.from ?? 1) - 1
      let caughtUp = false
      let pending = signal.next()
      return Stream.repeatEffectChunk(Effect.gen(function*() {
        if (caughtUp) {
          yield* Deferred.await(pending).pipe(Effect.timeout(pollInterval), Effect.ignore)
        }
        // taken before the query, so that a wake-up during the query is not lost
        pending = signal.next()
        // a poll that lost its connection is tried again (the pool replaces it) before the stream fails
        const page = yield* globalPage(cursor, undefined, subscribeOptions.filter, globalPageSize, deletions).pipe(
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

  /**
   * The last position below the first row that is not yet safe (the first row a reader would stop at), read from
   * the top of the log down, page by page: the rows that are not safe are the ones committed since the oldest
   * writer still running took its id, the top of the log. The walk ends at the first page without any (or at the
   * start of the log), so a log without writers in flight costs one page of the primary key.
   *
   * The log is both tables: a tombstone (migration 8) takes its position from the same sequence in the same critical
   * section as events, so a log whose last entry is a deletion is at the tombstone's position, and a deletion in
   * flight holds the head back like an append in flight.
   */
  const headPage = `select e.position::text as position, e.xid < s.horizon as safe
    from (select ${horizonSql} as horizon) s
    cross join lateral (
      select position, xid from (
        (select position, xid from ${s}.events where position < $1 order by position desc limit $2)
        union all
        (select position, xid from ${s}.tombstones where position < $1 order by position desc limit $2)
      ) u order by position desc limit $2
    ) e
    order by e.position desc`
  const headPosition = Effect.gen(function*() {
    let below = Number.MAX_SAFE_INTEGER
    let head = 0
    let firstUnsafe: number | undefined
    while (true) {
      const rows = yield* sql.unsafe<{ readonly position: string; readonly safe: boolean }>(headPage, [
        below,
        globalPageSize
      ])
      let unsafeHere = false
      for (const row of rows) {
        const position = Number(row.position)
        if (!row.safe) {
          unsafeHere = true
          firstUnsafe = position
          head = 0
        } else if (head === 0 && (firstUnsafe === undefined || position < firstUnsafe)) {
          head = position
        }
      }
      if (rows.length < globalPageSize || !unsafeHere) return head
      below = Number(rows[rows.length - 1]!.position)
    }
  }).pipe(Effect.mapError(storeError("headPosition")))

  return { read, readForFold, readAll, subscribe, versionOf, headPosition }
}
