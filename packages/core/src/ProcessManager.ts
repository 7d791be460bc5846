/**
 * Process managers (sagas, workflows): long-running processes that react to events by sending commands to other
 * aggregates, such as a transfer between two accounts (debit one, credit the other, refund when the credit is
 * refused or does not happen in time).
 *
 * - **Instances** are keyed by a correlation id taken from each event (`correlate`); events it returns `undefined`
 *   for are ignored. An instance's state is itself event-sourced: its inputs are recorded in its own stream
 *   `"<name>-<correlationId>"` (so it survives restarts and can be read with {@link load}), and folded with `evolve`.
 * - **`react(state, input)`** (the state after the input) returns the actions for the input: {@link send} a command
 *   to an aggregate's handler, {@link schedule} a timer. Inputs are the events it receives, {@link CommandRejected}
 *   (a sent command failed with a domain error: the process can compensate) and {@link TimerFired}.
 * - **Exactly-once effects under at-least-once delivery**: the `index`-th command sent for an input is handled with
 *   the command id `[name, triggering event id, index]` (`CommandHandler`'s `commandId`: its events get ids derived
 *   from it), so the same work done again after a crash replays the appends instead of writing them twice. Every
 *   sent command's events carry `causationId` = the triggering event's id, `correlationId` = the instance's and
 *   `processManager` = its name. An input's actions are done in order, before any later input of the instance; a
 *   marker in its stream records that they all are.
 * - **Failures**: it runs as a durable {@link Subscription.Subscription} named after it, so it follows the
 *   subscription's failure policy: a failing input (a command failing with something other than a domain error,
 *   an event that does not decode) is retried with the `retry` Schedule, then the process manager stops (with a
 *   checkpoint before the failing event; `onFailure: "stop"`, the default) or parks the input in the
 *   {@link ParkedEvents.ParkedEvents} store and moves on (`onFailure: "park"`; the instance's later inputs wait
 *   for the parked one: they park too until it is retried). The stores' failures (`EventStoreError`,
 *   `CommitOutcomeUnknown`, `TimerStoreError`, `CheckpointStoreError`: a database outage) are not the input's:
 *   they are retried for as long as it runs, with the subscription's backoff, from its checkpoint. On PostgreSQL a
 *   batch's writes (the instances' streams, the commands' events, the timers) commit with the checkpoint, in one
 *   transaction.
 * - **Durable timers**: {@link schedule} stores a timer in the {@link TimerStore.TimerStore}; the running process
 *   manager polls for due timers (`timerInterval`, default 1 second) and fires each once (its firing is recorded in
 *   the instance's stream under an id derived from the timer's).
 *
 * @example
 * ```ts
 * import { Aggregate, ProcessManager } from "@effect-eventsourcing/core"
 * import { Either, Schema } from "effect"
 *
 * class Ordered extends Schema.TaggedClass<Ordered>()("Ordered", { item: Schema.String }) {}
 * class Reserve extends Schema.TaggedClass<Reserve>()("Reserve", {}) {}
 * class Reserved extends Schema.TaggedClass<Reserved>()("Reserved", {}) {}
 * const Stock = Aggregate.make({
 *   name: "stock",
 *   events: Reserved,
 *   initialState: 0,
 *   decide: (_: Reserve) => Either.right([new Reserved()]),
 *   evolve: (n) => n + 1
 * })
 *
 * const Fulfilment = ProcessManager.make({
 *   name: "fulfilment",
 *   events: Ordered,
 *   filter: { categories: ["order"] },
 *   correlate: (_event, recorded) => recorded.streamId,
 *   initialState: { ordered: false },
 *   evolve: (state, input) => input._tag === "Ordered" ? { ordered: true } : state,
 *   react: (_state, input) =>
 *     input._tag === "Ordered" ? [ProcessManager.send(Stock, input.item, new Reserve())] : []
 * })
 * // run it: ProcessManager.layer(Fulfilment) with an EventStore, a CheckpointStore and a TimerStore
 * ```
 *
 * @since 0.3.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Aggregate from "./Aggregate.js"
import * as CheckpointStore from "./CheckpointStore.js"
import * as EventStore from "./EventStore.js"
import * as logEntries from "./internal/logEntries.js"
import * as Engine from "./internal/processManager.js"
import type * as ParkedEvents from "./ParkedEvents.js"
import * as Projection from "./Projection.js"
import * as StreamId from "./StreamId.js"
import * as Subscription from "./Subscription.js"
import * as TimerStore from "./TimerStore.js"

/**
 * @since 0.3.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/ProcessManager")

/**
 * @since 0.3.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The input `react` gets when a command it sent failed with a domain error (nothing was written): the target
 * (`aggregate`, `id`), the command's `_tag`, the error's `_tag` as `reason`, and the error's fields as JSON.
 *
 * @since 0.3.0
 * @category models
 */
