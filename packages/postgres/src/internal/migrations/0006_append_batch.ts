import { writersKey } from "./0005_writers_key.js"
import { allocatePositions } from "./allocatePositions.js"

/**
 * Migration 6: `append_batch`, the statement of group commit (`../groupCommit.ts`): the single-stream appends of
 * several callers in one call, one transaction, one position-lock acquisition, one commit, with an outcome per
 * request instead of one error for all:
 *
 * - `ok`: the request's events are stored; `version` is the stream's new version, `positions` their positions;
 * - `conflict`: its expected version does not match; `version` is the stream's actual version;
 * - `retry`: it raced with another writer (one of its versions or event ids was taken after it was checked) and the
 *   stream now matches its expectation, or it followed such a request of its stream in the batch: nothing of it is
 *   stored, and the caller sends it again (after checking its given event ids for an idempotent replay).
 *
 * Requests are taken in order, each as if it ran alone after the ones before it: a request of a stream that an
 * earlier accepted request of the batch wrote is checked against that request's new version. Expectations as in
 * migrations 3 and 4 (`NoStream`, when no earlier request of the batch wrote the stream, relies on the key
 * `(stream_id, version)`; the others read the current version).
 *
 * The insert of all accepted requests skips a row whose version or event id is taken (`on conflict do nothing`,
 * which waits for a concurrent inserter of the same key and skips only when it commits), instead of failing the
 * statement: a request that lost rows, and every later request of its stream in the batch, are then deleted again
 * and re-checked against the stream as it is now. Rows are inserted in `(stream_id, version)` order, so two batches
 * in flight that write the same streams wait for each other in one order and never deadlock.
 *
 * A batch waits for no lock longer than a second (`lock_timeout`): a request whose stream has rows that a long
 * transaction has not committed yet (e.g. inside a caller's `withLock`) would otherwise hold up every request of the
 * batch. The batch then fails as a whole and the client sends each request alone (`../groupCommit.ts`).
 *
 * Gap safety: the batch takes the writers' key of migration 5, then its positions in the critical section of
 * migrations 1, 3 and 4 (`allocatePositions`, one acquisition for all its events), and records that section's id in
 * every row, so the argument of migration 1 holds for each row as for a single append's. Rows deleted again by the
 * batch were never visible to another transaction; their positions stay unused, like those of a rolled-back append.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
create function ${s}.append_batch(
  p_stream_ids text[],
  p_categories text[],
  p_expected bigint[],
  p_events jsonb,
  p_recorded_at timestamptz[],
  p_channel text
) returns table (status text, version bigint, positions bigint[])
language plpgsql volatile set lock_timeout = '1s' as $fn$
declare
  n int := coalesce(array_length(p_stream_ids, 1), 0);
  st text[] := array_fill('ok'::text, array[greatest(n, 1)]);
  starts bigint[] := array_fill(0::bigint, array[greatest(n, 1)]);
  counts int[] := array_fill(0, array[greatest(n, 1)]);
  offs int[] := array_fill(0, array[greatest(n, 1)]);
  deps int[] := array_fill(0, array[greatest(n, 1)]);
  prevs int[];
  total int := 0;
  own xid8;
  pos bigint[];
  cur bigint;
  exp bigint;
  w xid8;
  rc bigint;
  i int;
  j int;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store appends must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  -- the previous request of the same stream in the batch, for each request (0: none)
  select coalesce(array_agg(q.p order by q.i), '{}') into prevs
    from (select t.i, coalesce(lag(t.i) over (partition by t.sid order by t.i), 0)::int as p
      from unnest(p_stream_ids) with ordinality as t(sid, i)) q;
  -- expectations, in request order
  for i in 1 .. n loop
    exp := p_expected[i];
    cur := null;
    j := prevs[i];
    while j > 0 and st[j] <> 'ok' loop
      j := prevs[j];
    end loop;
    if j > 0 then
      cur := starts[j] + counts[j];
      deps[i] := j;
    elsif exp = 0 then
      cur := 0;
    else
      select coalesce(max(e.version), 0) into cur from ${s}.events e where e.stream_id = p_stream_ids[i];
    end if;
    starts[i] := cur;
    if (exp = -2 and cur = 0) or (exp >= 0 and cur <> exp) then
      st[i] := 'conflict';
    else
      counts[i] := jsonb_array_length(p_events -> (i - 1));
      offs[i] := total;
      total := total + counts[i];
    end if;
  end loop;
  if total > 0 then
    -- the store's writers' key (readers look for its holders), then the critical section of versions 1, 3 and 4,
    -- once for the whole batch
    perform pg_advisory_xact_lock_shared(${writersKey(schema)});
${
    allocatePositions(s, lockKey)
  }    insert into ${s}.events (position, event_id, stream_id, category, version, type, data, metadata, recorded_at,
      xid)
    select pos[offs[r.i] + e.o], (e.v->>'id')::uuid, p_stream_ids[r.i], p_categories[r.i], starts[r.i] + e.o,
      e.v->>'type', e.v->'data', e.v->'metadata', p_recorded_at[r.i], w
    from generate_series(1, n) as r(i)
      cross join lateral jsonb_array_elements(p_events -> (r.i - 1)) with ordinality as e(v, o)
    where st[r.i] = 'ok'
    order by p_stream_ids[r.i], starts[r.i] + e.o
    on conflict do nothing;
    get diagnostics rc = row_count;
    if rc < total then
      -- some rows were skipped: undo each request that lost rows, and every request of its stream after it
      for i in 1 .. n loop
        if deps[i] > 0 and st[deps[i]] = 'retry' then
          if st[i] = 'ok' then
            delete from ${s}.events e where e.position = any(pos[offs[i] + 1 : offs[i] + counts[i]]);
          end if;
          st[i] := 'retry';
        elsif st[i] = 'ok' then
          select count(*) into rc from ${s}.events e where e.position = any(pos[offs[i] + 1 : offs[i] + counts[i]]);
          if rc < counts[i] then
            delete from ${s}.events e where e.position = any(pos[offs[i] + 1 : offs[i] + counts[i]]);
            st[i] := 'retry';
          end if;
        end if;
      end loop;
      -- the undone requests against their streams as they are now (a conflict, or sent again)
      for i in 1 .. n loop
        if st[i] = 'retry' then
          select coalesce(max(e.version), 0) into cur from ${s}.events e where e.stream_id = p_stream_ids[i];
          exp := p_expected[i];
          if (exp = -2 and cur = 0) or (exp >= 0 and cur <> exp) then
            st[i] := 'conflict';
            starts[i] := cur;
          end if;
        end if;
      end loop;
    end if;
    if p_channel is not null then
      perform pg_notify(p_channel, pos[total]::text);
    end if;
  end if;
  return query
    select st[q.i], case when st[q.i] = 'ok' then starts[q.i] + counts[q.i] else starts[q.i] end,
      case when st[q.i] = 'ok' then pos[offs[q.i] + 1 : offs[q.i] + counts[q.i]] else '{}'::bigint[] end
    from generate_series(1, n) as q(i);
end
$fn$;
`
}
