/**
 * What every benchmark target implements. Each method runs one whole phase of a workload so that the Effect
 * targets can run it as one Effect program (no `runPromise` per operation) and the Promise targets as plain
 * async code.
 */

/** An event as the workloads write it: type `Deposited`, data `{ amount, note }`. */
export interface NewEvent {
  readonly type: "Deposited"
  readonly data: { readonly amount: number; readonly note: string }
}

export interface Batch {
  readonly streamId: string
  readonly events: ReadonlyArray<NewEvent>
}

export interface ContendedResult {
  /** commands that ended with an append */
  readonly succeeded: number
  /** commands that gave up (retries exhausted or another error) */
  readonly failed: number
  /** version conflicts seen (each one caused a reload and a retry) */
  readonly conflicts: number
}

/**
 * Whether a load went through an aggregate cache: `on`, `off` (the target has none, e.g. raw-pg), or `unavailable`
 * (the target would use the library's cache, but the library has none yet).
 */
export type CacheUse = "on" | "off" | "unavailable"

export interface SeenEvent {
  readonly streamId: string
  readonly version: number
  readonly amount: number
}

export interface Session {
  /** W1, W2, W5 writes and seeding: one append per batch to a new stream (expected: no stream). */
  readonly appendNew: (batches: ReadonlyArray<Batch>, concurrency: number) => Promise<void>
  /** W3: `writers` concurrent writers, each handling `perWriter` deposit commands on one stream. */
  readonly contended: (streamId: string, writers: number, perWriter: number) => Promise<ContendedResult>
  /** W4: load and fold the stream `times` times sequentially; the duration of each load in ms and the last sum. */
  readonly rehydrate: (
    streamId: string,
    times: number
  ) => Promise<{ readonly durations: ReadonlyArray<number>; readonly sum: number }>
  /**
   * W4w: `times` rounds of (append one event, `deposit(first + i)`, to the stream at the version the last load
   * returned, untimed; then load and fold the stream, timed). Effect targets load through the aggregate cache when
   * the library has one (see `targets/aggregateCache.ts`); the duration of each load in ms and the last sum.
   */
  readonly warmRehydrate: (
    streamId: string,
    times: number,
    first: number
  ) => Promise<{ readonly durations: ReadonlyArray<number>; readonly sum: number; readonly cache: CacheUse }>
  /** W6: one append per batch to a new stream (expected: no stream), one at a time; the duration of each in ms. */
  readonly appendSequential: (batches: ReadonlyArray<Batch>) => Promise<ReadonlyArray<number>>
  /**
   * W5 and M1: read the whole global log in order; `onChunk` sees the events as the store hands them out.
   * `bounded` (M1) asks for a read whose memory does not grow with the log.
   */
  readonly readAll:
    | ((onChunk: (events: ReadonlyArray<SeenEvent>) => void, bounded: boolean) => Promise<void>)
    | undefined
  readonly close: () => Promise<void>
}

export interface Target {
  readonly name: string
  /** whether the target needs a (fresh) PostgreSQL database */
  readonly database: boolean
  /** `url` is a fresh, empty database (for database targets); `pool` is the connection pool size. */
  readonly open: (url: string, pool: number) => Promise<Session>
}

/** the 64-character note of every event */
export const NOTE = "Deposited through the effect-eventsourcing benchmark harness: ".padEnd(64, "#")

export const deposit = (i: number): NewEvent => ({
  type: "Deposited",
  data: { amount: (i % 100) + 1, note: NOTE }
})

/** Runs `task` over `items` with at most `concurrency` in flight (for the Promise targets). */
export const forEachConcurrent = async <A>(
  items: ReadonlyArray<A>,
  concurrency: number,
  task: (item: A, index: number) => Promise<void>
): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < items.length) {
      const index = next++
      await task(items[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

/** Runs `task` over `items` one at a time and returns the duration of each call in ms (W6, Promise targets). */
export const timeEach = async <A>(
  items: ReadonlyArray<A>,
  task: (item: A) => Promise<unknown>
): Promise<ReadonlyArray<number>> => {
  const durations: Array<number> = []
  for (const item of items) {
    const start = performance.now()
    await task(item)
    durations.push(performance.now() - start)
  }
  return durations
}

/** Runs `writers` async loops concurrently, each `perWriter` times. */
export const writersLoop = async (
  writers: number,
  perWriter: number,
  step: (writer: number, i: number) => Promise<void>
): Promise<void> => {
  await Promise.all(
    Array.from({ length: writers }, async (_, writer) => {
      for (let i = 0; i < perWriter; i++) await step(writer, i)
    })
  )
}
