/**
 * W1 split (W1 of bench/README.md: single-event NoStream appends to 20,000 new streams, 16 in flight): where the
 * time goes between the raw-pg floor and `store.append`. Each variant runs on a fresh database; per variant:
 * appends/s, the client's CPU per append (process.cpuUsage) and the machine's busy CPU per append (/proc/stat, both
 * cores).
 *
 *   raw-insert      the bench's raw-pg floor: plain pg, `insert … select from unnest(…)` into a 3-index table
 *   pg-one          plain pg calling the store's `append_one` function with the parameters the store sends
 *   sql-one         the same call through @effect/sql (`sql.unsafe(text, params)`), one runPromise per append
 *   sql-one-fiber   the same, in one Effect program for all appends (as the store variant runs)
 *   store           `store.append` (port span, prepare, the call, results)
 *
 * Environment: DATABASE_URL (else the embedded PostgreSQL of the bench), W1_STREAMS, IN_FLIGHT, EVENTS (events per
 * append), NOTIFY=off. Run (under the shared bench lock when the server is shared):
 *   flock /tmp/bench.lock npx tsx bench/src/w1split.ts [variants…]
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { NOTE as note } from "./target.js"

const N = Number(process.env.W1_STREAMS ?? 20_000)
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 16)
const EVENTS = Number(process.env.EVENTS ?? 1)
const range = Array.from({ length: EVENTS }, (_, j) => j)

const busy = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return { busy: total - f[3]! - f[4]!, total }
}

/** Warms up, then times `timed` and prints rate, client CPU and whole-machine CPU per append. */
const timeAndReport = async (label: string, warmUp: () => Promise<void>, timed: () => Promise<void>) => {
  await warmUp()
  const cpu0 = process.cpuUsage()
  const b0 = busy()
  const t0 = performance.now()
  await timed()
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const b1 = busy()
  const machine = (b1.busy - b0.busy) / (b1.total - b0.total)
  console.log(JSON.stringify({
    variant: label,
    appendsPerSecond: Math.round(N / seconds),
    eventsPerSecond: Math.round(N * EVENTS / seconds),
    clientUs: Math.round((cpu.user + cpu.system) / N),
    clientUserUs: Math.round(cpu.user / N),
    machineUs: Math.round(machine * 2 * seconds * 1e6 / N),
    machineBusy: Math.round(machine * 100) / 100
  }))
}

const measure = async (label: string, run: (i: number) => Promise<unknown>) => {
  // warm-up
  let next = 0
  const loop = async (count: number, offset: number) => {
    next = 0
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < count) await run(offset + next++)
    }))
  }
  await timeAndReport(label, () => loop(Math.min(500, N), N), () => loop(N, 0))
}

const streamId = (i: number) => `account-w1_${i}`

const oneSql = `select version, positions from event_store.append_one($1::text, $2::text, $3::bigint, $4::jsonb, ` +
  `$5::timestamptz, $6::text)`

const oneParams = (i: number) => [
  streamId(i),
  "account",
  0,
  `[${
    range.map((j) =>
      `{"id":"${randomUUID()}","type":"Deposited","data":${
        JSON.stringify({ amount: ((i + j) % 100) + 1, note })
      },"metadata":{}}`
    ).join(",")
  }]`,
  new Date().toISOString(),
  null
]

const withStore = async <A>(
  url: string,
  f: (rt: ManagedRuntime.ManagedRuntime<EventStore.EventStore | SqlClient.SqlClient, unknown>) => Promise<A>
) => {
  const rt = ManagedRuntime.make(
    PostgresEventStore.layer(process.env.NOTIFY === "off" ? { notify: "off" } : {}).pipe(
      Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: IN_FLIGHT }))
    )
  )
  try {
    return await f(rt)
  } finally {
    await rt.dispose()
  }
}

const variants: Record<string, (db: string) => Promise<void>> = {
  "raw-insert": async (db) => {
    const pool = new pg.Pool({ connectionString: db, max: IN_FLIGHT })
    await pool.query(`create table events (position bigserial primary key, stream_id text not null,
      version integer not null, id uuid not null unique, type text not null, data jsonb not null,
      metadata jsonb not null default '{}', recorded_at timestamptz not null default now(), unique (stream_id, version))`)
    const text = `insert into events (stream_id, version, id, type, data)
      select $1, $2::int + t.ord, t.id, t.type, t.data
      from unnest($3::uuid[], $4::text[], $5::jsonb[]) with ordinality as t(id, type, data, ord)`
    await measure("raw-insert", (i) =>
      pool.query(text, [
        streamId(i),
        0,
        range.map(() => randomUUID()),
        range.map(() => "Deposited"),
        range.map((j) => JSON.stringify({ amount: ((i + j) % 100) + 1, note }))
      ]))
    await pool.end()
  },
  "pg-one": async (db) => {
    await withStore(db, (rt) => rt.runPromise(Effect.void))
    const pool = new pg.Pool({ connectionString: db, max: IN_FLIGHT })
    await measure("pg-one", (i) => pool.query(oneSql, oneParams(i)))
    await pool.end()
  },
  // one Effect program for all appends, as the bench's effectSession does (no runPromise per append)
  "sql-one-fiber": (db) =>
    withStore(db, async (rt) => {
      const sql = (await rt.runPromise(SqlClient.SqlClient)).withoutTransforms()
      await measureEffect(rt, "sql-one-fiber", (i) => sql.unsafe(oneSql, oneParams(i)))
    }),
  "sql-one": (db) =>
    withStore(db, async (rt) => {
      const sql = (await rt.runPromise(SqlClient.SqlClient)).withoutTransforms()
      await measure("sql-one", (i) => rt.runPromise(sql.unsafe(oneSql, oneParams(i))))
    }),
  store: (db) =>
    withStore(db, async (rt) => {
      const store = await rt.runPromise(EventStore.EventStore)
      await measureEffect(rt, "store", (i) =>
        store.append(
          streamId(i) as StreamId.StreamId,
          range.map((j) => ({ type: "Deposited", data: { amount: ((i + j) % 100) + 1, note } })),
          ExpectedVersion.NoStream
        ))
    })
}

const measureEffect = async <E>(
  rt: ManagedRuntime.ManagedRuntime<EventStore.EventStore | SqlClient.SqlClient, unknown>,
  label: string,
  run: (i: number) => Effect.Effect<unknown, E>
) => {
  const loop = (count: number, offset: number) =>
    Effect.suspend(() => {
      let next = 0
      const worker = Effect.whileLoop({
        while: () => next < count,
        body: () => run(offset + next++),
        step: () => undefined
      })
      return Effect.all(Array.from({ length: IN_FLIGHT }, () => worker), { concurrency: "unbounded", discard: true })
    })
  await timeAndReport(label, () => rt.runPromise(loop(Math.min(500, N), N)), () => rt.runPromise(loop(N, 0)))
}

const main = async () => {
  const chosen = process.argv.slice(2)
  const names = chosen.length > 0 ? chosen : ["raw-insert", "pg-one", "sql-one-fiber", "store"]
  for (const name of names) {
    if (variants[name] === undefined) throw new Error(`unknown variant ${name}`)
  }
  const server = await startServer()
  try {
    for (const name of names) {
      const db = await freshDatabase(server, `w1split_${name}`)
      try {
        await variants[name]!(db.url)
      } finally {
        await db.drop()
      }
    }
  } finally {
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
