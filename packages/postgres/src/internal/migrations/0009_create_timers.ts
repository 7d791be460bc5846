/**
 * The timers table of process managers (`PostgresTimerStore`): one row per timer, `fired_at` set once it fired.
 * Migration 9 of the store's migrations (`index.ts`), run by every store's `make`.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => `
create table "${schema}"."timers" (
  id uuid primary key,
  process_manager text not null,
  correlation_id text not null,
  name text not null,
  due_at bigint not null,
  created_at timestamptz not null default now(),
  fired_at timestamptz
);
create index timers_due on "${schema}"."timers" (process_manager, due_at) where fired_at is null;
`
