/* eslint-disable @typescript-eslint/no-require-imports -- a CommonJS consumer: require() is the point */
// A consumer app written as a user would, against the published packages (CommonJS: compiled by tsc to require()
// calls, run by node)
import Core = require("@effect-eventsourcing/core")
import Pg = require("@effect-eventsourcing/postgres")
import DeciderSpec = require("@effect-eventsourcing/testing/DeciderSpec")
import SqlPg = require("@effect/sql-pg")
import E = require("effect")

const { Aggregate, CommandHandler, InMemoryEventStore, Repository } = Core
const { Config, Console, Effect, Either, Layer, Schema } = E

class Opened extends Schema.TaggedClass<Opened>()("Opened", { limit: Schema.Int }) {}
class Reserved extends Schema.TaggedClass<Reserved>()("Reserved", { seats: Schema.Int }) {}
class Open extends Schema.TaggedClass<Open>()("Open", { limit: Schema.Int }) {}
class Reserve extends Schema.TaggedClass<Reserve>()("Reserve", { seats: Schema.Int }) {}
class SoldOut extends Schema.TaggedError<SoldOut>()("SoldOut", { free: Schema.Int }) {}

const Show = Aggregate.make({
  name: "show",
  events: Schema.Union(Opened, Reserved),
  commands: Schema.Union(Open, Reserve),
  initialState: { limit: 0, reserved: 0 },
  decide: (command, state) => {
    switch (command._tag) {
      case "Open":
        return Either.right([new Opened({ limit: command.limit })])
      case "Reserve":
        return state.reserved + command.seats > state.limit
          ? Either.left(new SoldOut({ free: state.limit - state.reserved }))
          : Either.right([new Reserved({ seats: command.seats })])
    }
  },
  evolve: (state, event) =>
    event._tag === "Opened"
      ? { ...state, limit: event.limit }
      : { ...state, reserved: state.reserved + event.seats }
})

const handle = CommandHandler.make(Show)
const shows = Repository.make(Show)

const run = (store: string) =>
  Effect.gen(function*() {
    const id = `s${Date.now().toString(36)}`
    yield* handle(id, new Open({ limit: 10 }))
    const { version } = yield* handle(id, new Reserve({ seats: 4 }))
    const refused = yield* Effect.flip(handle(id, new Reserve({ seats: 7 })))
    const loaded = yield* shows.load(id)
    yield* Console.log(
      `cjs ${store}: version ${version}, reserved ${loaded.state.reserved}/${loaded.state.limit}, refused ${
        refused._tag === "SoldOut" ? `SoldOut(free ${refused.free})` : refused._tag
      }`
    )
  })

const Postgres = Pg.PostgresEventStore.layerConfig({ schema: Config.succeed("smoke_cjs") }).pipe(
  Layer.provide(SqlPg.PgClient.layerConfig({ url: Config.redacted("DATABASE_URL") }))
)

const program = Effect.gen(function*() {
  yield* DeciderSpec.given(Show, [new Opened({ limit: 2 })]).when(new Reserve({ seats: 3 })).thenFails(
    new SoldOut({ free: 2 })
  )
  yield* Console.log(`cjs DeciderSpec: sold out (module loaded by ${typeof require === "function" ? "require" : "?"})`)
  yield* run("memory").pipe(Effect.provide(InMemoryEventStore.layer))
  yield* run("postgres").pipe(Effect.provide(Postgres))
})

Effect.runPromise(program).catch((error: unknown) => {
  console.error("cjs app failed:", error)
  process.exitCode = 1
})
