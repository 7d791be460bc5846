/**
 * Wake-ups of subscribers: local appends complete an in-process signal; other processes are told through
 * `pg_notify` and heard through LISTEN, whose connection a watchdog checks. Notifications are hints only: a
 * subscriber also polls, and polling is the truth.
 *
 * @internal
 */
import * as StoreKit from "@effect-eventsourcing/core/StoreKit"
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Pg from "pg"
import type { Options } from "../PostgresEventStore.js"
import { outsideTransaction } from "./transaction.js"

/** The in-process wake-up signal of waiting subscribers (StoreKit's: created only when a subscriber waits). */
export type Signal = StoreKit.Signal

/** @internal */
export const makeSignal: () => Signal = StoreKit.makeSignal

/** @internal */
export interface Notifier {
  readonly signal: Signal
  /** after a commit whose last position is `position` (> 0): wakes local subscribers and, by the mode, others */
  readonly committed: (position: number) => void
  /** starts the LISTEN fiber (once; later calls do nothing) */
  readonly startListener: Effect.Effect<void>
}

/**
 * The connection settings of the LISTEN client, from the PgClient's configuration (the same ones its pool uses).
 */
const clientConfig = (config: PgClient.PgClientConfig): Pg.ClientConfig => ({
  ...(config.url !== undefined ? { connectionString: Redacted.value(config.url) } : {}),
  ...(config.host !== undefined ? { host: config.host } : {}),
  ...(config.port !== undefined ? { port: config.port } : {}),
  ...(config.database !== undefined ? { database: config.database } : {}),
  ...(config.username !== undefined ? { user: config.username } : {}),
  ...(config.password !== undefined ? { password: Redacted.value(config.password) } : {}),
  ...(config.ssl !== undefined ? { ssl: config.ssl } : {}),
  ...(config.stream !== undefined ? { stream: config.stream } : {}),
  ...(config.types !== undefined ? { types: config.types } : {}),
  ...(config.connectTimeout !== undefined
    ? { connectionTimeoutMillis: Duration.toMillis(config.connectTimeout) }
    : {}),
  application_name: config.applicationName ?? "@effect/sql-pg"
})

/**
 * Builds the wake-ups of one store; its background fibers (the coalescing notifier of `"afterCommit"`, the LISTEN
 * fiber once started) live in the scope.
 *
 * @internal
 */
export const make = (options: {
  readonly sql: SqlClient.SqlClient
  readonly pg: PgClient.PgClient
  readonly channel: string
  readonly notify: NonNullable<Options["notify"]>
  readonly watchdogInterval: Duration.Duration
}): Effect.Effect<Notifier, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { channel, pg, sql, watchdogInterval } = options
    const scope = yield* Effect.scope
    const signal = makeSignal()
    const wake = Effect.sync(signal.wake)

    let dirty = false
    let notifierSignal = Deferred.unsafeMake<void>(FiberId.none)
    let lastPosition = 0
    const markDirty = (position: number) => {
      if (position > lastPosition) lastPosition = position
      if (dirty) return
      dirty = true
      Deferred.unsafeDone(notifierSignal, Exit.void)
    }
    if (options.notify === "afterCommit") {
      // one pg_notify at a time, coalescing the appends that committed meanwhile (a hint only)
      yield* Effect.gen(function*() {
        yield* Deferred.await(notifierSignal)
        notifierSignal = Deferred.unsafeMake<void>(FiberId.none)
        dirty = false
        yield* outsideTransaction(sql`select pg_notify(${channel}, ${String(lastPosition)})`).pipe(Effect.ignore)
        yield* Effect.sleep("5 millis")
      }).pipe(Effect.forever, Effect.interruptible, Effect.forkIn(scope))
    }

    /**
     * One LISTEN session on a connection of its own: fails as soon as that connection errors or ends (a restart of
     * the server, a terminated backend), or when the watchdog's ping does not come back (a silent network).
     *
     * The connection is a `pg.Client` of its own rather than `PgClient.listen`: the latter's connection swallows its
     * errors (@effect/sql-pg 0.53), so a LISTEN lost with a restart was only noticed by the watchdog, up to two
     * `watchdogInterval`s later, while delivery fell back to polling.
     */
    const session = Effect.gen(function*() {
      const ping = `ping:${globalThis.crypto.randomUUID()}`
      let pong = Deferred.unsafeMake<void>(FiberId.none)
      const lost = yield* Deferred.make<void, unknown>()
      const client = yield* Effect.acquireRelease(
        Effect.tryPromise(async () => {
          const client = new Pg.Client(clientConfig(pg.config))
          // a failed connection attempt rejects `connect` (and may also emit "error"): never unhandled
          client.on("error", (cause) => Deferred.unsafeDone(lost, Exit.fail(cause)))
          client.on("end", () => Deferred.unsafeDone(lost, Exit.fail("LISTEN connection ended")))
          client.on("notification", (message) => {
            if (message.channel !== channel) return
            if (message.payload === ping) Deferred.unsafeDone(pong, Exit.void)
            else signal.wake()
          })
          try {
            await client.connect()
          } catch (cause) {
            await client.end().catch(() => undefined)
            throw cause
          }
          return client
        }),
        (client) => Effect.promise(() => client.end().catch(() => undefined)).pipe(Effect.timeoutOption(1000))
      )
      yield* Effect.tryPromise(() => client.query(`LISTEN ${Pg.escapeIdentifier(channel)}`))
      // events may have been committed while nobody listened: subscribers poll now
      yield* wake
      failedAttempts = 0
      const watchdog = Effect.gen(function*() {
        yield* Effect.sleep(watchdogInterval)
        pong = Deferred.unsafeMake<void>(FiberId.none)
        yield* outsideTransaction(sql`select pg_notify(${channel}, ${ping})`)
        const answered = yield* Deferred.await(pong).pipe(Effect.timeout(watchdogInterval), Effect.option)
        if (Option.isNone(answered)) return yield* Effect.fail("LISTEN connection lost")
      }).pipe(Effect.forever)
      // whatever ends first (the connection, or the watchdog missing its ping) starts a new session
      yield* Effect.raceFirst(Deferred.await(lost), watchdog)
    }).pipe(Effect.scoped)

    // sessions that ended before LISTEN was up, in a row: the pause before the next one doubles (100 ms to 2 s)
    let failedAttempts = 0
    const listener = session.pipe(
      Effect.catchAllCause(() => Effect.void),
      // events may have been committed while nobody listened: subscribers poll now (and after the next session's
      // LISTEN again); a new session shortly (the server may be starting up)
      Effect.zipRight(wake),
      Effect.zipRight(Effect.suspend(() => Effect.sleep(Math.min(2_000, 100 * 2 ** Math.min(failedAttempts++, 5))))),
      Effect.forever,
      Effect.interruptible
    )
    const startListener = yield* Effect.once(Effect.asVoid(Effect.forkIn(listener, scope)))

    const afterCommit = options.notify === "afterCommit"
    return {
      signal,
      committed: (position) => {
        signal.wake()
        if (afterCommit) markDirty(position)
      },
      startListener
    }
  })