export const CommandRejected: typeof Engine.CommandRejected = Engine.CommandRejected

/**
 * @since 0.3.0
 * @category models
 */
export type CommandRejected = Engine.CommandRejected

/**
 * The input `react` gets when a timer it scheduled is due (its `name` as given to {@link schedule}).
 *
 * @since 0.3.0
 * @category models
 */
export const TimerFired: typeof Engine.TimerFired = Engine.TimerFired

/**
 * @since 0.3.0
 * @category models
 */
export type TimerFired = Engine.TimerFired

/**
 * What `evolve` and `react` receive: an event the process manager reacts to, or an outcome of its own actions.
 *
 * @since 0.3.0
 * @category models
 */
export type Input<Event> = Event | CommandRejected | TimerFired

/**
 * What `react` returns: {@link send} or {@link schedule}.
 *
 * @since 0.3.0
 * @category models
 */
export type Action = Engine.Action

/**
 * A step of a running process manager, reported to `onStep` before it runs: `record` (an input into the instance's
 * stream), `dispatch` (a command), `reject` (record a rejection), `schedule` (a timer), `complete` (the marker that an
 * input's actions are done), `checkpoint` (the batch is done; its checkpoint follows), `fire` (a due timer),
 * `markFired`.
 *
 * @since 0.3.0
 * @category models
 */
export type Step = Engine.Step

/**
 * @since 0.3.0
 * @category models
 */
export interface ProcessManager<State, Event> {
  readonly [TypeId]: TypeId
  /** The subscription's name and the category of the instances' streams (a stream category: no `-`). */
  readonly name: string
  readonly filter: EventStore.Filter | undefined
  readonly correlate: (event: Event, recorded: EventStore.RecordedEvent) => string | undefined
  readonly initialState: State
  readonly evolve: (state: State, input: Input<Event>) => State
  readonly react: (state: State, input: Input<Event>) => ReadonlyArray<Action>
  /** Decodes a recorded event: `None` for a type it does not react to. */
  readonly decode: (type: string, data: unknown) => Option.Option<Either.Either<Event, unknown>>
}

/**
 * The failures a process manager stops with (see the module docs).
 *
 * @since 0.3.0
 * @category models
 */
export type Error = Subscription.Error<Engine.EngineError>

/**
 * Defines a process manager. `events` decodes the recorded events it reacts to (a Schema of tagged events: the
 * recorded `type` is the `_tag`); events of other types are skipped, and so are the events of its own instances.
 * `filter` narrows what its subscription reads (e.g. `{ categories: ["transfer", "account"] }`).
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = <State, Event, I extends { readonly _tag: string }>(options: {
  readonly name: string
  readonly events: Schema.Schema<Event, I>
  readonly filter?: EventStore.Filter
  readonly correlate: (event: Event, recorded: EventStore.RecordedEvent) => string | undefined
  readonly initialState: State
  readonly evolve: (state: State, input: Input<Event>) => State
  readonly react: (state: State, input: Input<Event>) => ReadonlyArray<Action>
}): ProcessManager<State, Event> => ({
  [TypeId]: TypeId,
  name: options.name,
  filter: options.filter,
  correlate: options.correlate,
  initialState: options.initialState,
  evolve: options.evolve,
  react: options.react,
  decode: Engine.decoder(options.events)
})

/**
 * An action: handle `command` for the aggregate `id` (with `CommandHandler.make(aggregate)` and a command id derived
 * from the triggering input and the action's index). A domain error comes back as {@link CommandRejected}.
 *
 * @since 0.3.0
 * @category constructors
 */
export const send: <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  id: string,
  command: Command
) => Action = Engine.send

/**
 * An action: a durable timer named `name`, due `after` from now; when it is due, `react` gets {@link TimerFired}
 * (once). Scheduling is idempotent: the same action redone after a crash keeps the first due time.
 *
 * @since 0.3.0
 * @category constructors
 */
export const schedule = (name: string, after: Duration.DurationInput): Action => ({
  _tag: "Schedule",
  name,
  after: Duration.decode(after)
})

/**
 * @since 0.3.0
 * @category models
 */
