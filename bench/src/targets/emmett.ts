/**
 * The peers: emmett 0.42 in memory (`getInMemoryEventStore`) and on PostgreSQL (`getPostgreSQLEventStore`).
 * W3 goes through emmett's `CommandHandler` (aggregateStream → handle → appendToStream with the read version),
 * with the same retry policy as every other target: retry a version conflict at once until it goes through.
 */
import { dumbo } from "@event-driven-io/dumbo"
import type { EventStore as EmmettEventStore } from "@event-driven-io/emmett"
import {
  CommandHandler,
  getInMemoryEventStore,
  isExpectedVersionConflictError,
  STREAM_DOES_NOT_EXIST
} from "@event-driven-io/emmett"
import { getPostgreSQLEventStore, readMessagesBatch } from "@event-driven-io/emmett-postgresql"
import pg from "pg"
import type { ContendedResult, NewEvent, SeenEvent, Session, Target } from "../target.js"
import { deposit, forEachConcurrent, timeEach, writersLoop } from "../target.js"

type Deposited = { type: "Deposited"; data: { amount: number; note: string } }

const handle = CommandHandler<number, Deposited>({
  evolve: (state, event) => state + event.data.amount,
  initialState: () => 0,
  retry: {
    onVersionConflict: {
      // `forever` (node-retry): a large `retries` would precompute that many timeouts on every command
      retries: 1,
      forever: true,
      minTimeout: 0,
      maxTimeout: 0,
      factor: 1,
      shouldRetryError: isExpectedVersionConflictError
    }
  }
})

const toEmmett = (events: ReadonlyArray<NewEvent>): Array<Deposited> =>
  events.map((e) => ({ type: e.type, data: { amount: e.data.amount, note: e.data.note } }))

const commonSession = (store: EmmettEventStore) => ({
  appendNew: (batches: Parameters<Session["appendNew"]>[0], concurrency: number) =>
    forEachConcurrent(batches, concurrency, async (batch) => {
      await store.appendToStream(batch.streamId, toEmmett(batch.events), {
        expectedStreamVersion: STREAM_DOES_NOT_EXIST
      })
    }),
  appendSequential: (batches: Parameters<Session["appendSequential"]>[0]) =>
    timeEach(batches, (batch) =>
      store.appendToStream(batch.streamId, toEmmett(batch.events), {
        expectedStreamVersion: STREAM_DOES_NOT_EXIST
      })),
  contended: async (streamId: string, writers: number, perWriter: number): Promise<ContendedResult> => {
    let succeeded = 0
    let failed = 0
    let attempts = 0
    await writersLoop(writers, perWriter, async (writer, i) => {
      try {
        await handle(store, streamId, () => {
          attempts++
          return toEmmett([deposit(writer * perWriter + i)])
        })
        succeeded++
      } catch {
        failed++
      }
    })
    return { succeeded, failed, conflicts: attempts - succeeded - failed }
  },
  rehydrate: async (streamId: string, times: number) => {
    const durations: Array<number> = []
    let sum = 0
    for (let i = 0; i < times; i++) {
      const start = performance.now()
      sum = (await aggregate(store, streamId)).state
      durations.push(performance.now() - start)
    }
    return { durations, sum }
  },
  // emmett has no aggregate cache: every load reads the whole stream
  warmRehydrate: async (streamId: string, times: number, first: number) => {
    const durations: Array<number> = []
    let loaded = await aggregate(store, streamId)
    for (let i = 0; i < times; i++) {
      await store.appendToStream(streamId, toEmmett([deposit(first + i)]), {
        expectedStreamVersion: loaded.currentStreamVersion
      })
      const start = performance.now()
      loaded = await aggregate(store, streamId)
      durations.push(performance.now() - start)
    }
    return { durations, sum: loaded.state, cache: "off" as const }
  }
})

const aggregate = (store: EmmettEventStore, streamId: string) =>
  store.aggregateStream<number, Deposited>(streamId, {
    evolve: (state: number, event: Deposited) => state + event.data.amount,
    initialState: () => 0
  })

export const emmettMemory: Target = {
  name: "emmett-memory",
  database: false,
  open: () =>
    Promise.resolve({
      ...commonSession(getInMemoryEventStore()),
      // the in-memory store has no read of the global log
      readAll: undefined,
      close: () => Promise.resolve()
    })
}

/** batch size for reading the global log through emmett's own `readMessagesBatch` (default is 100) */
const READ_BATCH = 1000

export const emmettPg: Target = {
  name: "emmett-pg",
  database: true,
  open: async (url, poolSize) => {
    const pool = new pg.Pool({ connectionString: url, max: poolSize })
    // idle clients are killed when the database is dropped
    pool.on("error", () => undefined)
    const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } })
    await store.schema.migrate()
    const reader = dumbo({ connectionString: url, pool })
    return {
      ...commonSession(store),
      readAll: async (onChunk) => {
        // the loop emmett's message puller runs, without its sleeps between batches
        let after = 0n
        while (true) {
          const batch = await readMessagesBatch<Deposited>(reader.execute, { after, batchSize: READ_BATCH })
          onChunk(batch.messages.map((m): SeenEvent => ({
            streamId: m.metadata.streamName,
            version: Number(m.metadata.streamPosition),
            amount: m.data.amount
          })))
          if (!batch.areMessagesLeft) return
          after = batch.currentGlobalPosition
        }
      },
      close: async () => {
        await store.close()
        await pool.end().catch(() => undefined)
      }
    }
  }
}
