/**
 * A PostgreSQL {@link EventStore.EventStore} over `@effect/sql-pg`, with the same semantics as the in-memory store.
 *
 * - **Tables** live in a schema of their own (default `event_store`; the name must be a lowercase identifier),
 *   created and upgraded by `@effect/sql`'s Migrator with its own `migrations` table, under an advisory lock so that
 *   several processes can start at once.
 * - **append / appendMany** are one round trip: one call of a function of the schema. A single request with at
 *   least one event calls `append_one` with its events as one jsonb document; every other append (several requests,
 *   or one without events) calls `append_many` with the events as arrays (spread by `unnest`). The database
 *   enforces all four expected versions, with the unique key `(stream_id, version)` serialising writers of the same
 *   stream only; a conflict is a `ConcurrencyConflict` carrying the real actual version. `appendMany` writes its
 *   requests in the order of their stream ids (results in the caller's order), so that units of work over the same
 *   streams wait for each other instead of deadlocking. Re-sending a committed batch
 *   with the same event ids returns the original result (checked only when the append fails). If the connection is
 *   lost while committing, the store checks by event id whether the batch was committed and returns the result or
 *   `CommitOutcomeUnknown`. An append joins the caller's `sql.withTransaction` (inside a savepoint).
 * - **Group commit** (`groupCommit`, default on): concurrent `append`s outside a transaction share statements. While
 *   a statement is in flight (one at a time by default, `maxInFlight`), the appends that arrive queue up and go
 *   together in the next one (`append_batch`, at most `maxBatch` of them): one transaction, one acquisition of the
 *   positions lock, one commit. Each append keeps its own outcome: a conflict, an idempotent replay or an
 *   `EventIdConflict` is that append's answer only, an append raced by another writer is sent again, and a lost
 *   connection is resolved per append by its event ids. An append that finds nothing in flight is sent at once, on
 *   its own (no waiting when idle). `appendMany`, appends inside a transaction or `withLock`, and stores with `inline`
 *   projections always take the single-statement path.
 * - **Inline projections** (`inline`) run inside the append's transaction, on its connection: their own `SqlClient`
 *   statements join it, and if one fails the append fails with `EventStoreError` and nothing is stored. Their
 *   `onDelete` runs inside `delete`'s transaction.
 * - **delete** removes the stream's events and snapshot and, when it had events, writes a tombstone (table
 *   `tombstones`, migration 8) at a position taken like an event's, in one function call (`delete_stream`): readers
 *   with `deletions: true` get it in position order with the events, under the same gap-safety rule.
 * - **readAll / subscribe** are gap-safe: a reader never passes an event that could still be committed behind it.
 *   Each event row records a transaction id at least as new as its writer's and as that of every transaction
 *   still running that took a position before it (positions are taken in a short critical section; a writer that
 *   joined an older transaction reads the running ids from `pg_stat_activity`). Readers hand out rows in position
 *   order and stop at the first row whose id is not below `pg_snapshot_xmin(pg_current_snapshot())`: every
 *   transaction that could still commit a smaller position has then ended. So a long-running writing transaction
 *   anywhere on the server delays global readers (never writers) until it ends. Reads page through keysets
 *   (`pageSize` rows at a time, constant memory).
 * - **subscribe** catches up, then polls every `pollInterval` and is woken earlier by LISTEN/NOTIFY (a hint only).
 *   LISTEN runs on a connection of its own (a `pg.Client` with the PgClient's settings), re-established as soon as
 *   it errors or ends (a server restart); a watchdog also pings it every `watchdogInterval`.
 *   `notify`: `"afterCommit"` (default) sends one coalesced `pg_notify` after commits; `"inTransaction"` sends it
 *   inside every append's transaction (PostgreSQL then serialises the commits of notifying transactions, about 3x
 *   fewer appends per second under concurrency); `"off"` relies on polling and in-process wake-ups. A group-commit
 *   statement, and an `append` the group commit sends alone, notifies inside its own transaction in both modes (one
 *   notification per statement; such statements commit one after another anyway), which spares `"afterCommit"` a
 *   statement per wake-up.
 * - **lock** holds a session advisory lock on a reserved connection until the scope closes. **withLock** runs its
 *   effect in one transaction that holds `pg_advisory_xact_lock` (the same lock): the store's reads and appends inside
 *   it run on that connection and commit together, so a locked command never needs a second connection. A
 *   `timeout` bounds the wait for the connection and the lock (`LockTimeout`); waiting for a pooled connection is
 *   never interruptible (@effect/sql-pg 0.53 strands the connection of an interrupted `sql.reserve` waiter), so an
 *   interrupted or timed-out waiter hands the connection back when it arrives.
 * - Appends must run at the read committed isolation level (the default).
 *
 * @example
 * ```ts
 * import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
 * import { PostgresEventStore } from "@effect-eventsourcing/postgres"
 * import { PgClient } from "@effect/sql-pg"
 * import { Config, Effect, Layer } from "effect"
 *
 * const StoreLive = PostgresEventStore.layer({ schema: "event_store" }).pipe(
 *   Layer.provide(PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") }))
 * )
 *
 * const program = EventStore.append(
 *   StreamId.unsafeMake("account", "1"),
 *   [{ type: "Opened", data: { owner: "ada" } }],
 *   ExpectedVersion.NoStream
 * ).pipe(Effect.provide(StoreLive))
 * ```
 *
 * @since 0.1.0
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as Projection from "@effect-eventsourcing/core/Projection"
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { SqlClient as SqlClientTag } from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as schemaSql from "./internal/schema.js"
import * as internal from "./internal/store.js"

/**
 * Options of {@link make}, {@link layer} and {@link layerConfig}.
 *
 * - `schema`: the PostgreSQL schema of the tables (default `"event_store"`); a lowercase identifier.
 * - `inline`: projections run inside every append's transaction (see the module docs); their requirements `R`
 *   are captured when the store is built.
 * - `pageSize`: rows fetched per query by `read`, `readAll` and `subscribe` (default: 5,000 for `read`, so that a
 *   stream of up to 5,000 events is read in one round trip; 1,000 for `readAll` and `subscribe`).
 * - `pollInterval`: how often a caught-up subscription polls (default 1 second).
 * - `watchdogInterval`: how often the LISTEN connection is checked (default 10 seconds).
 * - `notify`: how appends wake subscribers of other processes (default `"afterCommit"`).
 * - `groupCommit`: whether concurrent `append`s share statements (default on; see the module docs). `false` turns it
 *   off: every append is a statement of its own. `{ maxBatch }` bounds the appends of one statement (a positive
 *   integer, default 64); `{ maxInFlight }` the group-commit statements in flight at once, each on a connection of
 *   its own (a positive integer, default 1: more statements in flight carried fewer appends each and cost more CPU
 *   per append in bench W1; more lets appends go on while one statement waits for a lock).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R = never> {
  readonly schema?: string | undefined
  readonly inline?: ReadonlyArray<Projection.Projection<unknown, R>> | undefined
  readonly pageSize?: number | undefined
  readonly pollInterval?: Duration.DurationInput | undefined
  readonly watchdogInterval?: Duration.DurationInput | undefined
  readonly notify?: "afterCommit" | "inTransaction" | "off" | undefined
  readonly groupCommit?:
    | boolean
    | { readonly maxBatch?: number | undefined; readonly maxInFlight?: number | undefined }
    | undefined
}

/**
 * Builds the store (running the migrations first). Background fibers (LISTEN, notifications) live in the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <R = never>(
  options?: Options<R>
) => Effect.Effect<
  EventStore.EventStore.Service,
  EventStore.EventStoreError,
  SqlClient.SqlClient | PgClient.PgClient | Scope.Scope | R
> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(
  options?: Options<R>
): Layer.Layer<EventStore.EventStore, EventStore.EventStoreError, SqlClient.SqlClient | PgClient.PgClient | R> =>
  Layer.scoped(EventStore.EventStore, make(options))

/**
 * {@link layer} with options read from `Config` (e.g. `schema: Config.string("EVENT_STORE_SCHEMA")`).
 *
 * @example
 * ```ts
 * import { PostgresEventStore } from "@effect-eventsourcing/postgres"
 * import { PgClient } from "@effect/sql-pg"
 * import { Config, Layer } from "effect"
 *
 * // options from the environment, with defaults; the connection from DATABASE_URL
 * const Store = PostgresEventStore.layerConfig({
 *   schema: Config.string("EVENT_STORE_SCHEMA").pipe(Config.withDefault("event_store")),
 *   pollInterval: Config.duration("EVENT_STORE_POLL_INTERVAL").pipe(Config.withDefault("1 second"))
 * }).pipe(Layer.provide(PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <R = never>(
  config: Config.Config.Wrap<Options<R>>
): Layer.Layer<
  EventStore.EventStore,
  EventStore.EventStoreError | ConfigError.ConfigError,
  SqlClient.SqlClient | PgClient.PgClient | R
> => Layer.unwrapEffect(Effect.map(Config.unwrap(config), (options) => layer(options)))

/**
 * A migration of the store's schema, as {@link migrate} reports it.
 *
 * @since 0.3.0
 * @category migrations
 */
export interface Migration {
  readonly id: number
  readonly name: string
}

/**
 * Creates the schema (default `"event_store"`) and runs the store's migrations that have not run yet, the same way
 * {@link make} does when it starts (serialised across processes, idempotent), and returns the migrations it ran now
 * (none when the schema was up to date). For deployment scripts and the `eventsourcing migrate` command of
 * `@effect-eventsourcing/cli`.
 *
 * @since 0.3.0
 * @category migrations
 */
export const migrate = (
  options?: { readonly schema?: string | undefined }
): Effect.Effect<ReadonlyArray<Migration>, EventStore.EventStoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const schema = yield* schemaSql.validSchema("migrate", options?.schema)
    const sql = (yield* SqlClientTag).withoutTransforms()
    const ran = yield* schemaSql.migrate(sql, schema).pipe(
      Effect.catchAllDefect((defect) => Effect.fail(defect)),
      Effect.mapError((cause) => new EventStore.EventStoreError({ method: "migrate", cause }))
    )
    return ran.map(([id, name]): Migration => ({ id, name }))
  })
