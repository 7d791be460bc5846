/**
 * The floor and the limit, both with the plain `pg` driver and no library, on the same table (UNIQUE(stream_id,
 * version)) and the same reads (one ordered `select`):
 *
 * - `raw-pg`, the floor: one `insert ... select from unnest(...)` per append.
 * - `raw-pg-batched`, the limit: the same rows, with concurrent appends coalesced by hand into one multi-row
 *   `INSERT` per round trip (see `batcher`): what perfect group commit would achieve.
 */
import { randomUUID } from "node:crypto"
import pg from "pg"
import type { ContendedResult, NewEvent, SeenEvent, Session, Target } from "../target.js"
import { deposit, forEachConcurrent, timeEach, writersLoop } from "../target.js"

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

/**
 * One append: `events` to `streamId` at versions `from + 1 …`; rejects with the driver's error (a unique violation,
 * 23505, when a version is taken).
 */
type Append = (streamId: string, from: number, events: ReadonlyArray<NewEvent>) => Promise<void>

/** The single-append statement of the floor. */
const appendOne = (pool: pg.Pool): Append => async (streamId, from, events) => {
  await pool.query(insert, [
    streamId,
    from,
    events.map(() => randomUUID()),
    events.map((e) => e.type),
    events.map((e) => JSON.stringify(e.data))
  ])
}

// -------------------------------------------------------------------------------------
// raw-pg-batched: hand-made group commit
// -------------------------------------------------------------------------------------

/** every row of a batch, as parallel arrays */
const insertMany = `
insert into events (stream_id, version, id, type, data)
select * from unnest($1::text[], $2::int[], $3::uuid[], $4::text[], $5::jsonb[])`

/**
 * A batch of single-event appends: a row whose `(stream_id, version)` is taken is skipped (and a later row of the
 * same statement with the same key too), so each request learns its own outcome from the returned keys.
 */
const insertManySingles = `${insertMany}
on conflict (stream_id, version) do nothing
returning stream_id, version`

interface Pending {
  readonly streamId: string
  readonly from: number
  readonly events: ReadonlyArray<NewEvent>
  readonly resolve: () => void
  readonly reject: (error: unknown) => void
}

/** a unique violation of the raw table, as the single INSERT of the floor raises it */
const conflictError = (streamId: string, version: number) =>
  Object.assign(new Error(`duplicate key (stream_id, version) = (${streamId}, ${version})`), { code: "23505" })

/** how many round trips the batched target keeps in flight (RAW_PG_BATCHED_CONNECTIONS, default 2) */
export const batchedConnections = Number(process.env.RAW_PG_BATCHED_CONNECTIONS ?? 2)

/** the largest number of appends in one statement */
const MAX_BATCH = 256

/**
 * Group commit by hand: an append that finds a free round trip (fewer than `connections` in flight) goes at once, on
 * its own (no linger, so an idle writer is not slowed down); the appends that arrive while every round trip is busy
 * queue up and go together, up to `MAX_BATCH`, in the next statement: one multi-row INSERT, one transaction, one
 * commit. Each append keeps its own outcome: a batch of single-event appends uses `on conflict do nothing
 * returning`, so a taken version fails only its own append; any other batch that fails on a unique violation is
 * retried one append per statement, so the violation reaches only the append that caused it.
 */
const batcher = (pool: pg.Pool, connections: number): Append => {
  const queue: Array<Pending> = []
  let inFlight = 0

  const rowsOf = (batch: ReadonlyArray<Pending>) => {
    const streamIds: Array<string> = []
    const versions: Array<number> = []
    const ids: Array<string> = []
    const types: Array<string> = []
    const data: Array<string> = []
    for (const p of batch) {
      for (let k = 0; k < p.events.length; k++) {
        const event = p.events[k]!
        streamIds.push(p.streamId)
        versions.push(p.from + k + 1)
        ids.push(randomUUID())
        types.push(event.type)
        data.push(JSON.stringify(event.data))
      }
    }
    return [streamIds, versions, ids, types, data]
  }

  const run = async (batch: ReadonlyArray<Pending>): Promise<void> => {
    if (batch.length === 1) {
      const only = batch[0]!
      return appendOne(pool)(only.streamId, only.from, only.events).then(only.resolve, only.reject)
    }
    if (batch.every((p) => p.events.length === 1)) {
      try {
        const { rows } = await pool.query<{ stream_id: string; version: number }>(insertManySingles, rowsOf(batch))
        const written = new Set(rows.map((row) => `${row.version} ${row.stream_id}`))
        for (const p of batch) {
          const key = `${p.from + 1} ${p.streamId}`
          if (written.delete(key)) p.resolve()
          else p.reject(conflictError(p.streamId, p.from + 1))
        }
      } catch (error) {
        for (const p of batch) p.reject(error)
      }
      return
    }
    try {
      await pool.query(insertMany, rowsOf(batch))
      for (const p of batch) p.resolve()
    } catch (error) {
      if (!isUniqueViolation(error)) {
        for (const p of batch) p.reject(error)
        return
      }
      // nothing of the batch was written: each append on its own, so that only the conflicting one fails
      await Promise.all(batch.map((p) => appendOne(pool)(p.streamId, p.from, p.events).then(p.resolve, p.reject)))
    }
  }

  const pump = () => {
    while (inFlight < connections && queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH)
      inFlight++
      void run(batch).finally(() => {
        inFlight--
        pump()
      })
    }
  }

  return (streamId, from, events) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ streamId, from, events, resolve, reject })
      pump()
    })
}

// -------------------------------------------------------------------------------------
// the session, shared by both targets
// -------------------------------------------------------------------------------------

const open = async (url: string, poolSize: number, batched: boolean): Promise<Session> => {
  const connections = batched ? Math.min(poolSize, batchedConnections) : poolSize
  const pool = new pg.Pool({ connectionString: url, max: connections })
  // idle clients are killed when the database is dropped
  pool.on("error", () => undefined)
  await pool.query(schema)

  const append = batched ? batcher(pool, connections) : appendOne(pool)

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
      forEachConcurrent(batches, concurrency, (batch) => append(batch.streamId, 0, batch.events)),
    appendSequential: (batches) => timeEach(batches, (batch) => append(batch.streamId, 0, batch.events)),
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
    warmRehydrate: async (streamId, times, first) => {
      const durations: Array<number> = []
      let loaded = await load(streamId)
      for (let i = 0; i < times; i++) {
        await append(streamId, loaded.version, [deposit(first + i)])
        const start = performance.now()
        loaded = await load(streamId)
        durations.push(performance.now() - start)
      }
      return { durations, sum: loaded.sum, cache: "off" }
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

export const rawPg: Target = {
  name: "raw-pg",
  database: true,
  open: (url, poolSize) => open(url, poolSize, false)
}

/**
 * The batched target keeps at most `batchedConnections` round trips in flight (the rest of the workload's
 * concurrency queues and coalesces); with one append in flight (W4w's appends, W6) it is the floor.
 */
export const rawPgBatched: Target = {
  name: "raw-pg-batched",
  database: true,
  open: (url, poolSize) => open(url, poolSize, true)
}
