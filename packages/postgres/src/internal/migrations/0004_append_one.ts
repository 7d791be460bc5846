import { conflictCode } from "./0001_create_event_store.js"
import { allocatePositions } from "./allocatePositions.js"

/**
 * Migration 4: `append_one`, the single-request fast path of migration 3 with its events in ONE jsonb parameter
 * (`[{"id", "type", "data", "metadata"}, …]`, at least one event) and the stream as scalars, instead of eight array
 * parameters: the client sends one string (no array-literal escaping of every JSON document) and the server parses
 * one document (no array literals). `append` and `append_many` stay as they are (clients of earlier versions keep
 * calling them).
 *
 * - expectations exactly as in migration 3 (`NoStream` relies on the `(stream_id, version)` key, the others
 *   read the current version);
 * - positions are allocated exactly as in migrations 1 and 3 (same critical section, same recorded id), so the
 *   gap-safety argument of migration 1 holds unchanged.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
${
    appendOneFunction(s, lockKey, {
      head: `create function ${s}.append_one`,
      intro: "  -- the critical section of versions 1 and 3, unchanged\n"
    })
  }`
}

/**
 * The one-document append function of migration 4 (`append_one`): `head` is its `create … function <name>` line,
 * `intro` the lines before its positions are taken (a comment; migration 5 adds the writers' key). Part of frozen
 * migrations: with the arguments they pass, the text never changes (`test/Migrations.test.ts` pins it).
 *
 * @internal
 */
export const appendOneFunction = (
  s: string,
  lockKey: string,
  options: { readonly head: string; readonly intro: string }
): string => {
  const { head, intro } = options
  return `${head}(
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
${intro}${
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
