/**
 * The built `eventsourcing` bin, run with plain `node` as a child process against a fresh database (one schema per
 * test where they must not see each other): its output and exit codes.
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
import { SqlClient } from "@effect/sql"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Deferred, Effect, Fiber, Layer, ManagedRuntime, Stream } from "effect"
import * as Fs from "node:fs/promises"
import { afterAll, beforeAll } from "vitest"
import { bin, run, start } from "./process.js"

const Database = PostgresTesting.freshDatabase("cli")
const shop = ManagedRuntime.make(
  PostgresEventStore.layer({ schema: "shop" }).pipe(Layer.provideMerge(Database.layer), Layer.orDie)
)
let url = ""
const env = () => ({ DATABASE_URL: url })

const s = (category: string, id: string) => StreamId.unsafeMake(category, id)
const append = (streamId: StreamId.StreamId, ...types: ReadonlyArray<string>) =>
  EventStore.append(streamId, types.map((type, i) => ({ type, data: { n: i } })), ExpectedVersion.Any)

const readStream = (streamId: StreamId.StreamId) =>
  shop.runPromise(Stream.runCollect(EventStore.read(streamId)).pipe(Effect.map(Chunk.toReadonlyArray)))

beforeAll(async () => {
  url = await Effect.runPromise(Database.url)
  await shop.runPromise(Effect.gen(function*() {
    yield* append(s("account", "1"), "Opened", "Deposited")
    yield* append(s("account", "2"), "Opened")
    yield* append(s("order", "7"), "Placed")
    yield* append(s("account", "1"), "Withdrawn")
  }))
})

afterAll(() => shop.dispose())

/** One line on stderr, nothing on stdout. */
const assertOneLineError = (result: { stdout: string; stderr: string; code: number }, code: number, text: string) => {
  assert.strictEqual(result.code, code, `exit code; stderr: ${result.stderr}`)
  assert.strictEqual(result.stdout, "")
  assert.strictEqual(result.stderr.trimEnd().split("\n").length, 1, `one line: ${result.stderr}`)
  assert.include(result.stderr, text)
}

describe("the bin", () => {
  it("starts with a node shebang and prints the package's version without a database", async () => {
    assert.isTrue((await Fs.readFile(bin, "utf8")).startsWith("#!/usr/bin/env node\n"))
    const manifest = JSON.parse(await Fs.readFile(new URL("../package.json", import.meta.url), "utf8"))
    assert.strictEqual(manifest.bin.eventsourcing, "./dist/esm/bin.js")
    const result = await run(["--version"])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.strictEqual(result.stdout.trim(), manifest.version)
  })

  it("exits 2 on usage errors, before touching the database", async () => {
    for (
      const args of [
        ["frobnicate"],
        ["streams", "list", "--limit", "0"],
        ["streams", "list", "--limit", "ten"],
        ["stream", "show"],
        ["tail", "--schema", "Bad-Schema"]
      ]
    ) {
      const result = await run(args, { DATABASE_URL: "postgres://nobody:hunter2@127.0.0.1:1/none" })
      assert.strictEqual(result.code, 2, `${args.join(" ")}: ${result.stdout}${result.stderr}`)
      assert.notInclude(result.stderr, "hunter2")
    }
  })
})

describe("failures are one line and exit 1", () => {
  it("without DATABASE_URL", async () => {
    assertOneLineError(await run(["streams", "list"]), 1, "DATABASE_URL is not set")
  })

  it("when the database is unreachable, never printing the connection string or its password", async () => {
    const port = await PostgresTesting.freePort()
    const secretUrl = `postgres://admin:s3cr3t-Pw@127.0.0.1:${port}/events`
    const result = await run(["stream", "show", "account-1"], { DATABASE_URL: secretUrl })
    assertOneLineError(result, 1, "cannot connect to the database")
    assert.notInclude(result.stderr, "s3cr3t-Pw")
    assert.notInclude(result.stderr, secretUrl)
    assert.notInclude(result.stderr, "    at ")
  })

  it("for a schema without a store, and creates nothing", async () => {
    const result = await run(["streams", "list", "--schema", "nothing_here"], env())
    assertOneLineError(result, 1, "schema nothing_here holds no event store (run: eventsourcing migrate")
    const schemas = await shop.runPromise(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql`select 1 from pg_namespace where nspname = 'nothing_here'`)
    )
    assert.strictEqual(schemas.length, 0)
  })

  it("for a stream without events and an invalid stream id", async () => {
    assertOneLineError(await run(["stream", "show", "account-404", "--schema", "shop"], env()), 1, "no events")
    assertOneLineError(await run(["stream", "show", "nodash", "--schema", "shop"], env()), 1, "Invalid stream id")
  })
})

