/**
 * The floor: the same rows written and read with the plain `pg` driver and no library. One
 * `insert ... select from unnest(...)` per append into a table with UNIQUE(stream_id, version), one ordered
 * `select` per read.
 */
import { randomUUID } from "node:crypto"
import pg from "pg"
import type { ContendedResult, SeenEvent, Session, Target } from "../target.js"
import { deposit, forEachConcurrent, writersLoop } from "../target.js"

const schema = `
create table if not exists events (
  position    bigserial primary key,
  stream_id   text not null,
  version     integer not null,
  id          uuid not null unique,
  type        text not null,
  data        jsonb not null,
  metadata    jsonb not null default '{}',
  recorded_at timestamptz not null default now(),
  unique (stream_id, version)
)`

const insert = `
insert into events (stream_id, version, id, type, data)
select $1, $2::int + t.ord, t.id, t.type, t.data
from unnest($3::uuid[], $4::text[], $5::jsonb[]) with ordinality as t(id, type, data, ord)`

const isUniqueViolation = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "code" in error && error.code === "23505"

/** W5 reads everything in one ordered select; M1 pages through it by position so that memory stays flat. */
const PAGE = 1000

export const rawPg: Target = {
  name: "raw-pg",
  database: true,
  open: async (url, poolSize) => {
    const pool = new pg.Pool({ connectionString: url, max: poolSize })
    // idle clients are killed when the database is dropped
    pool.on("error", () => undefined)
    await pool.query(schema)

    const append = (streamId: string, from: number, events: ReadonlyArray<{ type: string; data: unknown }>) =>
      pool.query(insert, [
        streamId,
        from,
        events.map(() => randomUUID()),
        events.map((e) => e.type),
        events.map((e) => JSON.stringify(e.data))
      ])

    const load = async (streamId: string) => {
      const { rows } = await pool.query<{ version: number; data: { amount: number } }>(
        "select version, data from events where stream_id = $1 order by version",
        [streamId]
      )
      let sum = 0
      let version = 0
      for (const row of rows) {
        sum += row.data.amount
        version = row.version
      }
      return { sum, version }
    }

    const session: Session = {
      appendNew: (batches, concurrency) =>
        forEachConcurrent(batches, concurrency, async (batch) => {
          await append(batch.streamId, 0, batch.events)
        }),
      contended: async (streamId, writers, perWriter) => {
        let succeeded = 0
        let conflicts = 0
        const failed = 0
        await writersLoop(writers, perWriter, async (writer, i) => {
          // reload + retry on conflict, until the append goes through
          while (true) {
            const { version } = await load(streamId)
            try {
              await append(streamId, version, [deposit(writer * perWriter + i)])
              succeeded++
              return
            } catch (error) {
              if (!isUniqueViolation(error)) throw error
              conflicts++
            }
          }
        })
        return { succeeded, failed, conflicts } satisfies ContendedResult
      },
      rehydrate: async (streamId, times) => {
        const durations: Array<number> = []
        let sum = 0
        for (let i = 0; i < times; i++) {
          const start = performance.now()
          sum = (await load(streamId)).sum
          durations.push(performance.now() - start)
        }
        return { durations, sum }
      },
      readAll: async (onChunk, bounded) => {
        if (!bounded) {
          const { rows } = await pool.query<{ stream_id: string; version: number; data: { amount: number } }>(
            "select stream_id, version, data from events order by position"
          )
          onChunk(rows.map((row): SeenEvent => ({
            streamId: row.stream_id,
            version: row.version,
            amount: row.data.amount
          })))
          return
        }
        let after = 0
        while (true) {
          const { rows } = await pool.query<
            { position: string; stream_id: string; version: number; data: { amount: number } }
          >(
            "select position, stream_id, version, data from events where position > $1 order by position limit $2",
            [after, PAGE]
          )
          if (rows.length === 0) return
          onChunk(rows.map((row): SeenEvent => ({
            streamId: row.stream_id,
            version: row.version,
            amount: row.data.amount
          })))
          after = Number(rows[rows.length - 1]!.position)
        }
      },
      close: () => pool.end()
    }
    return session
  }
}
