/**
 * A read model of account balances kept in PostgreSQL by an asynchronous projection.
 *
 * The projection's SQL runs through `SqlClient`, so inside a subscription it joins the batch transaction that also
 * moves the checkpoint (`PostgresCheckpointStore`): every event is applied exactly once, even if the process dies
 * between two events. The handler can therefore use plain increments instead of idempotency tricks.
 */
import { Projection, Subscription } from "@effect-eventsourcing/core"
import type { CheckpointStore, EventStore } from "@effect-eventsourcing/core"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql"
import { Effect, Layer, Option } from "effect"
import { Account } from "./Account.js"

/** One row per account. */
export interface Balance {
  readonly accountId: string
  readonly owner: string
  readonly status: "open" | "closed"
  readonly balance: number
  /** The stream version of the last event applied. */
  readonly version: number
}

/** The name of the projection, hence of its checkpoint. */
export const name = "account-balances"

/** Creates the read model's table if it is missing. */
export const migrate: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`create table if not exists account_balances (
      account_id text primary key,
      owner text not null,
      status text not null,
      balance bigint not null,
      version integer not null
    )`
).pipe(Effect.asVoid)

const accountId = (streamId: string) => streamId.slice(Account.name.length + 1)

/** The projection: account events, decoded through the aggregate's Schema, folded into `account_balances`. */
export const projection = Projection.fromAggregate(Account, {
  name,
  handle: (event, recorded) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) => {
      const id = accountId(recorded.streamId)
      switch (event._tag) {
        case "AccountOpened":
          return sql`insert into account_balances (account_id, owner, status, balance, version)
            values (${id}, ${event.owner}, 'open', 0, ${recorded.version})`
        case "Deposited":
          return sql`update account_balances set balance = balance + ${event.amount}, version = ${recorded.version}
            where account_id = ${id}`
        case "Withdrawn":
          return sql`update account_balances set balance = balance - ${event.amount}, version = ${recorded.version}
            where account_id = ${id}`
        case "AccountClosed":
          return sql`update account_balances set status = 'closed', version = ${recorded.version}
            where account_id = ${id}`
      }
    }).pipe(Effect.asVoid),
  // a rebuild replays from the start: clear the table in the same transaction as the checkpoint reset
  onReset: () => Effect.flatMap(SqlClient.SqlClient, (sql) => sql`delete from account_balances`).pipe(Effect.asVoid)
})

/** Keeps the read model up to date for as long as the Layer lives (creating its table first). */
export const layer: Layer.Layer<
  never,
  SqlError.SqlError,
  SqlClient.SqlClient | EventStore.EventStore | CheckpointStore.CheckpointStore
> = Layer.scopedDiscard(
  Effect.zipRight(
    migrate,
    Subscription.forkScoped(projection, { filter: { categories: [Account.name] } })
  )
)

/** Starts the read model's subscription in the current scope and returns its handle (to wait on it in tests). */
export const start = Effect.zipRight(
  migrate,
  Subscription.forkScoped(projection, { filter: { categories: [Account.name] } })
)

/**
 * The last committed global position of the event store (schema `event_store`). A global read can lag it while an
 * older transaction is still open; this is what a read model must reach to reflect every committed command.
 */
export const lastCommittedPosition: Effect.Effect<number, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql<{ position: string | null }>`select max(position) as position from event_store.events`
).pipe(Effect.map((rows) => Number(rows[0]?.position ?? 0)))

/** Waits until the read model reflects every command committed so far. */
export const awaitCaughtUp = <E>(
  readModel: Subscription.Subscription<E>
): Effect.Effect<void, Subscription.Error<E> | SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(lastCommittedPosition, readModel.awaitPosition)

interface BalanceRow {
  readonly account_id: string
  readonly owner: string
  readonly status: string
  readonly balance: string | number
  readonly version: number
}

const toBalance = (row: BalanceRow): Balance => ({
  accountId: row.account_id,
  owner: row.owner,
  status: row.status === "closed" ? "closed" : "open",
  balance: Number(row.balance),
  version: row.version
})

// every account, or the one with this id
const selectBalances = (id?: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<BalanceRow>`select account_id, owner, status, balance, version from account_balances ${
        id === undefined ? sql`` : sql`where account_id = ${id}`
      } order by account_id`
  )

/** Every account of the read model, by id. */
export const balances: Effect.Effect<ReadonlyArray<Balance>, SqlError.SqlError, SqlClient.SqlClient> = Effect.map(
  selectBalances(),
  (rows) => rows.map(toBalance)
)

/** One account of the read model. */
export const balanceOf = (id: string): Effect.Effect<Option.Option<Balance>, SqlError.SqlError, SqlClient.SqlClient> =>
  Effect.map(selectBalances(id), (rows) => Option.map(Option.fromNullable(rows[0]), toBalance))
