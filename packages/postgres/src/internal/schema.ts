import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** @internal */
export const defaultSchema = "event_store"

/** @internal */
export const isIdentifier = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name)

/**
 * The SQLSTATE raised by the append function when an expected version does not match. The detail is
 * `<request index>:<actual version>`.
 *
 * @internal
 */
export const conflictCode = "EV409"

/**
 * Version 1 of the store's tables.
 *
 * Gap safety. Every event row records in `xid` the newest transaction id that had been assigned when the row's
 * position was allocated (the writer's own id or later; the writer's id is assigned before its positions; running
 * transactions are read from `pg_stat_activity`, as a snapshot's xmax only covers completed ones). A reader
 * hands out rows in position order and stops at the first row whose `xid` is not below the `xmin` of its snapshot:
 * below that cut every transaction that could still hold a smaller position has ended, so no event can later appear
 * behind the reader. Writers never wait for each other except on the same stream.
 *
 * @internal
 */
export const migration1 = (schema: string): string => {
  const s = `"${schema}"`
  return `
create sequence ${s}.events_position_seq as bigint;

create table ${s}.streams (
  stream_id text primary key,
  version bigint not null check (version >= 0)
);

create table ${s}.events (
  position bigint primary key,
  event_id uuid not null,
  stream_id text not null,
  category text not null,
  version bigint not null check (version >= 1),
  type text not null,
  data jsonb not null,
  metadata jsonb not null,
  recorded_at timestamptz not null,
  xid xid8 not null,
  constraint events_event_id_key unique (event_id),
  constraint events_stream_version_key unique (stream_id, version)
);
alter sequence ${s}.events_position_seq owned by ${s}.events.position;
create index events_xid_idx on ${s}.events (xid);
create index events_category_idx on ${s}.events (category, position);
create index events_type_idx on ${s}.events (type, position);

create table ${s}.snapshots (
  stream_id text primary key,
  version bigint not null,
  fingerprint text not null,
  state jsonb not null,
  taken_at timestamptz not null
);

-- Appends one or more requests atomically. Expected versions: -1 any, -2 stream exists, n >= 0 exactly n
-- (0 = no stream). Events are flattened: p_req is each event's request (1-based).
create function ${s}.append(
  p_stream_ids text[],
  p_categories text[],
  p_expected bigint[],
  p_req int[],
  p_event_ids uuid[],
  p_types text[],
  p_data jsonb[],
  p_metadata jsonb[],
  p_recorded_at timestamptz,
  p_channel text
) returns table (version bigint, positions bigint[])
language plpgsql volatile as $fn$
declare
  n int := coalesce(array_length(p_stream_ids, 1), 0);
  total int := coalesce(array_length(p_event_ids, 1), 0);
  counts int[] := array_fill(0, array[greatest(n, 1)]);
  starts bigint[] := array_fill(0::bigint, array[greatest(n, 1)]);
  firsts int[] := array_fill(0, array[greatest(n, 1)]);
  ks int[] := array_fill(0, array[greatest(total, 1)]);
  pos bigint[];
  cur bigint;
  exp bigint;
  w xid8;
  i int;
  r int;
  inserted int;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store appends must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  -- the transaction id is assigned before any position is allocated (gap safety)
  perform pg_current_xact_id();
  for i in 1 .. total loop
    r := p_req[i];
    counts[r] := counts[r] + 1;
    ks[i] := counts[r];
    if counts[r] = 1 then firsts[r] := i; end if;
  end loop;
  for i in 1 .. n loop
    exp := p_expected[i];
    select s.version into cur from ${s}.streams s where s.stream_id = p_stream_ids[i] for update;
    if not found then
      cur := 0;
      if counts[i] > 0 and exp in (-1, 0) then
        insert into ${s}.streams as s (stream_id, version) values (p_stream_ids[i], counts[i])
          on conflict (stream_id) do nothing;
        get diagnostics inserted = row_count;
        if inserted = 1 then
          starts[i] := 0;
          continue;
        end if;
        -- created meanwhile by another writer (now committed): check against its version
        select s.version into cur from ${s}.streams s where s.stream_id = p_stream_ids[i] for update;
        if not found then cur := 0; end if;
      end if;
    end if;
    if (exp = -2 and cur = 0) or (exp >= 0 and cur <> exp) then
      raise exception 'concurrency conflict' using errcode = '${conflictCode}', detail = (i - 1)::text || ':' || cur::text;
    end if;
    starts[i] := cur;
    if counts[i] > 0 then
      if cur = 0 then
        insert into ${s}.streams as s (stream_id, version) values (p_stream_ids[i], counts[i])
          on conflict (stream_id) do update set version = s.version + excluded.version;
      else
        update ${s}.streams s set version = cur + counts[i] where s.stream_id = p_stream_ids[i];
      end if;
    end if;
  end loop;
  if total > 0 then
    select array_agg(p order by p) into pos from (select nextval('${s}.events_position_seq') as p from generate_series(1, total)) q;
    -- w: at least every transaction id assigned before our positions were allocated. A snapshot's xmax only
    -- covers completed transactions, so the running ones are read from pg_stat_activity (age() is relative to
    -- our own id, which is assigned).
    perform pg_stat_clear_snapshot();
    select (greatest(
      pg_snapshot_xmax(pg_current_snapshot())::text::bigint - 1,
      pg_current_xact_id()::text::bigint + coalesce(max(-age(a.backend_xid)), 0)
    ))::text::xid8 into w
    from pg_stat_activity a where a.backend_xid is not null;
    insert into ${s}.events (position, event_id, stream_id, category, version, type, data, metadata, recorded_at, xid)
    select pos[e.o], e.id, p_stream_ids[e.r], p_categories[e.r], starts[e.r] + ks[e.o], e.t, e.d, e.m, p_recorded_at, w
    from unnest(p_event_ids, p_req, p_types, p_data, p_metadata) with ordinality as e(id, r, t, d, m, o);
    if p_channel is not null then
      perform pg_notify(p_channel, pos[total]::text);
    end if;
  end if;
  return query
    select starts[q.i] + counts[q.i],
      case when counts[q.i] = 0 then '{}'::bigint[] else pos[firsts[q.i] : firsts[q.i] + counts[q.i] - 1] end
    from generate_series(1, n) as q(i);
end
$fn$;
`
}

