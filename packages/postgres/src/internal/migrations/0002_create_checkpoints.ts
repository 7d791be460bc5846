/**
 * The checkpoints table: one row per subscription name. `position` is the last handled global position (null: none),
 * `generation` is bumped by every lease acquisition and every unfenced write, and fences the writes of leases.
 * Migration 2 of the store's migrations (`index.ts`), run by every store's `make`.
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => `
create table "${schema}"."checkpoints" (
  name text primary key,
  position bigint check (position >= 0),
  generation bigint not null default 0,
  updated_at timestamptz not null default now()
);
`
