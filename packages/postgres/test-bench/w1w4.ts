/**
 * Quick W1 / W4 measurement (see BENCHMARKS.md) of PostgresEventStore against a raw `pg` floor.
 * Run: DATABASE_URL=postgres://postgres@localhost:5432/postgres npx tsx packages/postgres/test-bench/w1w4.ts
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Chunk, Effect, Layer, Redacted, Stream } from "effect"
import pg from "pg"

const base = process.env.DATABASE_URL ?? "postgres://postgres@localhost:5432/postgres"
const W1_STREAMS = 20_000
const note = "n".repeat(64)

const withDb = (name: string) => {
  const u = new URL(base)
  u.pathname = `/${name}`
  return u.toString()
}

const freshDb = async (name: string) => {
  const admin = new pg.Client({ connectionString: base })
  await admin.connect()
  await admin.query(`drop database if exists ${name}`)
  await admin.query(`create database ${name}`)
  await admin.end()
  return withDb(name)
}

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const rawW1 = async (url: string) => {
  const pool = new pg.Pool({ connectionString: url, max: 16 })
  await pool.query(`create table ev (position bigint generated always as identity primary key, stream_id text not null,
    version bigint not null, type text not null, data jsonb not null, unique (stream_id, version))`)
  let next = 0
  const t0 = performance.now()
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < W1_STREAMS) {
      const i = next++
      await pool.query(
        "insert into ev (stream_id, version, type, data) select * from unnest($1::text[], $2::bigint[], $3::text[], $4::jsonb[])",
        [[`acc-${i}`], [1], ["Deposited"], [JSON.stringify({ amount: i, note })]]
      )
    }
  }))
  const rate = W1_STREAMS / (performance.now() - t0) * 1000
  await pool.end()
  return rate
}

const rawW4 = async (url: string) => {
  const pool = new pg.Pool({ connectionString: url, max: 2 })
  await pool.query(
    "insert into ev (stream_id, version, type, data) select 'big-1', g, 'Deposited', jsonb_build_object('amount', g, 'note', $1::text) from generate_series(1, 1000) g",
    [note]
  )
  const times: Array<number> = []
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now()
    const { rows } = await pool.query("select version, type, data from ev where stream_id = $1 order by version", [
      "big-1"
    ])
    let sum = 0
    for (const row of rows) sum += row.data.amount
    if (sum !== 500500) throw new Error("bad sum")
    times.push(performance.now() - t0)
  }
  await pool.end()
  return median(times)
}

const storeRun = (url: string) =>
  Effect.gen(function*() {
    const store = yield* EventStore.EventStore
    let next = 0
    const t0 = performance.now()
    yield* Effect.all(
      Array.from({ length: 16 }, () =>
        Effect.gen(function*() {
          while (next < W1_STREAMS) {
            const i = next++
            yield* store.append(StreamId.unsafeMake("acc", String(i)), [{
              type: "Deposited",
              data: { amount: i, note }
            }], ExpectedVersion.NoStream)
          }
        })),
      { concurrency: "unbounded", discard: true }
    )
    const w1 = W1_STREAMS / (performance.now() - t0) * 1000
    const big = StreamId.unsafeMake("big", "1")
    for (let k = 0; k < 10; k++) {
      yield* store.append(
        big,
        Array.from({ length: 100 }, (_, j) => ({ type: "Deposited", data: { amount: k * 100 + j + 1, note } })),
        ExpectedVersion.Any
      )
    }
    const times: Array<number> = []
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now()
      const sum = yield* Stream.runFold(
        store.read(big),
        0,
        (acc, e) => acc + (e.data as { amount: number }).amount
      )
      if (sum !== 500500) throw new Error("bad sum")
      times.push(performance.now() - t0)
    }
    return { w1, w4: median(times) }
  }).pipe(
    Effect.provide(
      PostgresEventStore.layer({ pageSize: 1000 }).pipe(
        Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: 16 }))
      )
    )
  )

const main = async () => {
  const results: Array<Record<string, number>> = []
  for (let run = 0; run < 3; run++) {
    const rawUrl = await freshDb(`bench_raw_${run}`)
    const rw1 = await rawW1(rawUrl)
    const rw4 = await rawW4(rawUrl)
    const storeUrl = await freshDb(`bench_store_${run}`)
    const { w1, w4 } = await Effect.runPromise(storeRun(storeUrl))
    const row = {
      rawW1: Math.round(rw1),
      storeW1: Math.round(w1),
      w1Ratio: w1 / rw1,
      rawW4: rw4,
      storeW4: w4,
      w4Ratio: w4 / rw4
    }
    console.log(JSON.stringify(row))
    results.push(row)
  }
  const m = (k: string) => median(results.map((r) => r[k]!))
  console.log(
    "median",
    JSON.stringify({
      rawW1: m("rawW1"),
      storeW1: m("storeW1"),
      w1Ratio: m("w1Ratio"),
      rawW4: m("rawW4"),
      storeW4: m("storeW4"),
      w4Ratio: m("w4Ratio")
    })
  )
}

void SqlClient
void Chunk
main()