/** @internal */
export const migrations = (schema: string): Migrator.Loader =>
  Migrator.fromRecord({
    "1_create_event_store": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(migration1(schema)))
  })

const isRetryableDdlRace = (error: SqlError): boolean => {
  const cause: unknown = error.cause
  if (typeof cause !== "object" || cause === null || !("code" in cause)) return false
  // unique violation on the catalog, duplicate schema / table: a concurrent `create ... if not exists`
  return cause.code === "23505" || cause.code === "42P06" || cause.code === "42P07"
}

/**
 * Creates the schema and runs the migrations, serialised across processes by a transaction-scoped advisory lock
 * (the same key whoever bootstraps the schema).
 *
 * @internal
 */
export const migrate = (
  sql: SqlClient.SqlClient,
  schema: string
): Effect.Effect<ReadonlyArray<readonly [id: number, name: string]>, SqlError | Migrator.MigrationError> =>
  sql.withTransaction(
    Effect.gen(function*() {
      yield* sql`select pg_advisory_xact_lock(hashtextextended(${`effect-eventsourcing:schema:${schema}`}, 0))`
      yield* sql.unsafe(`create schema if not exists "${schema}"`)
      yield* sql.unsafe(`create table if not exists "${schema}"."migrations" (
        migration_id integer primary key,
        created_at timestamp with time zone not null default now(),
        name text not null
      )`)
      return yield* Migrator.make({})({ loader: migrations(schema), table: `${schema}.migrations` })
    })
  ).pipe(
    Effect.retry({ while: (e) => e._tag === "SqlError" && isRetryableDdlRace(e), schedule: Schedule.recurs(3) }),
    Effect.provideService(SqlClient.SqlClient, sql)
  )
