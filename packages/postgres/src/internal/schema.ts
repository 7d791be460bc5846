import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as checkpointTable from "./checkpointTable.js"

/** @internal */
export const defaultSchema = "event_store"

/** @internal */
export const isIdentifier = (name: string): boolean => /^[a-z_][a-z0-9_]{0,62}$/.test(name)

/**
 * The schema to use (the default when none is given), or a typed `EventStoreError` of `method` when the name is not
 * a plain lowercase identifier: the name is spliced into SQL, so nothing else ever gets there.
 *
 * @internal
 */
export const validSchema = (
  method: string,
  schema: string | undefined
): Effect.Effect<string, EventStore.EventStoreError> => {
  const name = schema ?? defaultSchema
  return isIdentifier(name) ? Effect.succeed(name) : Effect.fail(
    new EventStore.EventStoreError({
      method,
      cause: new TypeError(
        `invalid schema name ${JSON.stringify(name.slice(0, 100))}: expected a lowercase identifier`
      )
    })
  )
}

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
 * Gap safety. Every event row records in `xid` an id at least as new as its writer's and as
 * that of every transaction still running that allocated a position before it (see the append function). A reader
 * hands out rows in position order and stops at the first row whose `xid` is not below the `xmin` of its snapshot:
 * below that cut every transaction that could still hold a smaller position has ended, so no event can later appear
 * behind the reader. Writers never wait for each other except on the same stream.
 *
 * @internal
 */
/**
 * The positions critical section shared by every append function: under a session advisory lock on one key, the
 * transaction gets its id (when it has none yet) and its positions, so that positions are handed out in the order of
 * the recorded transaction ids; a transaction that already had an id records one at least as new as every running
 * one (see the gap-safety note of {@link migration1}). Needs the variables `own`, `w`, `pos` and `total`.
 */
const allocatePositions = (s: string, lockKey: string): string =>
  `  own := pg_current_xact_id_if_assigned();
  begin
    perform pg_advisory_lock(${lockKey});
    if own is null then
      own := pg_current_xact_id();
      w := own;
    end if;
    pos := array(select nextval('${s}.events_position_seq') from generate_series(1, total));
    perform pg_advisory_unlock(${lockKey});
  exception when others or query_canceled then
    perform pg_advisory_unlock(${lockKey});
    raise;
  end;
  if w is null then
    perform pg_stat_clear_snapshot();
    select (own::text::bigint + greatest(coalesce(max(-age(b.backend_xid)), 0), 0))::text::xid8 into w
      from pg_stat_activity b where b.backend_xid is not null;
  end if;
`

export const migration1 = (schema: string): string => {
  const s = `"${schema}"`
  return `
create sequence ${s}.events_position_seq as bigint;

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
-- (0 = no stream). Events are flattened: p_req is each event's request (1-based). A concurrent writer of the same
-- stream makes the insert fail on events_stream_version_key (the caller maps or retries it).
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
  own xid8;
  pos bigint[];
  cur bigint;
  exp bigint;
  w xid8;
  i int;
  j int;
  r int;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store appends must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  own := pg_current_xact_id_if_assigned();
  for i in 1 .. total loop
    r := p_req[i];
    counts[r] := counts[r] + 1;
    ks[i] := counts[r];
    if counts[r] = 1 then firsts[r] := i; end if;
  end loop;
  for i in 1 .. n loop
    exp := p_expected[i];
    cur := null;
    for j in reverse i - 1 .. 1 loop
      if p_stream_ids[j] = p_stream_ids[i] then
        cur := starts[j] + counts[j];
        exit;
      end if;
    end loop;
    if cur is null then
      select coalesce(max(e.version), 0) into cur from ${s}.events e where e.stream_id = p_stream_ids[i];
    end if;
    if (exp = -2 and cur = 0) or (exp >= 0 and cur <> exp) then
      raise exception 'concurrency conflict' using errcode = '${conflictCode}', detail = (i - 1)::text || ':' || cur::text;
    end if;
    starts[i] := cur;
  end loop;
  if total > 0 then
    -- Positions are allocated one transaction at a time (a short critical section, not held until commit). A
    -- transaction without an id gets it inside the section: every position allocated before is then held by a
    -- transaction with an older id, so w = its own id. A transaction that already had an id reads the ids of the
    -- running transactions after allocating (pg_stat_activity; age() is relative to its own id).
    begin
      perform pg_advisory_lock(hashtextextended('effect-eventsourcing:${schema}:positions', 0));
      if own is null then
        own := pg_current_xact_id();
        w := own;
      end if;
      select array_agg(q.p order by q.p) into pos
        from (select nextval('${s}.events_position_seq') as p from generate_series(1, total)) q;
      perform pg_advisory_unlock(hashtextextended('effect-eventsourcing:${schema}:positions', 0));
    exception when others or query_canceled then
      perform pg_advisory_unlock(hashtextextended('effect-eventsourcing:${schema}:positions', 0));
      raise;
    end;
    if w is null then
      perform pg_stat_clear_snapshot();
      select (own::text::bigint + greatest(coalesce(max(-age(b.backend_xid)), 0), 0))::text::xid8 into w
        from pg_stat_activity b where b.backend_xid is not null;
    end if;
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

/**
 * Version 3: a fast path for the common single-request append (one stream, at least one event), in fewer plpgsql
 * statements than the general function of version 1, which is kept as `append_many` for every other call.
 *
 * - `NoStream` does not look the stream up: the first event takes version 1, and the unique key
 *   `(stream_id, version)` rejects it when the stream exists (versions of a stream are contiguous from 1, and a
 *   delete removes all of them, so "version 1 exists" is exactly "the stream exists"). The caller maps that
 *   violation to a concurrency conflict without running the call again.
 * - the other expectations read the current version as before (an `Exact(n)` must prove that version n exists).
 * - positions are allocated exactly as in version 1 (same critical section, same recorded id), so the gap-safety
 *   argument of {@link migration1} holds unchanged.
 *
 * @internal
 */
export const migration3 = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
alter function ${s}.append(text[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz, text)
  rename to append_many;

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
  total int := coalesce(array_length(p_event_ids, 1), 0);
  exp bigint := p_expected[1];
  own xid8;
  pos bigint[];
  cur bigint;
  w xid8;
begin
  if coalesce(array_length(p_stream_ids, 1), 0) <> 1 or total = 0 then
    return query select * from ${s}.append_many(p_stream_ids, p_categories, p_expected, p_req, p_event_ids, p_types,
      p_data, p_metadata, p_recorded_at, p_channel);
    return;
  end if;
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store appends must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  if exp = 0 then
    cur := 0;
  else
    select coalesce(max(e.version), 0) into cur from ${s}.events e where e.stream_id = p_stream_ids[1];
    if (exp = -2 and cur = 0) or (exp >= 0 and cur <> exp) then
      raise exception 'concurrency conflict' using errcode = '${conflictCode}', detail = '0:' || cur::text;
    end if;
  end if;
  -- the critical section of version 1, unchanged
${
    allocatePositions(s, lockKey)
  }  insert into ${s}.events (position, event_id, stream_id, category, version, type, data, metadata, recorded_at, xid)
  select pos[e.o], e.id, p_stream_ids[1], p_categories[1], cur + e.o, e.t, e.d, e.m, p_recorded_at, w
  from unnest(p_event_ids, p_types, p_data, p_metadata) with ordinality as e(id, t, d, m, o);
  if p_channel is not null then
    perform pg_notify(p_channel, pos[total]::text);
  end if;
  version := cur + total;
  positions := pos;
  return next;
end
$fn$;
`
}

