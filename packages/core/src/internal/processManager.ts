/**
 * The engine of `ProcessManager`: an instance's stream (load and fold), the handling of one input (record it, then
 * complete every recorded input whose actions are not all done, in stream order), and the dispatch of one command.
 *
 * An instance's stream holds its inputs (copies of the events it received, `CommandRejected`, `TimerFired`), each
 * under an id derived from what caused it, and one `ProcessManagerHandled` marker per input once all the actions
 * `react` returned for it are done. Every write is deterministic (ids derived from the process manager's name, the
 * triggering id and the action's index; appends at `Exact(version)`), so doing the same work again after a crash
 * replays what was written and continues where it stopped.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Stream from "effect/Stream"
import * as Aggregate from "../Aggregate.js"
import * as CommandHandler from "../CommandHandler.js"
import * as EventStore from "../EventStore.js"
import * as ExpectedVersion from "../ExpectedVersion.js"
import * as StreamId from "../StreamId.js"
import type * as TimerStore from "../TimerStore.js"
import * as Uuid from "./uuid.js"

/** @internal The marker type: every action of the input `data.input` is done. */
export const handledType = "ProcessManagerHandled"

/** @internal */
export class CommandRejected extends Schema.TaggedClass<CommandRejected>()("CommandRejected", {
  aggregate: Schema.String,
  id: Schema.String,
  command: Schema.String,
  reason: Schema.String,
  error: Schema.Unknown
}) {}

/** @internal */
export class TimerFired extends Schema.TaggedClass<TimerFired>()("TimerFired", {
  name: Schema.String,
  timerId: Schema.String,
  dueAt: Schema.Number
}) {}

/** @internal What a dispatched command came to. */
export type Outcome = { readonly _tag: "Done" } | { readonly _tag: "Rejected"; readonly error: unknown }

/** @internal */
export interface Send {
  readonly _tag: "Send"
  readonly aggregate: string
  readonly id: string
  readonly command: unknown
  readonly dispatch: (
    commandId: string
  ) => Effect.Effect<Outcome, CommandHandler.HandlerError, EventStore.EventStore>
}

/** @internal */
export interface Schedule {
  readonly _tag: "Schedule"
  readonly name: string
  readonly after: Duration.Duration
}

/** @internal */
export type Action = Send | Schedule

/** @internal A step of the engine, reported before it runs (tests crash the process there). */
export interface Step {
  readonly step: "record" | "dispatch" | "reject" | "schedule" | "complete" | "checkpoint" | "fire" | "markFired"
  readonly correlationId: string
  readonly detail: string
}

/** @internal The process manager as the engine sees it. */
export interface Definition<State, Event> {
  readonly name: string
  readonly initialState: State
  readonly evolve: (state: State, input: Event | CommandRejected | TimerFired) => State
  readonly react: (state: State, input: Event | CommandRejected | TimerFired) => ReadonlyArray<Action>
  readonly decode: (type: string, data: unknown) => Option.Option<Either.Either<Event, unknown>>
}

/** @internal */
export type EngineError =
  | CommandHandler.HandlerError
  | EventStore.ReadError
  | Aggregate.EventDecodeError
  | TimerStore.TimerStoreError

const isHandlerError = (u: unknown): u is CommandHandler.HandlerError =>
  u instanceof EventStore.ConcurrencyConflict || u instanceof EventStore.EventIdConflict ||
  u instanceof EventStore.CommitOutcomeUnknown || u instanceof EventStore.EventStoreError ||
  u instanceof EventStore.InvalidArgument || u instanceof EventStore.LockTimeout ||
  u instanceof StreamId.InvalidStreamId || u instanceof Aggregate.EventDecodeError ||
  u instanceof Aggregate.EventEncodeError

// -------------------------------------------------------------------------------------
// ids
// -------------------------------------------------------------------------------------

const namespace = Uuid.parse("b1d6a3c2-52a4-4f0e-8d7e-3c1f9a6e2b57")

