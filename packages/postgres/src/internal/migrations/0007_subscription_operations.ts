/**
 * Migration 7: what subscriptions need to be operated from outside their consumer.
 *
 * - `checkpoints` gets a reset request (`reset_pending`: the id of a request not applied yet, numbered by
 *   `reset_requests`; `reset_to`: its position, null for the start; `reset_allow_duplicates`; `reset_requested_at`)
 *   and the last error a consumer recorded (`last_error`, `last_error_at`).
 * - `parked_events`: the events a subscription with the `park` failure policy could not handle, one row per
 *   subscription and position, with the error, the attempts, the time and the state (`parked`, `retry`, `skipped`).
 *
 * Frozen: a released migration never changes (`test/Migrations.test.ts` pins the text it sends).
 *
 * @internal
 */
export const migration = (schema: string): string => {
  const s = `"${schema}"`
  return `
alter table ${s}.checkpoints
  add column reset_requests bigint not null default 0,
  add column reset_pending bigint,
  add column reset_to bigint check (reset_to >= 0),
  add column reset_allow_duplicates boolean not null default false,
  add column reset_requested_at timestamptz,
  add column last_error text,
  add column last_error_at timestamptz;

create table ${s}.parked_events (
  id bigint generated always as identity primary key,
  subscription text not null,
  position bigint not null,
  stream_id text not null,
  version bigint not null,
  event_id uuid not null,
  type text not null,
  error text not null,
  attempts integer not null,
  parked_at timestamptz not null default now(),
  state text not null default 'parked' check (state in ('parked', 'retry', 'skipped')),
  constraint parked_events_subscription_position_key unique (subscription, position)
);
`
}