/**
 * Version 4: `append_one`, the single-request fast path of version 3 with its events in ONE jsonb parameter
 * (`[{"id", "type", "data", "metadata"}, …]`, at least one event) and the stream as scalars, instead of eight array
 * parameters: the client sends one string (no array-literal escaping of every JSON document) and the server parses
 * one document (no array literals). `append` and `append_many` stay as they are (clients of earlier versions keep
 * calling them).
 *
 * - expectations exactly as in {@link migration3} (`NoStream` relies on the `(stream_id, version)` key, the others
 *   read the current version);
 * - positions are allocated exactly as in versions 1 and 3 (same critical section, same recorded id), so the
 *   gap-safety argument of {@link migration1} holds unchanged.
 *
 * @internal
 */
export const migration4 = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
create function ${s}.append_one(
  p_stream_id text,
  p_category text,
  p_expected bigint,
  p_events jsonb,
  p_recorded_at timestamptz,
  p_channel text
) returns table (version bigint, positions bigint[])
language plpgsql volatile as $fn$
declare
  total int := jsonb_array_length(p_events);
  own xid8;
  pos bigint[];
  cur bigint;
  w xid8;
begin
  if total = 0 then
    raise exception 'append_one needs at least one event' using errcode = '22023';
  end if;
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store appends must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  if p_expected = 0 then
    cur := 0;
  else
    select coalesce(max(e.version), 0) into cur from ${s}.events e where e.stream_id = p_stream_id;
    if (p_expected = -2 and cur = 0) or (p_expected >= 0 and cur <> p_expected) then
      raise exception 'concurrency conflict' using errcode = '${conflictCode}', detail = '0:' || cur::text;
    end if;
  end if;
  -- the critical section of versions 1 and 3, unchanged
${
    allocatePositions(s, lockKey)
  }  insert into ${s}.events (position, event_id, stream_id, category, version, type, data, metadata, recorded_at, xid)
  select pos[e.o], (e.v->>'id')::uuid, p_stream_id, p_category, cur + e.o, e.v->>'type', e.v->'data', e.v->'metadata',
    p_recorded_at, w
  from jsonb_array_elements(p_events) with ordinality as e(v, o);
  if p_channel is not null then
    perform pg_notify(p_channel, pos[total]::text);
  end if;
  version := cur + total;
  positions := pos;
  return next;
end
$fn$;
`
}

/** @internal */
export const migrations = (schema: string): Migrator.Loader =>
  Migrator.fromRecord({
    "1_create_event_store": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(migration1(schema))),
    "2_create_checkpoints": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(checkpointTable.migration(schema))),
    "3_append_fast_path": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(migration3(schema))),
    "4_append_one": Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(migration4(schema)))
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