/** @internal A deterministic uuid of the process manager's own writes. */
export const idOf = (name: string, kind: string, of: string): string =>
  Uuid.v5(namespace, JSON.stringify([name, kind, of]))

/** @internal The command id of the `index`-th action for the triggering id `trigger`. */
export const commandIdOf = (name: string, trigger: string, index: number): string =>
  JSON.stringify([name, trigger, index])

// -------------------------------------------------------------------------------------
// sending commands
// -------------------------------------------------------------------------------------

const handlers = new WeakMap<object, CommandHandler.CommandHandler<unknown, unknown, unknown, unknown>>()

/** @internal The `Send` action of a command for the aggregate `id`. */
export const send = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  id: string,
  command: Command
): Send => {
  let handler = handlers.get(aggregate) as CommandHandler.CommandHandler<State, Command, Event, E> | undefined
  if (handler === undefined) {
    handler = CommandHandler.make(aggregate)
    handlers.set(aggregate, handler as CommandHandler.CommandHandler<unknown, unknown, unknown, unknown>)
  }
  const handle = handler
  /** Whether the command's first event is stored: it was handled before (its events got ids from `commandId`). */
  const committed = (commandId: string) =>
    Effect.gen(function*() {
      const streamId = yield* StreamId.make(aggregate.name, id)
      const first = Uuid.eventId(aggregate.name, streamId, commandId, 0)
      const store = yield* EventStore.EventStore
      const found = yield* Stream.runCollect(
        Stream.filter(store.read(streamId), (event) => event.id === first).pipe(Stream.take(1))
      )
      return found.length > 0
    })
  return {
    _tag: "Send",
    aggregate: aggregate.name,
    id,
    command,
    dispatch: (commandId) =>
      handle(id, command, { commandId }).pipe(
        Effect.as<Outcome>({ _tag: "Done" }),
        // handled before (the command's events are stored): a domain error or other events now mean nothing
        Effect.catchAll((error): Effect.Effect<Outcome, CommandHandler.HandlerError, EventStore.EventStore> =>
          !isHandlerError(error) || error instanceof EventStore.EventIdConflict
            ? Effect.flatMap(committed(commandId), (done): Effect.Effect<Outcome, CommandHandler.HandlerError> =>
              done
                ? Effect.succeed({ _tag: "Done" })
                : isHandlerError(error)
                ? Effect.fail(error)
                : Effect.succeed({ _tag: "Rejected", error }))
            : Effect.fail(error)
        )
      )
  }
}

const tagOf = (u: unknown): string =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" ? u._tag : "unknown"

/** The fields of a domain error as JSON (what the instance's stream keeps of it). */
const errorJson = (error: unknown): unknown => {
  try {
    return JSON.parse(JSON.stringify(error) ?? "null")
  } catch {
    return null
  }
}

// -------------------------------------------------------------------------------------
// instances
// -------------------------------------------------------------------------------------

/** @internal An input recorded in an instance's stream, with the state after it. */
export interface Entry<State, Event> {
  readonly id: string
  readonly trigger: string
  readonly input: Event | CommandRejected | TimerFired
  readonly after: State
}

/** @internal An instance as loaded: its state, version, the ids in its stream and the inputs not completed. */
export interface Instance<State, Event> {
  readonly streamId: StreamId.StreamId
  readonly state: State
  readonly version: number
  readonly ids: ReadonlySet<string>
  readonly pending: ReadonlyArray<Entry<State, Event>>
}

const decodeRejected = Schema.decodeUnknownEither(CommandRejected)
const decodeFired = Schema.decodeUnknownEither(TimerFired)

const withTag = (data: unknown, type: string): unknown =>
  typeof data === "object" && data !== null && !Array.isArray(data) ? { ...data, _tag: type } : data

