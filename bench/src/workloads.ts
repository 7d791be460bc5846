/**
 * W1–W6, W4w, M1 and G1 (in g1.ts) of bench/README.md. Each returns one measurement; setup (fresh database, schema, seeding)
 * is outside the timed part.
 */
import type { Batch, SeenEvent, Session } from "./target.js"
import { deposit } from "./target.js"

export type WorkloadId = "W1" | "W2" | "W3" | "W4" | "W4w" | "W5" | "W6" | "M1" | "G1"

export const workloadIds: ReadonlyArray<WorkloadId> = ["W1", "W2", "W3", "W4", "W4w", "W5", "W6", "M1", "G1"]

export interface Measurement {
  /** the headline metric */
  readonly value: number
  readonly unit: string
  /** whether a larger value is better */
  readonly higherIsBetter: boolean
  readonly extra: Record<string, number | string>
}

export interface Workload {
  readonly id: WorkloadId
  readonly description: string
  /** connection pool size (= operations in flight) */
  readonly pool: number
  readonly run: (session: Session, label: string) => Promise<Measurement>
}

const batches = (prefix: string, count: number, size: number): Array<Batch> =>
  Array.from({ length: count }, (_, i) => ({
    streamId: `account-${prefix}_${i}`,
    events: Array.from({ length: size }, (_, j) => deposit(i * size + j))
  }))

