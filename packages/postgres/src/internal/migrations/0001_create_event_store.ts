/**
 * The SQLSTATE raised by the append functions when an expected version does not match. The detail is
 * `<request index>:<actual version>`.
 *
 * @internal
 */
export const conflictCode = "EV409"

/**
 * Migration 1: the store's tables (`events`, `snapshots`, the position sequence) and the append function `append`
 * (renamed `append_many` by migration 3, which puts a new `append` in its place).
 *
 * Gap safety. Every event row records in `xid` an id at least as new as its writer's and as that of every transaction
 * still running that allocated a position before it (see the append function). A reader hands out rows in position
 * order and stops at the first row whose `xid` is not below the `xmin` of its snapshot: below that cut every
 * transaction that could still hold a smaller position has ended, so no event can later appear behind the reader.
 * Writers never wait for each other except on the same stream.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
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
${appendManyFunction(s, schema, { head: `create function ${s}.append`, writers: "" })}`
}

/**
 * The general append function of migration 1 (`append`, renamed `append_many` by migration 3): `head` is its
 * `create … function <name>` line, `writers` the statements spliced in before its positions are taken (migration 5's
 * writers' key). Part of frozen migrations: with the arguments they pass, the text never changes
 * (`test/Migrations.test.ts` pins it).
 *
 * @internal
 */
export const appendManyFunction = (
  s: string,
  schema: string,
  options: { readonly head: string; readonly writers: string }
): string => {
  const { head, writers } = options
  return `${head}(
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
${writers}    -- Positions are allocated one transaction at a time (a short critical section, not held until commit). A
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
