/**
 * What the commands print: aligned tables for people, one JSON object per line (`--json`) for scripts.
 *
 * @internal
 */
import type * as EventStore from "@effect-eventsourcing/core/EventStore"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import type * as Effect from "effect/Effect"

/** @internal A column of a table: its header and how to print a row's cell. */
export interface Column<A> {
  readonly header: string
  readonly cell: (row: A) => string
  readonly align?: "left" | "right"
}

/**
 * The lines of a table: a header and one line per row, columns two spaces apart, the last column unpadded.
 *
 * @internal
 */
export const table = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>): ReadonlyArray<string> => {
  const cells = rows.map((row) => columns.map((column) => column.cell(row)))
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)))
  const render = (line: ReadonlyArray<string>) =>
    line.map((cell, i) => {
      if (i === line.length - 1 && columns[i]!.align !== "right") return cell
      return columns[i]!.align === "right" ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)
    }).join("  ").trimEnd()
  return [render(columns.map((column) => column.header)), ...cells.map(render)]
}

/** @internal Prints a table (nothing but the header for no rows). */
export const printTable = <A>(columns: ReadonlyArray<Column<A>>, rows: ReadonlyArray<A>): Effect.Effect<void> =>
  Console.log(table(columns, rows).join("\n"))

/** @internal Prints one JSON document on one line. */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value))

/** @internal */
export const iso = (time: DateTime.DateTime): string => DateTime.formatIso(time)

/** @internal A recorded event as `--json` prints it. */
export const eventJson = (event: EventStore.RecordedEvent) => ({
  position: event.position,
  streamId: event.streamId,
  version: event.version,
  type: event.type,
  id: event.id,
  recordedAt: iso(event.recordedAt),
  data: event.data,
  metadata: event.metadata
})

/** @internal Compact JSON of an event's data, for tables. */
export const compact = (value: unknown): string => JSON.stringify(value) ?? "null"

/** @internal The columns of `stream show`. */
export const eventColumns: ReadonlyArray<Column<EventStore.RecordedEvent>> = [
  { header: "VERSION", cell: (e) => String(e.version), align: "right" },
  { header: "POSITION", cell: (e) => String(e.position), align: "right" },
  { header: "RECORDED AT", cell: (e) => iso(e.recordedAt) },
  { header: "TYPE", cell: (e) => e.type },
  { header: "DATA", cell: (e) => compact(e.data) }
]

/** @internal One line of `tail`: position, time, stream, version, type, data. */
export const tailLine = (event: EventStore.RecordedEvent): string =>
  `${String(event.position).padStart(8)}  ${
    iso(event.recordedAt)
  }  ${event.streamId} v${event.version}  ${event.type}  ${compact(event.data)}`

/** @internal A deletion (tombstone) as `tail --json` prints it. */
export const tombstoneJson = (tombstone: EventStore.Tombstone) => ({
  position: tombstone.position,
  streamId: tombstone.streamId,
  deleted: true,
  version: tombstone.version,
  recordedAt: iso(tombstone.recordedAt)
})

/** @internal One line of `tail` for a deleted stream. */
export const tombstoneLine = (tombstone: EventStore.Tombstone): string =>
  `${String(tombstone.position).padStart(8)}  ${
    iso(tombstone.recordedAt)
  }  ${tombstone.streamId} deleted (was at v${tombstone.version})`
