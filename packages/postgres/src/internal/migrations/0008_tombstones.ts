import { writersKey } from "./0005_writers_key.js"
import { allocatePositions } from "./allocatePositions.js"

/**
 * Migration 8: deletions in the global log. `tombstones` holds one row per deletion of a stream that had events,
 * at a global position of its own, and `delete_stream` deletes a stream (its events and its snapshot) and writes its
 * tombstone in one call.
 *
 * Gap safety: a tombstone is a row of the global log like an event. `delete_stream` takes the store's writers' key
 * (migration 5) and then its position in the same critical section as the append functions (`allocatePositions`:
 * same lock key, same sequence, same recorded id `xid`), so the argument of migration 1 (and the horizon of
 * `../reading.ts`) covers tombstones unchanged: readers that merge both tables in position order, cut at the same
 * horizon, never pass a deletion in flight, nor an event behind it.
 *
 * Deleting a stream without events writes no tombstone (the function returns null). The tombstone keeps the stream's
 * id, category and last version, never its events' data.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  const lockKey = `hashtextextended('effect-eventsourcing:${schema}:positions', 0)`
  return `
create table ${s}.tombstones (
  position bigint primary key,
  stream_id text not null,
  category text not null,
  version bigint not null check (version >= 1),
  recorded_at timestamptz not null,
  xid xid8 not null
);
create index tombstones_category_idx on ${s}.tombstones (category, position);
create index tombstones_stream_id_idx on ${s}.tombstones (stream_id, position);

-- Deletes the stream's events and snapshot; when it had events, writes its tombstone and returns its position.
create function ${s}.delete_stream(
  p_stream_id text,
  p_category text,
  p_recorded_at timestamptz,
  p_channel text
) returns bigint
language plpgsql volatile as $fn$
declare
  total int := 1;
  own xid8;
  pos bigint[];
  w xid8;
  deleted_version bigint;
begin
  if current_setting('transaction_isolation') <> 'read committed' then
    raise exception 'event store deletes must run at the read committed isolation level'
      using errcode = 'EV001';
  end if;
  delete from ${s}.snapshots where stream_id = p_stream_id;
  with d as (delete from ${s}.events e where e.stream_id = p_stream_id returning e.version)
    select max(d.version) into deleted_version from d;
  if deleted_version is null then
    return null;
  end if;
  -- the store's writers' key, then the critical section of the append functions, unchanged
  perform pg_advisory_xact_lock_shared(${writersKey(schema)});
${allocatePositions(s, lockKey)}  insert into ${s}.tombstones (position, stream_id, category, version, recorded_at, xid)
    values (pos[1], p_stream_id, p_category, deleted_version, p_recorded_at, w);
  if p_channel is not null then
    perform pg_notify(p_channel, pos[1]::text);
  end if;
  return pos[1];
end
$fn$;
`
}
