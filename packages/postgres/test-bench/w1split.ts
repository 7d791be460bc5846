/**
 * W1 split (single-event NoStream appends to 20,000 new streams, 16 in flight): where the time goes between the
 * raw-pg floor and `store.append`. Each variant runs on a fresh database; per variant: appends/s, the client's CPU
 * per append (process.cpuUsage) and the machine's busy CPU per append (/proc/stat, both cores).
 *
 *   raw-insert   the bench's raw-pg floor: plain pg, `insert … select from unnest(…)` into a 3-index table
 *   pg-fn        plain pg calling the store's append function with the parameters the store sends
 *   sql-fn       the same call through @effect/sql (`sql.unsafe(text, params)`), no store
 *   store        `store.append` (port span, prepare, the call, results)
 *
 * Run (under the shared bench lock):
 *   DATABASE_URL=postgres://postgres@localhost:5432/postgres flock /tmp/bench.lock npx tsx packages/postgres/test-bench/w1split.ts [variants…]
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { randomUUID } from "node:crypto"
import { readFileSync } from "node:fs"
import pg from "pg"

const base = process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres"
const N = Number(process.env.W1_STREAMS ?? 20_000)
const IN_FLIGHT = Number(process.env.IN_FLIGHT ?? 16)
const EVENTS = Number(process.env.EVENTS ?? 1)
const range = Array.from({ length: EVENTS }, (_, j) => j)
const note = "Deposited through the effect-eventsourcing benchmark harness: ".padEnd(64, "#")

const busy = () => {
  const f = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  const total = f.reduce((a, b) => a + b, 0)
  return { busy: total - f[3]! - f[4]!, total }
}

const freshDb = async (name: string) => {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`drop database if exists ${name} with (force)`)
  await admin.query(`create database ${name}`)
  await admin.end()
  const u = new URL(base)
  u.pathname = `/${name}`
  return u.toString()
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

const storeParams = (i: number) => [
  [streamId(i)],
  ["account"],
  [0],
  [1],
  [randomUUID()],
  ["Deposited"],
  [JSON.stringify({ amount: (i % 100) + 1, note })],
  ["{}"],
  new Date().toISOString(),
  null
]

const appendSql = (s: string) =>
  `select version, positions from ${s}.append($1::text[], $2::text[], $3::bigint[], $4::int[], ` +
  `$5::uuid[], $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz, $10::text)`

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
  "pg-fn": async (db) => {
    // the store creates the schema
    await withStore(db, (rt) => rt.runPromise(Effect.void))
    const pool = new pg.Pool({ connectionString: db, max: IN_FLIGHT })
    const text = appendSql("event_store")
    await measure("pg-fn", (i) => pool.query(text, storeParams(i)))
    await pool.end()
  },
  "pg-one": async (db) => {
    await withStore(db, (rt) => rt.runPromise(Effect.void))
    const pool = new pg.Pool({ connectionString: db, max: IN_FLIGHT })
    await measure("pg-one", (i) => pool.query(oneSql, oneParams(i)))
    await pool.end()
  },
  "sql-one-fiber": (db) =>
    withStore(db, async (rt) => {
      const sql = (await rt.runPromise(SqlClient.SqlClient)).withoutTransforms()
      await measureEffect(rt, "sql-one-fiber", (i) => sql.unsafe(oneSql, oneParams(i)))
    }),
  "sql-fn": (db) =>
    withStore(db, async (rt) => {
      const sql = (await rt.runPromise(SqlClient.SqlClient)).withoutTransforms()
      const text = appendSql("event_store")
      await measure("sql-fn", (i) => rt.runPromise(sql.unsafe(text, storeParams(i))))
    }),
  // one Effect program for all appends, as the bench's effectSession does (no runPromise per append)
  "sql-fn-fiber": (db) =>
    withStore(db, async (rt) => {
      const sql = (await rt.runPromise(SqlClient.SqlClient)).withoutTransforms()
      const text = appendSql("event_store")
      await measureEffect(rt, "sql-fn-fiber", (i) => sql.unsafe(text, storeParams(i)))
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
  const names = chosen.length > 0 ? chosen : ["raw-insert", "pg-fn", "sql-fn-fiber", "store"]
  for (const name of names) {
    const variant = variants[name]
    if (variant === undefined) throw new Error(`unknown variant ${name}`)
    const db = await freshDb(`w1split_${name.replace(/-/g, "_")}`)
    await variant(db)
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
