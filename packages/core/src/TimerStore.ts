/**
 * Durable timers of process managers: "if nothing happened by then, tell the process". A timer belongs to one
 * instance of a process manager (its name and correlation id), has an id (deterministic: scheduling the same timer
 * again keeps the first one) and a due time; the running process manager fires the timers that are due and marks them
 * fired. Firing is idempotent on the process manager's side (the firing is recorded in the instance's stream under an
 * id derived from the timer's id), so a timer fires once even when the process stops between firing it and marking
 * it fired.
 *
 * `layerMemory` keeps them in memory (they survive a restart of the process manager, not of the process);
 * `PostgresTimerStore` keeps them in a table of the event store's schema.
 *
 * @since 0.3.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { causeMessage } from "./internal/causeMessage.js"

/**
 * @since 0.3.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/TimerStore")

/**
 * @since 0.3.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A scheduled timer: `dueAt` in epoch milliseconds (of the process manager's `Clock`).
 *
 * @since 0.3.0
 * @category models
 */
export interface Timer {
  /** A uuid, derived by the process manager from what scheduled it. */
  readonly id: string
  readonly processManager: string
  readonly correlationId: string
  /** The name given to `ProcessManager.schedule`. */
  readonly name: string
  readonly dueAt: number
}

/**
 * An infrastructure failure of a timer store (connection, SQL, ...). The cause is kept for logs.
 *
 * @since 0.3.0
 * @category errors
 */
export class TimerStoreError extends Schema.TaggedError<TimerStoreError>()("TimerStoreError", {
  method: Schema.String,
  cause: Schema.Defect
}) {
  /**
   * @since 0.3.0
   */
  override get message(): string {
    return `TimerStore.${this.method} failed: ${causeMessage(this.cause)}`
  }
}

/**
 * @since 0.3.0
 * @category tags
 */
export class TimerStore extends Context.Tag("@effect-eventsourcing/core/TimerStore")<
  TimerStore,
  TimerStore.Service
>() {}

/**
 * @since 0.3.0
 */
export declare namespace TimerStore {
  /**
   * @since 0.3.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** Stores the timer; a timer with the same id already stored (fired or not) is kept as it is. */
    readonly schedule: (timer: Timer) => Effect.Effect<void, TimerStoreError>
    /** Up to `limit` timers of the process manager due at `now` and not fired yet, the earliest first. */
    readonly due: (
      processManager: string,
      now: number,
      limit: number
    ) => Effect.Effect<ReadonlyArray<Timer>, TimerStoreError>
    /** Marks the timer fired: it is never returned by `due` again. */
    readonly markFired: (id: string) => Effect.Effect<void, TimerStoreError>
    /** The timers of one process manager's instance not fired yet, the earliest first (for inspection). */
    readonly pending: (
      processManager: string,
      correlationId: string
    ) => Effect.Effect<ReadonlyArray<Timer>, TimerStoreError>
  }
}

const byDue = (a: Timer, b: Timer) => a.dueAt - b.dueAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * An in-memory timer store.
 *
 * @since 0.3.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<TimerStore.Service> = Effect.sync(() => {
  const timers = new Map<string, { readonly timer: Timer; fired: boolean }>()
  const unfired = (keep: (timer: Timer) => boolean) =>
    Array.from(timers.values()).filter((entry) => !entry.fired && keep(entry.timer)).map((entry) => entry.timer)
      .sort(byDue)
  return {
    [TypeId]: TypeId,
    schedule: (timer) =>
      Effect.sync(() => {
        if (!timers.has(timer.id)) timers.set(timer.id, { timer: { ...timer }, fired: false })
      }),
    due: (processManager, now, limit) =>
      Effect.sync(() =>
        unfired((timer) => timer.processManager === processManager && timer.dueAt <= now).slice(0, Math.max(0, limit))
      ),
    markFired: (id) =>
      Effect.sync(() => {
        const entry = timers.get(id)
        if (entry !== undefined) entry.fired = true
      }),
    pending: (processManager, correlationId) =>
      Effect.sync(() =>
        unfired((timer) => timer.processManager === processManager && timer.correlationId === correlationId)
      )
  }
})

/**
 * @since 0.3.0
 * @category layers
 */
export const layerMemory: Layer.Layer<TimerStore> = Layer.effect(TimerStore, makeMemory)
