/**
 * Type tests: checked by `npm run check` (tsc). A wrong inference is a compile error.
 */
import { EventStore, InMemoryEventStore } from "@effect-eventsourcing/core"
import { Context, Effect, Layer } from "effect"

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false
const expectType = <T extends true>(_: T) => {}

// stands in for `PostgresEventStore.layer()` (core cannot depend on postgres): the same shape, an EventStore Layer that
// can fail and needs a client
class SqlClient extends Context.Tag("dtslint/SqlClient")<SqlClient, { readonly url: string }>() {}
declare const postgres: Layer.Layer<EventStore.EventStore, EventStore.EventStoreError, SqlClient>
declare const url: string | undefined

const program = Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion("account-1" as never))

// `layer` provides EventStore only, so choosing a store Layer at runtime type-checks
expectType<Equals<typeof InMemoryEventStore.layer, Layer.Layer<EventStore.EventStore>>>(true)
export const chosen = program.pipe(Effect.provide(url === undefined ? InMemoryEventStore.layer : postgres))
expectType<Equals<typeof chosen, Effect.Effect<number, EventStore.EventStoreError, SqlClient>>>(true)

// the way the bank-account example picks its store, from configuration
export const fromConfig = program.pipe(
  Effect.provide(Layer.unwrapEffect(Effect.sync(() => url === undefined ? InMemoryEventStore.layer : postgres)))
)
expectType<Equals<typeof fromConfig, Effect.Effect<number, EventStore.EventStoreError, SqlClient>>>(true)

export const withOptions = program.pipe(Effect.provide(url === undefined ? InMemoryEventStore.layerWith({}) : postgres))
expectType<Equals<typeof withOptions, Effect.Effect<number, EventStore.EventStoreError, SqlClient>>>(true)

// the test hooks come from their own Layer
expectType<
  Equals<
    ReturnType<typeof InMemoryEventStore.layerWithControl>,
    Layer.Layer<EventStore.EventStore | InMemoryEventStore.Control>
  >
>(true)