describe("migrate", () => {
  it("creates the schema with every migration, then reports it up to date", async () => {
    const first = await run(["migrate", "--schema", "fresh"], env())
    assert.strictEqual(first.code, 0, first.stderr)
    const lines = first.stdout.trim().split("\n")
    assert.match(lines[0]!, /^Applied \d+ migrations to schema fresh:$/)
    assert.deepStrictEqual(lines.slice(1, 3), ["  1_create_event_store", "  2_create_checkpoints"])
    assert.strictEqual(lines.length - 1, Number(/Applied (\d+)/.exec(lines[0]!)![1]))

    const again = await run(["migrate", "--schema", "fresh"], env())
    assert.strictEqual(again.stdout, "Schema fresh is up to date.\n")
    const json = await run(["migrate", "--schema", "fresh", "--json"], env())
    assert.deepStrictEqual(JSON.parse(json.stdout), { schema: "fresh", applied: [] })
    // the store is usable: an empty listing
    const list = await run(["streams", "list", "--schema", "fresh"], env())
    assert.strictEqual(list.code, 0, list.stderr)
    assert.strictEqual(list.stdout, "STREAM  VERSION  LAST POSITION  LAST WRITE\n")
  })
})

describe("streams list", () => {
  it("lists the streams, the most recently written first, as a table and as JSON lines", async () => {
    const table = await run(["streams", "list", "--schema", "shop"], env())
    assert.strictEqual(table.code, 0, table.stderr)
    const lines = table.stdout.trimEnd().split("\n")
    assert.strictEqual(lines[0], "STREAM     VERSION  LAST POSITION  LAST WRITE")
    assert.match(lines[1]!, /^account-1 {8}3 {14}5 {2}\d{4}-\d\d-\d\dT[\d:.]+Z$/)
    assert.match(lines[2]!, /^order-7 {10}1 {14}4 {2}/)
    assert.match(lines[3]!, /^account-2 {8}1 {14}3 {2}/)
    assert.strictEqual(lines.length, 4)

    const json = await run(["streams", "list", "--schema", "shop", "--json", "--category", "account"], env())
    const rows = json.stdout.trimEnd().split("\n").map((line) => JSON.parse(line))
    const events = await readStream(s("account", "1"))
    assert.deepStrictEqual(rows.map((r) => [r.streamId, r.version, r.position]), [["account-1", 3, 5], [
      "account-2",
      1,
      3
    ]])
    assert.strictEqual(rows[0].recordedAt, events[2]!.recordedAt.toJSON())

    const limited = await run(["streams", "list", "--schema", "shop", "--limit", "1", "--json"], env())
    assert.deepStrictEqual(limited.stdout.trimEnd().split("\n").map((line) => JSON.parse(line).streamId), [
      "account-1"
    ])
  })
})

