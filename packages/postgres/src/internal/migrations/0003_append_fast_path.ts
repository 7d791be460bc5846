import { conflictCode } from "./0001_create_event_store.js"
import { allocatePositions } from "./allocatePositions.js"

/**
 * Migration 3: a fast path for the common single-request append (one stream, at least one event), in fewer plpgsql
 * statements than the general function of migration 1, which is kept as `append_many` for every other call.
 *
 * - `NoStream` does not look the stream up: the first event takes version 1, and the unique key
 *   `(stream_id, version)` rejects it when the stream exists (versions of a stream are contiguous from 1, and a
 *   delete removes all of them, so "version 1 exists" is exactly "the stream exists"). The caller maps that
 *   violation to a concurrency conflict without running the call again.
 * - the other expectations read the current version as before (an `Exact(n)` must prove that version n exists).
 * - positions are allocated exactly as in migration 1 (same critical section, same recorded id), so the gap-safety
 *   argument of migration 1 holds unchanged.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
alter function ${s}.append(text[], text[], bigint[], int[], uuid[], text[], jsonb[], jsonb[], timestamptz, text)
  rename to append_many;

${
    appendFunction(s, lockKey, {
      head: `create function ${s}.append`,
      intro: "  -- the critical section of version 1, unchanged\n"
    })
  }`
}

/**
 * The single-request append function of migration 3 (`append`): `head` is its `create … function <name>` line,
 * `intro` the lines before its positions are taken (a comment; migration 5 adds the writers' key). Part of frozen
 * migrations: with the arguments they pass, the text never changes (`test/Migrations.test.ts` pins it).
 *
 * @internal
 */
export const appendFunction = (
  s: string,
  lockKey: string,
  options: { readonly head: string; readonly intro: string }
): string => {
  const { head, intro } = options
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
${intro}${
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
