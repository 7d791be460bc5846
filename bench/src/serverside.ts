/**
 * The server's side of an append (issue 14: where group commit would save): on a fresh database with the store's
 * schema, in an embedded PostgreSQL of its own with `pg_stat_statements` preloaded,
 *
 * 1. `EXPLAIN ANALYZE` of one `append_one` call (after a warm-up), and the same call under `auto_explain` with
 *    nested statements: the time of each statement inside the function;
 * 2. `pgbench` (1 and 16 clients, `-M extended`) of one-event appends to new streams:
 *    - `one`        `append_one`, one call per transaction (what the store sends for W1)
 *    - `nolock`     a copy of `append_one` without `pg_advisory_lock`/`unlock` (NOT gap-safe: measuring only)
 *    - `noblock`    a copy without the `begin … exception … end` block around the critical section (a
 *                   subtransaction per call; NOT safe on errors: measuring only)
 *    - `bare`       neither lock nor block
 *    - `one-async`  `append_one` with `synchronous_commit = off` (what the WAL flush at commit costs)
 *    - `tx16`       16 `append_one` calls in ONE transaction (one commit; calls 2…16 find an xid assigned)
 *    - `many16`     ONE `append_many` call carrying 16 requests (one statement, one lock, one commit)
 *    - `raw1`       raw-pg's single-row insert, `raw16` its 16-row insert (the floor and the limit)
 *    appends/s = transactions/s × appends per transaction;
 * 3. `pg_stat_statements` (track = all) of the first variant's run with the most clients (`one` by default): mean
 *    time of each statement inside the function, the advisory lock's wait included.
 *
 *   npx tsx bench/src/serverside.ts [--seconds 10] [--variants one,nolock,…] [--clients 1,16]
 *
 * Needs `pgbench` on the PATH (or PGBENCH=/path/to/pgbench).
 */
import { EventStore } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import { execFile } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { freshDatabase, startServer } from "./db.js"
import { NOTE } from "./target.js"

const argValue = (flag: string) => {
  const i = process.argv.indexOf(flag)
  return i < 0 ? undefined : process.argv[i + 1]
}
const SECONDS = Number(argValue("--seconds") ?? 10)
const CLIENTS = (argValue("--clients") ?? "1,16").split(",").map(Number)

const data = JSON.stringify({ amount: 42, note: NOTE })
const newStream = `'account-' || gen_random_uuid()::text`
const events = `jsonb_build_array(jsonb_build_object('id', gen_random_uuid(), 'type', 'Deposited', 'data', ` +
  `'${data}'::jsonb, 'metadata', '{}'::jsonb))`
const call = (fn: string) =>
  `select version, positions from event_store.${fn}(${newStream}, 'account', 0, ${events}, now(), null);`

const many16 = `select version, positions from event_store.append_many(
  array(select ${newStream} from generate_series(1, 16)), array_fill('account'::text, array[16]),
  array_fill(0::bigint, array[16]), array(select g from generate_series(1, 16) g),
  array(select gen_random_uuid() from generate_series(1, 16)), array_fill('Deposited'::text, array[16]),
  array_fill('${data}'::jsonb, array[16]), array_fill('{}'::jsonb, array[16]), now(), null);`

const rawInsert = (rows: number) =>
  `insert into raw_events (stream_id, version, id, type, data) select ${newStream}, 1, gen_random_uuid(), ` +
  `'Deposited', '${data}'::jsonb from generate_series(1, ${rows});`

/** name → (script, appends per transaction) */
const scripts: Record<string, readonly [string, number]> = {
  one: [call("append_one"), 1],
  nolock: [call("append_one_nolock"), 1],
  noblock: [call("append_one_noblock"), 1],
  bare: [call("append_one_bare"), 1],
  "one-async": [`begin;\nset local synchronous_commit = off;\n${call("append_one")}\ncommit;`, 1],
  tx16: [`begin;\n${Array.from({ length: 16 }, () => call("append_one")).join("\n")}\ncommit;`, 16],
  many16: [many16, 16],
  raw1: [rawInsert(1), 1],
  raw16: [rawInsert(16), 16]
}
const VARIANTS = (argValue("--variants") ?? Object.keys(scripts).join(",")).split(",")

const rawSchema = `create table raw_events (
  position bigserial primary key, stream_id text not null, version integer not null, id uuid not null unique,
  type text not null, data jsonb not null, metadata jsonb not null default '{}',
  recorded_at timestamptz not null default now(), unique (stream_id, version))`

/** Copies of `append_one` without the lock, without the exception block, or without both (measuring only). */
const variantsOf = (definition: string) => {
  const lockless = definition.replace(/\n\s*perform pg_advisory_(un)?lock\([^;]*\);/g, "")
  const blockless = (text: string) =>
    text.replace(
      // the inner block: its first statement is the lock, or (without it) `if own is null`
      /\n\s*begin\n(\s*(?:perform pg_advisory_lock[^;]*;\n\s*)?if own is null then[\s\S]*?)\n\s*exception when others or query_canceled then[\s\S]*?raise;\n\s*end;/,
      "\n$1"
    )
  const renamed = (text: string, name: string) => {
    const out = text.replace("FUNCTION event_store.append_one(", `FUNCTION event_store.${name}(`)
    if (out === text) throw new Error("could not rename append_one")
    return out
  }
  const noblock = blockless(definition)
  if (noblock === definition || lockless === definition) throw new Error("append_one's text changed: update the probe")
  return [
    renamed(lockless, "append_one_nolock"),
    renamed(noblock, "append_one_noblock"),
    renamed(blockless(lockless), "append_one_bare")
  ]
}

