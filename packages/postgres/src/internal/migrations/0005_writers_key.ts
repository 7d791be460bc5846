import { conflictCode } from "./0001_create_event_store.js"
import { allocatePositions } from "./allocatePositions.js"

/**
 * The store's writers' key: a transaction-scoped advisory lock that every appending transaction takes in SHARED mode
 * before it takes any position, and so holds until it ends (commit, rollback, or the end of a prepared transaction).
 * Advisory locks are per database, and the key names the schema: it marks "a writer of this store". Readers look for
 * its holders in `pg_locks` to narrow their gap-safety horizon (see `horizon` in `../reading.ts`). Nothing takes it
 * in exclusive mode: writers never wait for it.
 *
 * @internal
 */
export const writersKey = (schema: string): string => `hashtextextended('effect-eventsourcing:${schema}:writers', 0)`

/**
 * Migration 5: the append functions take the writers' key (`writersKey`) before their positions. The three functions
 * (`append_many` of migration 1, `append` of migration 3, `append_one` of migration 4) are replaced under the same
 * names and signatures with the same bodies plus that one statement, so that clients of earlier versions, which
 * call them by name, take the key as well.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  const key = writersKey(schema)
  return `
create or replace function ${s}.append_many(
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
    -- the store's writers' key (readers look for its holders), then the critical section of version 1, unchanged
    perform pg_advisory_xact_lock_shared(${key});
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

create or replace function ${s}.append(
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
  -- the store's writers' key (readers look for its holders), then the critical section of version 1, unchanged
  perform pg_advisory_xact_lock_shared(${key});
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

create or replace function ${s}.append_one(
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
  -- the store's writers' key (readers look for its holders), then the critical section of versions 1 and 3, unchanged
  perform pg_advisory_xact_lock_shared(${key});
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
