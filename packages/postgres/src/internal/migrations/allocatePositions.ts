/**
 * The positions critical section of the append functions of migrations 3 (`append`) and 4 (`append_one`), spliced
 * into both. Under a session advisory lock on one key, the transaction gets its id (when it has none yet) and its
 * positions, so that positions are handed out in the order of the recorded transaction ids; a transaction that already
 * had an id records one at least as new as every running one (see the gap-safety note of migration 1). Needs the
 * variables `own`, `w`, `pos` and `total`.
 *
 * Migration 1's function (`append_many` since migration 3) has the same section written out in its own text, with
 * the same lock key. Part of frozen migrations: the text never changes (`test/Migrations.test.ts` pins it).
 *
 * @internal
 */
export const allocatePositions = (s: string, lockKey: string): string =>
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