export interface Options {
  /** Where its subscription starts when it has no checkpoint (see `Subscription.Options.from`). */
  readonly from?: number
  /** Events per checkpoint (and per transaction on PostgreSQL); default 100. */
  readonly batchSize?: number
  /**
   * Retries a failing input, then the process manager stops or parks it (`onFailure`); default: the subscription's.
   * The stores' failures do not reach it (see the module docs).
   */
  readonly retry?: Schedule.Schedule<unknown, Error>
  /**
   * What happens to an input when `retry` gives up on it: `"stop"` (the default) stops the process manager; `"park"`
   * parks it in the `ParkedEvents` store (see `Subscription.Options.onFailure`) and moves on.
   */
  readonly onFailure?: "stop" | "park"
  /** The parked-events store; default: the `ParkedEvents` service when `onFailure` is `"park"`. */
  readonly parked?: ParkedEvents.ParkedEvents.Service
  /** How often due timers are looked for; default 1 second. */
  readonly timerInterval?: Duration.DurationInput
  /** Called before every step (tracing, and tests that stop the process at a chosen step). */
  readonly onStep?: (step: Step) => Effect.Effect<void>
}

/**
 * A running process manager: its subscription, and `join`, which fails with the reason when it stops.
 *
 * @since 0.3.0
 * @category models
 */
export interface Running {
  readonly name: string
  readonly subscription: Subscription.Subscription<Engine.EngineError>
  readonly join: Effect.Effect<never, Error>
}

/**
 * The services a running process manager needs.
 *
 * @since 0.3.0
 * @category models
 */
export type Requirements = EventStore.EventStore | CheckpointStore.CheckpointStore | TimerStore.TimerStore

/** The stores' failures: retried for as long as it runs, never stopping or parking an input. */
const isInfrastructure = (error: unknown): boolean =>
  error instanceof EventStore.EventStoreError || error instanceof EventStore.CommitOutcomeUnknown ||
  error instanceof TimerStore.TimerStoreError || error instanceof CheckpointStore.CheckpointStoreError

const definitionOf = <State, Event>(pm: ProcessManager<State, Event>): Engine.Definition<State, Event> => pm

/**
 * Starts the process manager (its subscription and its timers) in fibers that live until the scope closes.
 *
 * @since 0.3.0
 * @category constructors
 */
