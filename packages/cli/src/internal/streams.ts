/**
 * `migrate`, `streams list` and `stream show`.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as StreamId from "@effect-eventsourcing/core/StreamId"
import * as PostgresEventStore from "@effect-eventsourcing/postgres/PostgresEventStore"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { connection, requireStore, stores } from "./database.js"
import { StreamNotFound } from "./errors.js"
import * as Opt from "./options.js"
import { eventColumns, eventJson, printJson, printTable } from "./output.js"

/** @internal */
export const migrate = Command.make(
  "migrate",
  { schema: Opt.schema, json: Opt.json },
  ({ json, schema }) =>
    Effect.gen(function*() {
      const ran = yield* PostgresEventStore.migrate({ schema })
      if (json) return yield* printJson({ schema, applied: ran })
      if (ran.length === 0) return yield* Console.log(`Schema ${schema} is up to date.`)
      yield* Console.log(
        `Applied ${ran.length} migration${ran.length === 1 ? "" : "s"} to schema ${schema}:\n` +
          ran.map((m) => `  ${m.id}_${m.name}`).join("\n")
      )
    }).pipe(Effect.provide(connection))
).pipe(Command.withDescription("Create the schema, or bring it up to date with the store's migrations"))

interface StreamRow {
  readonly streamId: string
  readonly version: number
  readonly position: number
  readonly recordedAt: string
}

/**
 * The streams of the store, the most recently written first. The EventStore port has no listing of streams, so this
 * is the command's own query, on the `events` table (grouped by stream, through its `(stream_id, version)` key).
 */
const listStreams = (schema: string, category: Option.Option<string>, limit: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* requireStore(schema)
    const where = Option.isSome(category) ? sql`where category = ${category.value}` : sql``
    const rows = yield* sql<{
      readonly stream_id: string
      readonly version: string | number
      readonly position: string | number
      readonly recorded_at: Date
    }>`select stream_id, max(version) as version, max(position) as position, max(recorded_at) as recorded_at
       from ${sql(schema)}.events ${where}
       group by stream_id
       order by max(position) desc
       limit ${limit}`
    return rows.map((row): StreamRow => ({
      streamId: row.stream_id,
      version: Number(row.version),
      position: Number(row.position),
      recordedAt: DateTime.formatIso(DateTime.unsafeMake(row.recorded_at))
    }))
  })

/** @internal */
export const streamsList = Command.make(
  "list",
  {
    schema: Opt.schema,
    json: Opt.json,
    category: Options.text("category").pipe(
      Options.withDescription("Only the streams of this category (the part of the stream id before the first '-')"),
      Options.optional
    ),
    limit: Opt.atLeast("limit", 1, "How many streams to list, the most recently written first").pipe(
      Options.withDefault(50)
    )
  },
  ({ category, json, limit, schema }) =>
    listStreams(schema, category, limit).pipe(
      Effect.flatMap((rows) =>
        json
          ? Effect.forEach(rows, printJson, { discard: true })
          : printTable([
            { header: "STREAM", cell: (r: StreamRow) => r.streamId },
            { header: "VERSION", cell: (r: StreamRow) => String(r.version), align: "right" },
            { header: "LAST POSITION", cell: (r: StreamRow) => String(r.position), align: "right" },
            { header: "LAST WRITE", cell: (r: StreamRow) => r.recordedAt }
          ], rows)
      ),
      Effect.provide(connection)
    )
).pipe(Command.withDescription("List streams with their version, the most recently written first"))

/** @internal */
export const streams = Command.make("streams").pipe(
  Command.withDescription("Streams of the store"),
  Command.withSubcommands([streamsList])
)

const parseStreamId = (raw: string) => Effect.mapError(StreamId.parse(raw), (error) => error)

/** @internal */
export const streamShow = Command.make(
  "show",
  {
    schema: Opt.schema,
    json: Opt.json,
    from: Opt.atLeast("from", 1, "First version to show (default 1)").pipe(Options.optional),
    to: Opt.atLeast("to", 1, "Last version to show (default: the last)").pipe(Options.optional),
    streamId: Args.text({ name: "stream-id" }).pipe(Args.withDescription("The stream, <category>-<id>"))
  },
  ({ from, json, schema, streamId, to }) =>
    Effect.gen(function*() {
      const id = yield* parseStreamId(streamId)
      const events = EventStore.read(id, {
        ...Option.match(from, { onNone: () => ({}), onSome: (from) => ({ from }) }),
        ...Option.match(to, { onNone: () => ({}), onSome: (to) => ({ to }) })
      })
      let count = 0
      if (json) {
        yield* Stream.runForEach(events, (event) => {
          count++
          return printJson(eventJson(event))
        })
      } else {
        const all = yield* Stream.runCollect(events)
        count = all.length
        if (count > 0) yield* printTable(eventColumns, [...all])
      }
      if (count === 0 && (yield* Effect.flatMap(EventStore.EventStore, (store) => store.streamVersion(id))) === 0) {
        return yield* new StreamNotFound({ streamId: id })
      }
    }).pipe(Effect.provide(stores(schema)))
).pipe(Command.withDescription("Show the events of one stream"))

/** @internal */
export const stream = Command.make("stream").pipe(
  Command.withDescription("One stream of the store"),
  Command.withSubcommands([streamShow])
)