describe("stream show", () => {
  it("prints the events of a stream as a table, and every field as JSON lines, within --from/--to", async () => {
    const table = await run(["stream", "show", "account-1", "--schema", "shop"], env())
    assert.strictEqual(table.code, 0, table.stderr)
    const lines = table.stdout.trimEnd().split("\n")
    assert.strictEqual(lines[0], "VERSION  POSITION  RECORDED AT               TYPE       DATA")
    assert.match(lines[1]!, /^ {6}1 {9}1 {2}\S+Z {2}Opened {5}\{"n":0\}$/)
    assert.match(lines[2]!, /^ {6}2 {9}2 {2}\S+Z {2}Deposited {2}\{"n":1\}$/)
    assert.match(lines[3]!, /^ {6}3 {9}5 {2}\S+Z {2}Withdrawn {2}\{"n":0\}$/)

    const events = await readStream(s("account", "1"))
    const json = await run(
      ["stream", "show", "account-1", "--schema", "shop", "--json", "--from", "2", "--to", "3"],
      env()
    )
    assert.strictEqual(json.code, 0, json.stderr)
    assert.deepStrictEqual(
      json.stdout.trimEnd().split("\n").map((line) => JSON.parse(line)),
      events.slice(1).map((e) => ({
        position: e.position,
        streamId: e.streamId,
        version: e.version,
        type: e.type,
        id: e.id,
        recordedAt: e.recordedAt.toJSON(),
        data: e.data,
        metadata: e.metadata
      }))
    )
    // an empty range of an existing stream is no error
    const beyond = await run(["stream", "show", "account-1", "--schema", "shop", "--from", "9"], env())
    assert.deepStrictEqual([beyond.code, beyond.stdout, beyond.stderr], [0, "", ""])
  })
})

describe("tail", () => {
  it("prints the events appended after it started, filtered, in position order, gap-safe, until SIGINT", async () => {
    const tail = start(["tail", "--schema", "shop", "--category", "account", "--json"], env())
    await tail.until(() => tail.stderr().includes("Tailing schema shop from position"), "the tail to start")

    // a transaction takes a position and stays open; a later append commits a higher position meanwhile
    const gate = Deferred.unsafeMake<void>(undefined as never)
    const held = shop.runFork(
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql.withTransaction(Effect.zipRight(append(s("account", "held"), "Held"), Deferred.await(gate)))
      )
    )
    await shop.runPromise(Effect.sleep("300 millis"))
    await shop.runPromise(Effect.gen(function*() {
      yield* append(s("order", "8"), "Placed") // filtered out by --category
      yield* append(s("account", "3"), "Opened")
    }))
    // nothing may pass the open transaction's position
    await shop.runPromise(Effect.sleep("2 seconds"))
    assert.deepStrictEqual(tail.stdout(), [])

    await shop.runPromise(Deferred.succeed(gate, undefined))
    await shop.runPromise(Fiber.join(held))
    await tail.until(() => tail.stdout().length >= 2, "two events")
    const printed = tail.stdout().map((line) => JSON.parse(line))
    assert.deepStrictEqual(printed.map((e) => [e.streamId, e.type]), [["account-held", "Held"], [
      "account-3",
      "Opened"
    ]])
    assert.isBelow(printed[0].position, printed[1].position)

    tail.child.kill("SIGINT")
    assert.deepStrictEqual(await tail.exit, { code: 0, signal: null })
    assert.strictEqual(tail.stdout().length, 2)
  })

  it("prints one line per event for people, from --from, and the deletions of streams", async () => {
    const tail = start(["tail", "--schema", "shop", "--category", "order", "--from", "1"], env())
    await tail.until(() => tail.stdout().length >= 1, "the first order event")
    await shop.runPromise(Effect.gen(function*() {
      yield* append(s("order", "9"), "Placed", "Shipped")
      yield* Effect.flatMap(EventStore.EventStore, (store) => store.delete(s("order", "9")))
    }))
    await tail.until(() => tail.stdout().some((line) => line.includes("deleted")), "the deletion")
    const lines = tail.stdout()
    assert.match(lines[0]!, /^ +4 {2}\S+Z {2}order-7 v1 {2}Placed {2}\{"n":0\}$/)
    assert.match(lines.at(-3)!, /^ +\d+ {2}\S+Z {2}order-9 v1 {2}Placed /)
    assert.match(lines.at(-2)!, /^ +\d+ {2}\S+Z {2}order-9 v2 {2}Shipped /)
    assert.match(lines.at(-1)!, /^ +\d+ {2}\S+Z {2}order-9 deleted \(was at v2\)$/)
    tail.child.kill("SIGINT")
    assert.strictEqual((await tail.exit).code, 0)
  })
})