/** @internal Reads and folds an instance's stream. */
export const load = <State, Event>(
  definition: Definition<State, Event>,
  store: EventStore.EventStore.Service,
  correlationId: string
): Effect.Effect<Instance<State, Event>, EventStore.ReadError | Aggregate.EventDecodeError> =>
  Effect.gen(function*() {
    const streamId = yield* StreamId.make(definition.name, correlationId)
    const events = yield* Stream.runCollect(store.read(streamId))
    let state = definition.initialState
    let version = 0
    const ids = new Set<string>()
    const open = new Map<string, Entry<State, Event>>()
    for (const recorded of events) {
      version = recorded.version
      ids.add(recorded.id)
      if (recorded.type === handledType) {
        const input = (recorded.data as { readonly input?: unknown }).input
        if (typeof input === "string") open.delete(input)
        continue
      }
      const fail = (cause: unknown) =>
        new Aggregate.EventDecodeError({ streamId, version: recorded.version, type: recorded.type, cause })
      let input: Event | CommandRejected | TimerFired
      let trigger = recorded.id
      if (recorded.type === "CommandRejected" || recorded.type === "TimerFired") {
        const decoded: Either.Either<CommandRejected | TimerFired, unknown> = recorded.type === "CommandRejected"
          ? decodeRejected(withTag(recorded.data, recorded.type))
          : decodeFired(withTag(recorded.data, recorded.type))
        if (Either.isLeft(decoded)) return yield* fail(decoded.left)
        input = decoded.right
      } else {
        const decoded = definition.decode(recorded.type, recorded.data)
        if (Option.isNone(decoded)) return yield* fail("not an event type of the process manager")
        if (Either.isLeft(decoded.value)) return yield* fail(decoded.value.left)
        input = decoded.value.right
        trigger = typeof recorded.metadata.causationId === "string" ? recorded.metadata.causationId : recorded.id
      }
      state = definition.evolve(state, input)
      open.set(recorded.id, { id: recorded.id, trigger, input, after: state })
    }
    return { streamId, state, version, ids, pending: Array.from(open.values()) }
  })

/** @internal An input to record: its id in the instance's stream, and the event to append. */
export interface Candidate {
  readonly id: string
  readonly event: EventStore.EventData
}

/** @internal The engine's services besides the event store. */
export interface Context {
  readonly timers: TimerStore.TimerStore.Service
  readonly onStep: (step: Step) => Effect.Effect<void>
}

const maxConflicts = 100

/**
 * @internal
 * Completes the instance's pending inputs, then records `candidate` (unless its stream has it) and completes it.
 */
export const handle = <State, Event>(
  definition: Definition<State, Event>,
  context: Context,
  correlationId: string,
  candidate: Candidate | undefined
): Effect.Effect<void, EngineError, EventStore.EventStore> =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    let conflicts = 0
    while (true) {
      const instance = yield* load(definition, store, correlationId)
      const next = instance.pending[0]
      const work = next !== undefined
        ? complete(definition, context, store, instance, next)
        : candidate !== undefined && !instance.ids.has(candidate.id)
        ? Effect.zipRight(
          context.onStep({ step: "record", correlationId, detail: candidate.event.type }),
          store.append(instance.streamId, [candidate.event], ExpectedVersion.Exact(instance.version))
        )
        : undefined
      if (work === undefined) return
      const result = yield* Effect.either(work)
      if (Either.isRight(result)) continue
      const error = result.left
      // another writer of the instance (a timer fired by another process, a consumer that lost its lease): reload
      if (error instanceof EventStore.ConcurrencyConflict && ++conflicts < maxConflicts) continue
      return yield* Effect.fail(error)
    }
  }).pipe(
    Effect.withSpan("ProcessManager.handle", { attributes: { "processManager": definition.name, correlationId } })
  )

