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
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
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

    const listener = Effect.gen(function*() {
      const client = pg
      const ping = `ping:${globalThis.crypto.randomUUID()}`
      let pong = Deferred.unsafeMake<void>(FiberId.none)
      const listen = Stream.runForEach(client.listen(channel), (payload) => {
        if (payload === ping) return Deferred.succeed(pong, undefined)
        return wake
      })
      const watchdog = Effect.gen(function*() {
        yield* Effect.sleep(watchdogInterval)
        pong = Deferred.unsafeMake<void>(FiberId.none)
        yield* outsideTransaction(sql`select pg_notify(${channel}, ${ping})`)
        const answered = yield* Deferred.await(pong).pipe(Effect.timeout(watchdogInterval), Effect.option)
        if (Option.isNone(answered)) return yield* Effect.fail("LISTEN connection lost")
      }).pipe(Effect.forever)
      // whatever ends first (the LISTEN stream failing, or the watchdog missing its ping) restarts both
      yield* Effect.raceFirst(Effect.exit(listen), Effect.exit(watchdog))
      // events may have been committed while nobody listened: subscribers poll now
      yield* wake
      yield* Effect.sleep("500 millis")
    }).pipe(
      Effect.catchAllCause(() => Effect.sleep("500 millis")),
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
