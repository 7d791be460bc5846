/**
 * The migrations are frozen once released: a database migrated by an earlier version must end up exactly where a
 * fresh one does. This pins the SQL text every migration sends, byte for byte, to the fixtures in
 * `test/fixtures/migrations/<id as 4 digits>_<name>.sql` (captured from the code before any refactoring).
 *
 * - without a database: each migration of the loader runs on a recording `SqlClient` (PostgreSQL's statement
 *   compiler, a connection that records what it is asked to execute), once for the default schema and once for
 *   another schema name (the name is spliced into the text);
 * - on a real server: `migrate` on a fresh database sends each fixture's text verbatim (the `db.query.text` of the
 *   `sql.execute` spans), in migration order.
 *
 * A new migration needs a new fixture (the test fails until it is added); an existing fixture never changes.
 */
import { Reactivity } from "@effect/experimental"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Stream, Tracer } from "effect"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { migrations } from "../src/internal/migrations/index.js"
import { migrate } from "../src/internal/schema.js"
import { freshDatabase } from "./utils.js"

const fixtures = Path.join(Path.dirname(fileURLToPath(import.meta.url)), "fixtures", "migrations")

const fixtureName = (id: number, name: string) => `${String(id).padStart(4, "0")}_${name}.sql`

const readFixture = (file: string): string => Fs.readFileSync(Path.join(fixtures, file), "utf8")

/** Where two texts first differ, with some context (the assertion's own message cuts long strings short). */
const firstDifference = (actual: string, expected: string): string => {
  let i = 0
  while (i < actual.length && i < expected.length && actual[i] === expected[i]) i++
  const around = (text: string) => JSON.stringify(text.slice(Math.max(0, i - 40), i + 40))
  return `first difference at offset ${i}: sent ${around(actual)}, pinned ${around(expected)}`
}

/** What one run of a migration sent: the statements' texts, each followed by its parameters when it has any. */
const render = (statements: ReadonlyArray<readonly [text: string, params: ReadonlyArray<unknown>]>): string =>
  statements.map(([text, params]) => params.length === 0 ? text : `${text}\n-- params: ${JSON.stringify(params)}\n`)
    .join("\n-- next statement --\n")

/** A `SqlClient` that compiles as @effect/sql-pg does and records every statement instead of running it. */
const recordingClient = Effect.gen(function*() {
  const sent: Array<readonly [string, ReadonlyArray<unknown>]> = []
  const record = (text: string, params: ReadonlyArray<unknown>) =>
    Effect.sync(() => {
      sent.push([text, params])
      return []
    })
  const connection: Connection = {
    execute: record,
    executeRaw: record,
    executeStream: () => Stream.empty,
    executeValues: (text, params) => Effect.as(record(text, params), []),
    executeUnprepared: record
  }
  const sql = yield* SqlClient.make({
    acquirer: Effect.succeed(connection),
    compiler: PgClient.makeCompiler(),
    spanAttributes: []
  })
  return { sql, sent }
}).pipe(Effect.provide(Reactivity.layer))

/** Runs every migration of the loader on the recording client: `[fixture file, what it sent]` in order. */
const generated = (schema: string) =>
  Effect.gen(function*() {
    const loaded = yield* migrations(schema)
    const out: Array<readonly [string, string]> = []
    for (const [id, name, load] of loaded) {
      const { sent, sql } = yield* recordingClient
      // the loader types a migration as `any`
      const migration: Effect.Effect<unknown, unknown, SqlClient.SqlClient> = yield* Effect.provideService(
        load,
        SqlClient.SqlClient,
        sql
      )
      yield* Effect.provideService(migration, SqlClient.SqlClient, sql)
      out.push([fixtureName(id, name), render(sent)])
    }
    return out
  })

describe("frozen migrations", () => {
  it.effect("every migration has a fixture and every fixture a migration", () =>
    Effect.gen(function*() {
      const files = Fs.readdirSync(fixtures).filter((file) => file.endsWith(".sql")).sort()
      const migrations = (yield* generated("event_store")).map(([file]) => file)
      assert.deepStrictEqual(migrations, files)
      assert.isAtLeast(files.length, 4)
    }))

  it.effect("send the pinned SQL, byte for byte", () =>
    Effect.gen(function*() {
      for (const [file, text] of yield* generated("event_store")) {
        const pinned = readFixture(file)
        assert.strictEqual(text, pinned, `migration ${file} changed, ${firstDifference(text, pinned)}`)
      }
    }))

  it.effect("splice the schema name into the same text", () =>
    Effect.gen(function*() {
      for (const [file, text] of yield* generated("pinned_other")) {
        const pinned = readFixture(file).replaceAll("event_store", "pinned_other")
        assert.strictEqual(text, pinned, `migration ${file} changed, ${firstDifference(text, pinned)}`)
      }
    }))
})

const Database = freshDatabase("migrations_pin")

/** Records the `db.query.text` of every `sql.execute` span of the effect it wraps. */
const recordingQueries = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.tracer, (tracer) => {
    const texts: Array<string> = []
    const recording = Tracer.make({
      context: tracer.context,
      span: (name, parent, context, links, startTime, kind, options) => {
        const span = tracer.span(name, parent, context, links, startTime, kind, options)
        if (name !== "sql.execute") return span
        const attribute = span.attribute.bind(span)
        return Object.assign(span, {
          attribute: (key: string, value: unknown) => {
            if (key === "db.query.text" && typeof value === "string") texts.push(value)
            attribute(key, value)
          }
        })
      }
    })
    return Effect.map(Effect.withTracer(effect, recording), (a) => [a, texts] as const)
  })

layer(Database.layer, { excludeTestServices: true })("frozen migrations on a real server", (it) => {
  it.effect("migrate sends each pinned text verbatim, in order", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const [applied, texts] = yield* recordingQueries(migrate(sql, "event_store"))
      const files = Fs.readdirSync(fixtures).filter((file) => file.endsWith(".sql")).sort()
      assert.deepStrictEqual(applied.map(([id, name]) => fixtureName(id, name)), files)
      let from = 0
      for (const file of files) {
        const at = texts.indexOf(readFixture(file), from)
        assert.isAtLeast(at, from, `${file} was not sent verbatim`)
        from = at + 1
      }
      // and the migrations ran: the store's tables and functions exist
      const rows = yield* sql<{ name: string }>`select p.proname as name from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'event_store' order by 1`
      assert.deepStrictEqual(rows.map((row) => row.name), [
        "append",
        "append_batch",
        "append_many",
        "append_one",
        "delete_stream"
      ])
    }))
})
