/**
 * Type tests: checked by `npm run check` (tsc). A wrong inference is a compile error.
 */
import { Aggregate, CommandHandler, EventStore, Repository } from "@effect-eventsourcing/core"
import { Either, Schema } from "effect"
import type { Effect } from "effect"

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const expectType = <T extends true>(_: T) => {}

class Added extends Schema.TaggedClass<Added>()("Added", { n: Schema.Number }) {}
class Cleared extends Schema.TaggedClass<Cleared>()("Cleared", {}) {}
class Add extends Schema.TaggedClass<Add>()("Add", { n: Schema.Number }) {}
class Clear extends Schema.TaggedClass<Clear>()("Clear", {}) {}
class TooBig extends Schema.TaggedError<TooBig>()("TooBig", { n: Schema.Number }) {}
class AlreadyEmpty extends Schema.TaggedError<AlreadyEmpty>()("AlreadyEmpty", {}) {}

const State = Schema.Struct({ total: Schema.Number, status: Schema.Literal("empty", "used") })
type State = typeof State.Type

// no annotations at all: Command from `commands`, State from `state`, E from every branch of decide
const Counter = Aggregate.make({
  name: "counter",
  events: Schema.Union(Added, Cleared),
  commands: Schema.Union(Add, Clear),
  state: State,
  initialState: { total: 0, status: "empty" },
  decide: (command, state) => {
    switch (command._tag) {
      case "Add":
        return command.n > 100 ? Either.left(new TooBig({ n: command.n })) : Either.right([new Added({ n: command.n })])
      case "Clear":
        return state.total === 0 ? Either.left(new AlreadyEmpty()) : Either.right([new Cleared()])
    }
  },
  evolve: (state, event) => {
    switch (event._tag) {
      case "Added":
        return { total: state.total + event.n, status: "used" as const }
      case "Cleared":
        return { total: 0, status: "empty" as const }
    }
  }
})

expectType<Equals<Aggregate.Aggregate.State<typeof Counter>, State>>(true)
expectType<Equals<Aggregate.Aggregate.Command<typeof Counter>, Add | Clear>>(true)
expectType<Equals<Aggregate.Aggregate.Event<typeof Counter>, Added | Cleared>>(true)
expectType<Equals<Aggregate.Aggregate.Error<typeof Counter>, TooBig | AlreadyEmpty>>(true)

// Command from the annotation of decide's first parameter, State from initialState, E = never
export const Simple = Aggregate.make({
  name: "simple",
  events: Added,
  initialState: 0,
  decide: (command: { readonly by: number }, _state) => Either.right([new Added({ n: command.by })]),
  evolve: (state, event) => state + event.n
})
expectType<Equals<Aggregate.Aggregate.State<typeof Simple>, number>>(true)
expectType<Equals<Aggregate.Aggregate.Command<typeof Simple>, { readonly by: number }>>(true)
expectType<Equals<Aggregate.Aggregate.Error<typeof Simple>, never>>(true)

// the handler's error channel is the domain errors plus the store's, and it requires the EventStore
export const handle = CommandHandler.make(Counter)
type HandleEffect = ReturnType<typeof handle>
expectType<Equals<Effect.Effect.Error<HandleEffect>, TooBig | AlreadyEmpty | CommandHandler.HandlerError>>(true)
expectType<Equals<Effect.Effect.Context<HandleEffect>, EventStore.EventStore>>(true)
expectType<Equals<Effect.Effect.Success<HandleEffect>["state"], State>>(true)

// load fails with AggregateNotFound; loadOption does not
export const repo = Repository.make(Counter)
expectType<
  Equals<Effect.Effect.Error<ReturnType<typeof repo.load>>, EventStore.AggregateNotFound | Repository.LoadError>
>(true)
expectType<Equals<Effect.Effect.Error<ReturnType<typeof repo.loadOption>>, Repository.LoadError>>(true)
