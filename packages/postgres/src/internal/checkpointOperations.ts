/**
 * The operations side of `PostgresCheckpointStore` (migration 7's columns): reset requests made from outside the
 * consumer, the last error a consumer recorded, and what the store knows about a subscription, including the
 * connection holding its lease (from `pg_locks`: the lease is a session advisory lock).
 *
 * @internal
 */
import * as CheckpointStore from "@effect-eventsourcing/core/CheckpointStore"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { outsideTransaction } from "./transaction.js"

interface RequestRow {
  readonly pending: unknown
  readonly reset_to: unknown
  readonly reset_allow_duplicates: boolean
  readonly reset_requested_at: Date | string
}

interface InfoRow extends RequestRow {
  readonly name: string
  readonly position: unknown
  readonly last_error: string | null
  readonly last_error_at: Date | string | null
  readonly holder: string | null
}

const toDateTime = (value: Date | string): DateTime.Utc => DateTime.unsafeMake(value) as DateTime.Utc

const toRequest = (row: RequestRow): Option.Option<CheckpointStore.ResetRequest> =>
  row.pending === null || row.pending === undefined ? Option.none() : Option.some({
    id: Number(row.pending),
    position: row.reset_to === null || row.reset_to === undefined ? undefined : Number(row.reset_to),
    allowDuplicates: row.reset_allow_duplicates,
    requestedAt: toDateTime(row.reset_requested_at)
  })

const storeError = (method: string) => (cause: SqlError) => new CheckpointStore.CheckpointStoreError({ method, cause })

/** @internal */
export const make = (options: {
  /** without transforms: the columns are read by their SQL names */
  readonly sql: SqlClient.SqlClient
  /** the checkpoints table, quoted and qualified (validated) */
  readonly qualified: string
}): Pick<
  CheckpointStore.CheckpointStore.Service,
  "requestReset" | "pendingReset" | "completeReset" | "recordError" | "info"
> => {
  const { qualified, sql } = options
  const requestColumns = "reset_pending as pending, reset_to, reset_allow_duplicates, reset_requested_at"
  return {
    requestReset: (name, request) =>
      Effect.zipRight(
        CheckpointStore.validatePosition("CheckpointStore.requestReset", request?.position),
        sql.unsafe<RequestRow>(
          `insert into ${qualified} as c (name, position, generation, reset_requests, reset_pending, reset_to,
             reset_allow_duplicates, reset_requested_at)
           values ($1, null, 0, 1, 1, $2, $3, now())
           on conflict (name) do update set reset_requests = c.reset_requests + 1,
             reset_pending = c.reset_requests + 1, reset_to = excluded.reset_to,
             reset_allow_duplicates = excluded.reset_allow_duplicates, reset_requested_at = now()
           returning ${requestColumns}`,
          [name, request?.position ?? null, request?.allowDuplicates ?? false]
        ).pipe(
          Effect.map((rows) => Option.getOrThrow(toRequest(rows[0]!))),
          Effect.mapError(storeError("requestReset"))
        )
      ),
    pendingReset: (name) =>
      sql.unsafe<RequestRow>(
        `select ${requestColumns} from ${qualified} where name = $1 and reset_pending is not null`,
        [name]
      ).pipe(
        Effect.map((rows) => rows.length === 0 ? Option.none() : toRequest(rows[0]!)),
        Effect.mapError(storeError("pendingReset"))
      ),
    completeReset: (name, id) =>
      sql.unsafe(`update ${qualified} set reset_pending = null where name = $1 and reset_pending = $2`, [name, id])
        .pipe(
          Effect.asVoid,
          Effect.mapError(storeError("completeReset"))
        ),
    recordError: (name, message) =>
      outsideTransaction(
        sql.unsafe(
          `insert into ${qualified} as c (name, position, generation, last_error, last_error_at)
           values ($1, null, 0, $2, now())
           on conflict (name) do update set last_error = excluded.last_error, last_error_at = now()`,
          [name, message]
        )
      ).pipe(Effect.asVoid, Effect.mapError(storeError("recordError"))),
    info: (name) =>
      sql.unsafe<InfoRow>(
        `select c.name, c.position, c.last_error, c.last_error_at, ${requestColumns},
           (select coalesce(nullif(a.application_name, ''), 'backend') || ' (pid ' || a.pid::text ||
               coalesce(', ' || host(a.client_addr), '') || ')'
             from pg_catalog.pg_locks l join pg_catalog.pg_stat_activity a on a.pid = l.pid
             where l.locktype = 'advisory' and l.granted and l.objsubid = 1
               and l.database = (select d.oid from pg_catalog.pg_database d where d.datname = current_database())
               and l.classid = ((k.key >> 32) & 4294967295)::oid and l.objid = (k.key & 4294967295)::oid
             limit 1) as holder
         from ${qualified} c
         cross join lateral (select ('x' || substr(md5($1 || ':' || c.name), 1, 16))::bit(64)::bigint as key) k
         where $2::text is null or c.name = $2
         order by c.name collate "C"`,
        [qualified, name ?? null]
      ).pipe(
        Effect.map((rows) =>
          rows.map((row): CheckpointStore.Info => ({
            name: row.name,
            position: row.position === null || row.position === undefined
              ? Option.none()
              : Option.some(Number(row.position)),
            holder: Option.fromNullable(row.holder),
            lastError: row.last_error === null || row.last_error_at === null
              ? Option.none()
              : Option.some({ message: row.last_error, at: toDateTime(row.last_error_at) }),
            resetRequest: toRequest(row)
          }))
        ),
        Effect.mapError(storeError("info"))
      )
  }
}
