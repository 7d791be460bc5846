/**
 * `parked list | retry <id> | skip <id>`, on the `ParkedEvents` port.
 *
 * @internal
 */
import * as ParkedEvents from "@effect-eventsourcing/core/ParkedEvents"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { parkedEvents } from "./database.js"
import * as Opt from "./options.js"
import { iso, printJson, printTable } from "./output.js"

const shorten = (text: string, max: number) => text.length <= max ? text : `${text.slice(0, max - 1)}…`

/** @internal A parked event as `--json` prints it. */
export const parkedJson = (entry: ParkedEvents.ParkedEvent) => ({
  id: entry.id,
  subscription: entry.subscription,
  position: entry.position,
  streamId: entry.streamId,
  version: entry.version,
  eventId: entry.eventId,
  type: entry.type,
  state: entry.state,
  attempts: entry.attempts,
  parkedAt: iso(entry.parkedAt),
  error: entry.error
})

const list = Command.make(
  "list",
  {
    schema: Opt.schema,
    json: Opt.json,
    subscription: Options.text("subscription").pipe(
      Options.withDescription("Only the events parked by this subscription"),
      Options.optional
    ),
    state: Options.choice("state", ["parked", "retry", "skipped"]).pipe(
      Options.withDescription("Only events in this state"),
      Options.optional
    )
  },
  ({ json, schema, state, subscription }) =>
    Effect.gen(function*() {
      const entries = yield* ParkedEvents.list({
        ...Option.match(subscription, { onNone: () => ({}), onSome: (subscription) => ({ subscription }) }),
        ...Option.match(state, { onNone: () => ({}), onSome: (state) => ({ state }) })
      })
      if (json) return yield* Effect.forEach(entries, (entry) => printJson(parkedJson(entry)), { discard: true })
      yield* printTable([
        { header: "ID", cell: (e: ParkedEvents.ParkedEvent) => String(e.id), align: "right" },
        { header: "SUBSCRIPTION", cell: (e: ParkedEvents.ParkedEvent) => e.subscription },
        { header: "POSITION", cell: (e: ParkedEvents.ParkedEvent) => String(e.position), align: "right" },
        { header: "EVENT", cell: (e: ParkedEvents.ParkedEvent) => `${e.streamId} v${e.version} ${e.type}` },
        { header: "STATE", cell: (e: ParkedEvents.ParkedEvent) => e.state },
        { header: "ATTEMPTS", cell: (e: ParkedEvents.ParkedEvent) => String(e.attempts), align: "right" },
        { header: "PARKED AT", cell: (e: ParkedEvents.ParkedEvent) => iso(e.parkedAt) },
        { header: "ERROR", cell: (e: ParkedEvents.ParkedEvent) => shorten(e.error.replace(/\s+/g, " "), 80) }
      ], entries)
    }).pipe(Effect.provide(parkedEvents(schema)))
).pipe(Command.withDescription("List the events subscriptions parked (handler failures set aside)"))

const id = Args.integer({ name: "id" }).pipe(Args.withDescription("The parked event's id (see parked list)"))

const retry = Command.make(
  "retry",
  { schema: Opt.schema, json: Opt.json, id },
  ({ id, json, schema }) =>
    ParkedEvents.retry(id).pipe(
      Effect.zipRight(
        json
          ? printJson({ id, state: "retry" })
          : Console.log(`Parked event ${id}: retry requested; the running subscription re-delivers it.`)
      ),
      Effect.provide(parkedEvents(schema))
    )
).pipe(Command.withDescription("Ask the running subscription to re-deliver a parked event to its handler"))

const skip = Command.make(
  "skip",
  { schema: Opt.schema, json: Opt.json, id },
  ({ id, json, schema }) =>
    ParkedEvents.skip(id).pipe(
      Effect.zipRight(
        json
          ? printJson({ id, state: "skipped" })
          : Console.log(`Parked event ${id}: skipped; it is never delivered again (and stays listed).`)
      ),
      Effect.provide(parkedEvents(schema))
    )
).pipe(Command.withDescription("Mark a parked event skipped: never delivered again"))

/** @internal */
export const parked = Command.make("parked").pipe(
  Command.withDescription("Events subscriptions parked after their handler failed"),
  Command.withSubcommands([list, retry, skip])
)
