/**
 * The client-side CPU of one append, without a database: the store runs over an @effect/sql client whose connection
 * answers every statement at once (on the next macrotask, as a socket would), so what is measured is the Effect
 * runtime, the spans, the store's encoding and pg-independent @effect/sql work. Variants:
 *
 *   sql     `sql.unsafe(text, params)` alone: the store's `append_one` call with a fixed payload (the @effect/sql
 *           floor)
 *   store   `store.append` of one event (as in W1 of bench/README.md) or 100 events (as in W2: `--events 100`)
 *
 * Prints the median over 5 rounds of the client's CPU time per append, in microseconds.
 *
 *   npx tsx bench/src/clientcost.ts [--events 1] [--n 40000]
 */
import { EventStore, ExpectedVersion } from "@effect-eventsourcing/core"
import type { StreamId } from "@effect-eventsourcing/core/StreamId"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { Reactivity } from "@effect/experimental"
import { SqlClient, Statement } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import type { Connection } from "@effect/sql/SqlConnection"
import { Effect, Layer, ManagedRuntime, Stream } from "effect"
import { NOTE as note } from "./target.js"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const EVENTS = arg("--events", 1)
const N = arg("--n", 40_000)
const IN_FLIGHT = 16

let position = 0
let executed = 0
const answer = (text: string, params: ReadonlyArray<unknown>): ReadonlyArray<object> => {
  executed++
  if (text.startsWith("select") && text.includes(".append_batch(")) {
    // group commit: one row per request (migration 6), each request's events one array of the JSON document
    const requests = JSON.parse(params[3] as string) as Array<Array<unknown>>
    return requests.map((events) => ({
      status: "ok",
      version: String(events.length),
      positions: events.map(() => String(++position))
    }))
  }
  if (text.includes(".append")) {
    const ids = typeof params[3] === "string"
      ? (JSON.parse(params[3]) as Array<unknown>)
      : ((params[4] as ReadonlyArray<string> | undefined) ?? [])
    const positions = ids.map(() => String(++position))
    return [{ version: String(ids.length), positions }]
  }
  return []
}

const connection: Connection = {
  execute: (text, params) =>
    Effect.async((resume) => {
      setImmediate(() => resume(Effect.succeed(answer(text, params))))
    }),
  executeRaw: (text, params) => Effect.sync(() => answer(text, params)),
  executeStream: () => Stream.empty,
  executeValues: () => Effect.succeed([]),
  executeUnprepared: (text, params) => Effect.sync(() => answer(text, params))
}

const fakeSql = Layer.effect(
  SqlClient.SqlClient,
  SqlClient.make({
    acquirer: Effect.succeed(connection),
    compiler: Statement.makeCompilerSqlite(),
    spanAttributes: []
  })
).pipe(Layer.provide(Reactivity.layer))

const fakePg = Layer.effect(
  PgClient.PgClient,
  Effect.map(
    SqlClient.SqlClient,
    (sql) => Object.assign(Object.create(sql) as PgClient.PgClient, { listen: () => Stream.never })
  )
)

const runtime = ManagedRuntime.make(
  PostgresEventStore.layer({ notify: "off" }).pipe(Layer.provideMerge(fakePg), Layer.provideMerge(fakeSql))
)

const loop = <E>(count: number, run: (i: number) => Effect.Effect<unknown, E>) =>
  Effect.suspend(() => {
    let next = 0
    const worker = Effect.whileLoop({ while: () => next < count, body: () => run(next++), step: () => undefined })
    return Effect.all(Array.from({ length: IN_FLIGHT }, () => worker), { concurrency: "unbounded", discard: true })
  })

const time = async <E>(label: string, run: (i: number) => Effect.Effect<unknown, E>) => {
  await runtime.runPromise(loop(2_000, run))
  const results: Array<number> = []
  for (let round = 0; round < 5; round++) {
    const cpu0 = process.cpuUsage()
    await runtime.runPromise(loop(N, run))
    const cpu = process.cpuUsage(cpu0)
    results.push((cpu.user + cpu.system) / N)
  }
  results.sort((a, b) => a - b)
  console.log(JSON.stringify({ variant: label, events: EVENTS, cpuUsPerAppend: Math.round(results[2]! * 10) / 10 }))
}

const main = async () => {
  const store = await runtime.runPromise(EventStore.EventStore)
  const sql = (await runtime.runPromise(SqlClient.SqlClient)).withoutTransforms()
  const events = (i: number) =>
    Array.from({ length: EVENTS }, (_, j) => ({ type: "Deposited", data: { amount: ((i + j) % 100) + 1, note } }))
  const text = `select version, positions from "event_store".append_one($1::text, $2::text, $3::bigint, $4::jsonb, ` +
    `$5::timestamptz, $6::text)`
  const payload = JSON.stringify(
    Array.from({ length: EVENTS }, (_, j) => ({
      id: globalThis.crypto.randomUUID(),
      type: "Deposited",
      data: { amount: j + 1, note },
      metadata: {}
    }))
  )
  let stream = 0
  for (let k = 0; k < 2; k++) {
    await time("sql", (i) => sql.unsafe(text, [`account-${i}`, "account", 0, payload, "", null]))
    await time(
      "store",
      (i) => store.append(`account-c_${stream++}_${i}` as StreamId, events(i), ExpectedVersion.NoStream)
    )
  }
  console.log(JSON.stringify({ executed }))
  await runtime.dispose()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