export const forkScoped = <State, Event, O extends Options = Options>(
  pm: ProcessManager<State, Event>,
  options: O = {} as O
): Effect.Effect<Running, never, Scope.Scope | Requirements | Subscription.Requirements<O>> =>
  Effect.gen(function*() {
    const name = pm.name
    const timers = yield* TimerStore.TimerStore
    const onStep = options.onStep ?? (() => Effect.void)
    const context: Engine.Context = { timers, onStep }
    const definition = definitionOf(pm)
    // one input at a time in this process: the subscription's batches and the timers take turns
    const permit = yield* Effect.makeSemaphore(1)
    const prefix = `${name}-`

    const one = (
      recorded: EventStore.RecordedEvent
    ): Effect.Effect<string | undefined, Engine.EngineError, EventStore.EventStore> => {
      if (recorded.streamId.startsWith(prefix)) return Effect.succeed(undefined)
      const decoded = pm.decode(recorded.type, recorded.data)
      if (Option.isNone(decoded)) return Effect.succeed(undefined)
      if (Either.isLeft(decoded.value)) {
        return Effect.fail(
          new EventStore.EventDecodeError({
            streamId: recorded.streamId,
            version: recorded.version,
            type: recorded.type,
            cause: decoded.value.left
          })
        )
      }
      const correlationId = pm.correlate(decoded.value.right, recorded)
      if (correlationId === undefined) return Effect.succeed(undefined)
      const id = Engine.receivedId(name, recorded.id)
      const candidate: Engine.Candidate = {
        id,
        event: {
          id,
          type: recorded.type,
          data: recorded.data,
          metadata: { correlationId, causationId: recorded.id }
        }
      }
      return Effect.as(Engine.handle(definition, context, correlationId, candidate), correlationId)
    }

    const projection = {
      ...Projection.makeBatched({
        name,
        handleBatch: (events: ReadonlyArray<EventStore.RecordedEvent>) =>
          permit.withPermits(1)(Effect.gen(function*() {
            let last: string | undefined
            for (const event of events) last = (yield* one(event)) ?? last
            if (last !== undefined) yield* onStep({ step: "checkpoint", correlationId: last, detail: "" })
          }))
      }),
      // a store that is down is not the input's fault: the subscription retries it like its own stores' failures
      [logEntries.infrastructureFailure]: isInfrastructure
    }

    const subscriptionOptions: Subscription.Options<Engine.EngineError> = {
      ...(options.from === undefined ? {} : { from: options.from }),
      ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      ...(options.onFailure === undefined ? {} : { onFailure: options.onFailure }),
      ...(options.parked === undefined ? {} : { parked: options.parked }),
      ...(pm.filter === undefined ? {} : { filter: pm.filter })
    }
    const subscription = yield* Subscription.forkScoped(projection, subscriptionOptions)

    const interval = options.timerInterval ?? "1 second"
    const fire = (timer: TimerStore.Timer) =>
      Effect.gen(function*() {
        yield* onStep({ step: "fire", correlationId: timer.correlationId, detail: timer.name })
        const fired = new Engine.TimerFired({ name: timer.name, timerId: timer.id, dueAt: timer.dueAt })
        const { _tag, ...data } = Schema.encodeSync(Engine.TimerFired)(fired)
        const id = Engine.firedId(name, timer.id)
        yield* permit.withPermits(1)(Engine.handle(definition, context, timer.correlationId, {
          id,
          event: { id, type: _tag, data, metadata: { correlationId: timer.correlationId, causationId: timer.id } }
        }))
        yield* onStep({ step: "markFired", correlationId: timer.correlationId, detail: timer.name })
        yield* timers.markFired(timer.id)
      })
    const poll = Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const due = yield* timers.due(name, now, 100)
        for (const timer of due) yield* fire(timer)
        if (due.length < 100) yield* Effect.sleep(interval)
      }
    })
    const timerLoop: Effect.Effect<never, Error, EventStore.EventStore> = poll.pipe(
      Effect.tapError((error) =>
        Effect.logWarning("ProcessManager timer failed", error).pipe(Effect.annotateLogs({ processManager: name }))
      ),
      // the stores' failures: again at the next poll, for as long as it runs
      Effect.retry({ while: isInfrastructure, schedule: Schedule.spaced(interval) }),
      Effect.retry(options.retry ?? Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(5))))
    )
    const timerFiber = yield* Effect.forkScoped(timerLoop)

    return {
      name,
      subscription,
      join: Effect.raceFirst(subscription.join, Fiber.join(timerFiber))
    }
  })

/**
 * Runs the process manager until interrupted (or until it stops with an error).
 *
 * @since 0.3.0
 * @category constructors
 */
export const run = <State, Event, O extends Options = Options>(
  pm: ProcessManager<State, Event>,
  options?: O
): Effect.Effect<never, Error, Requirements | Subscription.Requirements<O>> =>
  Effect.scoped(Effect.flatMap(forkScoped(pm, options), (running) => running.join))

/**
 * An instance as stored: its state, the version of its stream, and how many recorded inputs still have actions to
 * do (0 when it is idle).
 *
 * @since 0.3.0
 * @category models
 */
export interface Instance<State> {
  readonly state: State
  readonly version: number
  readonly pending: number
}

/**
 * Reads an instance (its initial state and version 0 when it has no stream yet).
 *
 * @since 0.3.0
 * @category accessors
 */
export const load = <State, Event>(
  pm: ProcessManager<State, Event>,
  correlationId: string
): Effect.Effect<Instance<State>, EventStore.ReadError | Aggregate.EventDecodeError, EventStore.EventStore> =>
  Effect.flatMap(
    EventStore.EventStore,
    (store) =>
      Effect.map(Engine.load(definitionOf(pm), store, correlationId), (instance) => ({
        state: instance.state,
        version: instance.version,
        pending: instance.pending.length
      }))
  )

/**
 * The stream of an instance: `"<name>-<correlationId>"`.
 *
 * @since 0.3.0
 * @category accessors
 */
export const streamId = <State, Event>(
  pm: ProcessManager<State, Event>,
  correlationId: string
): Either.Either<StreamId.StreamId, StreamId.InvalidStreamId> => StreamId.make(pm.name, correlationId)

/**
 * A Layer that runs the process manager for as long as it lives (a failure is logged; use {@link forkScoped} to
 * observe it).
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = <State, Event, O extends Options = Options>(
  pm: ProcessManager<State, Event>,
  options?: O
): Layer.Layer<never, never, Requirements | Subscription.Requirements<O>> =>
  Layer.scopedDiscard(forkScoped(pm, options))
