/**
 * `tail`: the global log, live, until interrupted.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { stores } from "./database.js"
import * as Opt from "./options.js"
import { eventJson, printJson, tailLine, tombstoneJson, tombstoneLine } from "./output.js"

/** @internal */
export const tail = Command.make(
  "tail",
  {
    schema: Opt.schema,
    json: Opt.json,
    category: Options.text("category").pipe(
      Options.withDescription("Only events of streams of this category (repeatable)"),
      Options.repeated,
      Options.optional
    ),
    type: Options.text("type").pipe(
      Options.withDescription("Only events of this type (repeatable)"),
      Options.repeated,
      Options.optional
    ),
    from: Opt.atLeast("from", 1, "Start at this global position instead of after the last event").pipe(
      Options.optional
    )
  },
  ({ category, from, json, schema, type }) =>
    Effect.gen(function*() {
      const start = Option.isSome(from) ? from.value : (yield* EventStore.headPosition) + 1
      yield* Console.error(`Tailing schema ${schema} from position ${start} (Ctrl-C to stop)`)
      const categories = Option.getOrElse(category, () => [])
      const types = Option.getOrElse(type, () => [])
      const filter = {
        ...(categories.length > 0 ? { categories } : {}),
        ...(types.length > 0 ? { types } : {})
      }
      // deletions too: a deleted stream's tombstone is a line of the log (filtered by category, not by type)
      yield* EventStore.subscribe({ from: start, filter, deletions: true }).pipe(
        Stream.runForEach((entry) =>
          EventStore.isTombstone(entry)
            ? json ? printJson(tombstoneJson(entry)) : Console.log(tombstoneLine(entry))
            : json
            ? printJson(eventJson(entry))
            : Console.log(tailLine(entry))
        )
      )
    }).pipe(Effect.provide(stores(schema)))
).pipe(Command.withDescription(
  "Print the events appended (and the streams deleted) from now on, gap-safe, in position order, until interrupted"
))