const pgbench = (url: string, file: string, clients: number) =>
  new Promise<{ tps: number; latencyMs: number; failed: number }>((resolve, reject) => {
    const u = new URL(url)
    execFile(
      process.env.PGBENCH ?? "pgbench",
      [
        "-n",
        "-M",
        "extended",
        "-c",
        String(clients),
        "-j",
        String(Math.min(clients, 2)),
        "-T",
        String(SECONDS),
        "-f",
        file,
        "-h",
        u.hostname,
        "-p",
        u.port,
        "-U",
        decodeURIComponent(u.username),
        u.pathname.slice(1)
      ],
      { env: { ...process.env, PGPASSWORD: decodeURIComponent(u.password) } },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`pgbench failed: ${stderr || error.message}`))
        const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)
        const latency = /latency average = ([\d.]+) ms/.exec(stdout)
        const failed = /number of failed transactions: (\d+)/.exec(stdout)
        if (tps === null || latency === null) return reject(new Error(`unexpected pgbench output:\n${stdout}`))
        resolve({ tps: Number(tps[1]), latencyMs: Number(latency[1]), failed: Number(failed?.[1] ?? 0) })
      }
    )
  })

const main = async () => {
  const server = await startServer({
    embedded: true,
    flags: ["-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all"]
  })
  const dir = mkdtempSync(join(tmpdir(), "effect-es-serverside-"))
  try {
    const db = await freshDatabase(server, "serverside")
    // the store's schema and functions, as the store creates them
    const runtime = ManagedRuntime.make(
      PostgresEventStore.layer().pipe(Layer.provide(PgClient.layer({ url: Redacted.make(db.url) })))
    )
    await runtime.runPromise(EventStore.EventStore)
    await runtime.dispose()

    const client = new pg.Client({ connectionString: db.url })
    // the server stops at the end (or on an error) with this client still connected
    client.on("error", () => undefined)
    await client.connect()
    await client.query(rawSchema)
    await client.query("create extension if not exists pg_stat_statements")
    const { rows: [definition] } = await client.query<{ def: string }>(
      "select pg_get_functiondef('event_store.append_one'::regproc) as def"
    )
    for (const text of variantsOf(definition!.def)) await client.query(text)

    // 1. one call: EXPLAIN ANALYZE, then auto_explain of the nested statements
    for (let i = 0; i < 200; i++) await client.query(call("append_one"))
    const explained = await client.query<{ "QUERY PLAN": string }>(`explain (analyze, buffers) ${call("append_one")}`)
    console.log("## EXPLAIN ANALYZE of one append_one call (after 200 warm-up calls)\n")
    console.log(explained.rows.map((r) => r["QUERY PLAN"]).join("\n"))
    const notices: Array<string> = []
    client.on("notice", (notice) => notices.push(notice.message ?? ""))
    await client.query("load 'auto_explain'")
    await client.query(
      "set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on; " +
        "set auto_explain.log_nested_statements = on; set auto_explain.log_timing = on; " +
        "set client_min_messages = log"
    )
    await client.query(call("append_one"))
    await client.query("set client_min_messages = notice; set auto_explain.log_min_duration = -1")
    console.log("\n## auto_explain of one append_one call (nested statements)\n")
    for (const notice of notices) {
      // the statement and its total time, one line each
      const head = notice.split("\n").slice(0, 2).join(" | ").replace(/\s+/g, " ")
      const total = /actual time=[\d.]+\.\.([\d.]+)/.exec(notice)
      console.log(`${total === null ? "?" : total[1]} ms  ${head.slice(0, 200)}`)
    }

    // 2. pgbench
    console.log(`\n## pgbench, ${SECONDS} s per run, -M extended\n`)
    console.log("| variant | clients | transactions/s | appends/s | latency avg (ms) | failed |")
    console.log("|---|---|---|---|---|---|")
    const stats: Array<string> = []
    for (const clients of CLIENTS) {
      for (const name of VARIANTS) {
        const [script, perTx] = scripts[name]!
        const file = join(dir, `${name}.sql`)
        writeFileSync(file, script + "\n")
        const reset = name === VARIANTS[0] && clients === Math.max(...CLIENTS)
        if (reset) await client.query("select pg_stat_statements_reset()")
        const result = await pgbench(db.url, file, clients)
        console.log(
          `| ${name} | ${clients} | ${Math.round(result.tps)} | ${Math.round(result.tps * perTx)} | ${
            result.latencyMs.toFixed(3)
          } | ${result.failed} |`
        )
        if (reset) {
          // 3. the statements inside append_one under this load
          const { rows } = await client.query<{ query: string; calls: string; mean: number; total: number }>(
            `select regexp_replace(query, '\\s+', ' ', 'g') as query, calls, mean_exec_time as mean,
               total_exec_time as total
             from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())
             order by total_exec_time desc limit 12`
          )
          for (const row of rows) {
            stats.push(
              `| ${row.mean.toFixed(4)} | ${row.total.toFixed(0)} | ${row.calls} | \`${row.query.slice(0, 110)}\` |`
            )
          }
        }
      }
    }
    if (stats.length > 0) {
      console.log(
        `\n## pg_stat_statements (track = all) during \`${VARIANTS[0]}\` with ${Math.max(...CLIENTS)} clients\n`
      )
      console.log("| mean ms | total ms | calls | statement |")
      console.log("|---|---|---|---|")
      console.log(stats.join("\n"))
    }
    await client.end()
    await db.drop()
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await server.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