/** Runs the actions of one recorded input, then marks it handled. */
const complete = <State, Event>(
  definition: Definition<State, Event>,
  context: Context,
  store: EventStore.EventStore.Service,
  instance: Instance<State, Event>,
  entry: Entry<State, Event>
): Effect.Effect<void, EngineError, EventStore.EventStore> =>
  Effect.gen(function*() {
    const name = definition.name
    const correlationId = StreamId.id(instance.streamId)
    const metadata = { correlationId, causationId: entry.trigger, processManager: name }
    let version = instance.version
    const actions = definition.react(entry.after, entry.input)
    for (let index = 0; index < actions.length; index++) {
      const action = actions[index]!
      const commandId = commandIdOf(name, entry.trigger, index)
      if (action._tag === "Schedule") {
        yield* context.onStep({ step: "schedule", correlationId, detail: action.name })
        const now = yield* Clock.currentTimeMillis
        yield* context.timers.schedule({
          id: idOf(name, "timer", commandId),
          processManager: name,
          correlationId,
          name: action.name,
          dueAt: now + Duration.toMillis(action.after)
        })
        continue
      }
      const rejectedId = idOf(name, "rejected", commandId)
      // its outcome is recorded: it was dispatched before
      if (instance.ids.has(rejectedId)) continue
      yield* context.onStep({
        step: "dispatch",
        correlationId,
        detail: `${action.aggregate}-${action.id} ${tagOf(action.command)}`
      })
      const outcome = yield* CommandHandler.withMetadata(action.dispatch(commandId), metadata)
      if (outcome._tag === "Done") continue
      yield* context.onStep({
        step: "reject",
        correlationId,
        detail: `${tagOf(action.command)}: ${tagOf(outcome.error)}`
      })
      const rejected = new CommandRejected({
        aggregate: action.aggregate,
        id: action.id,
        command: tagOf(action.command),
        reason: tagOf(outcome.error),
        error: errorJson(outcome.error)
      })
      const { _tag, ...data } = Schema.encodeSync(CommandRejected)(rejected)
      yield* store.append(
        instance.streamId,
        [{ id: rejectedId, type: _tag, data, metadata: { correlationId, causationId: entry.trigger } }],
        ExpectedVersion.Exact(version)
      )
      version++
    }
    yield* context.onStep({ step: "complete", correlationId, detail: tagOf(entry.input) })
    yield* store.append(
      instance.streamId,
      [{ id: idOf(name, "handled", entry.id), type: handledType, data: { input: entry.id }, metadata }],
      ExpectedVersion.Exact(version)
    )
  })

// -------------------------------------------------------------------------------------
// decoding the events it reacts to
// -------------------------------------------------------------------------------------

/** The `_tag` literals of an encoded schema (a union of tagged structs, possibly refined or suspended). */
const tagsOf = (ast: SchemaAST.AST, out: Set<string>): boolean => {
  switch (ast._tag) {
    case "Union":
      return ast.types.every((member) => tagsOf(member, out))
    case "Refinement":
      return tagsOf(ast.from, out)
    case "Suspend":
      return tagsOf(ast.f(), out)
    case "TypeLiteral": {
      const tag = ast.propertySignatures.find((signature) => signature.name === "_tag")
      if (tag === undefined || tag.type._tag !== "Literal" || typeof tag.type.literal !== "string") return false
      out.add(tag.type.literal)
      return true
    }
    default:
      return false
  }
}

/**
 * @internal
 * Decodes a recorded event with the schema of the events a process manager reacts to: `None` for a type the schema
 * does not know (when its tags cannot be listed, every type is tried), an error when a known type does not decode.
 */
export const decoder = <Event, I extends { readonly _tag: string }>(
  events: Schema.Schema<Event, I>
): (type: string, data: unknown) => Option.Option<Either.Either<Event, unknown>> => {
  const tags = new Set<string>()
  const listed = tagsOf(SchemaAST.encodedAST(events.ast), tags)
  const decode = Schema.decodeUnknownEither(events)
  return (type, data) => {
    if (listed && !tags.has(type)) return Option.none()
    const decoded = decode(withTag(data, type))
    if (!listed && Either.isLeft(decoded)) return Option.none()
    return Option.some(decoded)
  }
}

/** @internal The triggering id of an input event (its own id) as the instance's stream records it. */
export const receivedId = (name: string, eventId: string): string => idOf(name, "received", eventId)

/** @internal The id of the firing of a timer in the instance's stream. */
export const firedId = (name: string, timerId: string): string => idOf(name, "fired", timerId)