const seconds = (start: number) => (performance.now() - start) / 1000

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** the `p`-th percentile (0–100) by the nearest-rank method */
const percentile = (values: ReadonlyArray<number>, p: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const appendWorkload = (
  id: WorkloadId,
  description: string,
  count: number,
  size: number,
  inFlight: number
): Workload => ({
  id,
  description,
  pool: inFlight,
  run: async (session, label) => {
    const work = batches(label, count, size)
    const start = performance.now()
    await session.appendNew(work, inFlight)
    const elapsed = seconds(start)
    return {
      value: round((count * size) / elapsed),
      unit: "events/s",
      higherIsBetter: true,
      extra: { events: count * size, seconds: round(elapsed, 3) }
    }
  }
})

/** Checks a read of the global log against what was written: missed, duplicated and out-of-order events. */
export const audit = (expected: ReadonlyMap<string, number>) => {
  const seenKeys = new Set<string>()
  const lastVersion = new Map<string, number>()
  let seen = 0
  let duplicated = 0
  let outOfOrder = 0
  let unexpected = 0
  const onChunk = (events: ReadonlyArray<SeenEvent>) => {
    for (const event of events) {
      seen++
      const max = expected.get(event.streamId)
      if (max === undefined || event.version > max || event.version < 1) {
        unexpected++
        continue
      }
      const key = `${event.streamId}#${event.version}`
      if (seenKeys.has(key)) {
        duplicated++
        continue
      }
      seenKeys.add(key)
      // within a stream the global order must follow the versions
      if (event.version !== (lastVersion.get(event.streamId) ?? 0) + 1) outOfOrder++
      lastVersion.set(event.streamId, event.version)
    }
  }
  const result = () => {
    let total = 0
    for (const max of expected.values()) total += max
    return { seen, missed: total - seenKeys.size, duplicated, outOfOrder, unexpected }
  }
  return { onChunk, result }
}

export const workloads: Record<WorkloadId, Workload> = {
  W1: appendWorkload(
    "W1",
    "append-new: 20,000 new streams, one append of 1 event each (NoStream), 16 in flight",
    20_000,
    1,
    16
  ),
  W2: appendWorkload("W2", "append-batch: 200 appends of 100 events to new streams, 8 in flight", 200, 100, 8),
  W3: {
    id: "W3",
    description: "append-contended: 16 writers x 100 commands on ONE stream through the command handler",
    pool: 16,
    run: async (session, label) => {
      const writers = 16
      const perWriter = 100
      const start = performance.now()
      const result = await session.contended(`account-${label}_contended`, writers, perWriter)
      const elapsed = seconds(start)
      return {
        value: round(result.succeeded / elapsed),
        unit: "appends/s",
        higherIsBetter: true,
        extra: {
          succeeded: result.succeeded,
          failed: result.failed,
          conflicts: result.conflicts,
          seconds: round(elapsed, 3)
        }
      }
    }
  },
  W4: {
    id: "W4",
    description: "rehydrate: one stream of 1,000 events, load + fold 200 times sequentially",
    pool: 1,
    run: async (session, label) => {
      const [stream] = batches(`${label}_rehydrate`, 1, 1000)
      await session.appendNew([stream!], 1)
      const expectedSum = stream!.events.reduce((sum, e) => sum + e.data.amount, 0)
      const start = performance.now()
      const { durations, sum } = await session.rehydrate(stream!.streamId, 200)
      const elapsed = seconds(start)
      if (sum !== expectedSum) throw new Error(`W4: folded sum ${sum}, expected ${expectedSum}`)
      return {
        value: round(median(durations), 3),
        unit: "ms/load",
        higherIsBetter: false,
        extra: { loadsPerSecond: round(durations.length / elapsed), seconds: round(elapsed, 3) }
      }
    }
  },
  W4w: {
    id: "W4w",
    description:
      "warm rehydrate: as W4, but each load follows one append of 1 event (the aggregate cache may serve it)",
    pool: 1,
    run: async (session, label) => {
      const [stream] = batches(`${label}_warm`, 1, 1000)
      await session.appendNew([stream!], 1)
      const times = 200
      const appended = Array.from({ length: times }, (_, i) => deposit(1000 + i))
      const expectedSum = [...stream!.events, ...appended].reduce((sum, e) => sum + e.data.amount, 0)
      const start = performance.now()
      const { cache, durations, sum } = await session.warmRehydrate(stream!.streamId, times, 1000)
      const elapsed = seconds(start)
      if (sum !== expectedSum) throw new Error(`W4w: folded sum ${sum}, expected ${expectedSum}`)
      return {
        value: round(median(durations), 3),
        unit: "ms/load",
        higherIsBetter: false,
        // `seconds` includes the (untimed) appends
        extra: { cache, p99: round(percentile(durations, 99), 3), seconds: round(elapsed, 3) }
      }
    }
  },
  W6: {
    id: "W6",
    description: "single writer: 2,000 sequential appends of 1 event to new streams, one in flight (latency)",
    pool: 1,
    run: async (session, label) => {
      // warm-up on other streams, untimed (JIT, the connection): the same for every target
      await session.appendSequential(batches(`${label}_warmup`, 100, 1))
      const work = batches(label, 2000, 1)
      const start = performance.now()
      const durations = await session.appendSequential(work)
      const elapsed = seconds(start)
      return {
        value: round(percentile(durations, 50), 3),
        unit: "ms p50",
        higherIsBetter: false,
        extra: {
          p99: round(percentile(durations, 99), 3),
          p90: round(percentile(durations, 90), 3),
          max: round(Math.max(...durations), 3),
          appendsPerSecond: round(work.length / elapsed),
          seconds: round(elapsed, 3)
        }
      }
    }
  },
  W5: {
    id: "W5",
    description: "read-all: 100,000 events written by 8 concurrent writers (10-event appends), then read in order",
    pool: 8,
    run: async (session, label) => {
      const read = session.readAll
      if (read === undefined) throw new Unsupported()
      const work = batches(label, 10_000, 10)
      const writeStart = performance.now()
      await session.appendNew(work, 8)
      const writeSeconds = seconds(writeStart)
      const checker = audit(new Map(work.map((b) => [b.streamId, b.events.length])))
      const start = performance.now()
      await read(checker.onChunk, false)
      const elapsed = seconds(start)
      const result = checker.result()
      return {
        value: round(result.seen / elapsed),
        unit: "events/s",
        higherIsBetter: true,
        extra: {
          events: result.seen,
          missed: result.missed,
          duplicated: result.duplicated,
          outOfOrder: result.outOfOrder,
          unexpected: result.unexpected,
          seconds: round(elapsed, 3),
          writeEventsPerSecond: round(100_000 / writeSeconds)
        }
      }
    }
  },
  M1: {
    id: "M1",
    description: "memory: read 1,000,000 events through readAll as a stream, folding a counter (child process)",
    pool: 4,
    // run by main.ts in a child process, see m1.ts
    run: () => Promise.reject(new Error("M1 runs in a child process"))
  },
  G1: {
    id: "G1",
    description:
      "consumer group: 8,000 events, 8 partitions, a 1 ms handler (CPU, sleep); 1, 2 and 4 member processes vs one subscription",
    pool: 8,
    run: () => Promise.reject(new Error("G1 runs in g1.ts"))
  }
}

/** The workload is not supported by the target (emmett's in-memory store has no read of the global log). */
export class Unsupported extends Error {
  constructor() {
    super("not supported by this target")
  }
}

/** M1's seed: 1,000 new streams of 1,000 events, 4 appends in flight */
export const m1Seed = (): Array<Batch> => batches("m1", 1000, 1000)

export { median, percentile, round }
