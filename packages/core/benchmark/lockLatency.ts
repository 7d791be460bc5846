/**
 * Latency of commands that queue on one lock (issue 12: in-memory commands waited 10-29 s under load).
 *
 * Run: `npx tsx --conditions=@effect-eventsourcing/source packages/core/benchmark/lockLatency.ts`
 *
 * 1. The lock alone: N fibers take one lock at once, each holds it for one scheduler turn; Effect's `Semaphore` (what
 *    `StoreKit.makeKeyedLock` and the in-memory commit lock used before) against `makeFifoLock`.
 * 2. The in-memory store: N `CommandHandler` commands with `lock: true` spread over a few streams, and N appends with
 *    an inline projection (the commit lock), alone and beside a CPU-bound fiber (1 ms of work per turn).
 *
 * Results on the shared 2-core machine (2026-11-29, load average 15-22 from other jobs: absolute figures are rough;
 * the two columns are runs of this file one after the other, before and after the change), latency per command in ms,
 * p50 / p99 / max:
 *
 * | scenario                                            | Effect Semaphore         | FIFO handoff          |
 * |-----------------------------------------------------|--------------------------|-----------------------|
 * | lock alone, 500 fibers                              | 9,698 / 13,309 / 13,335  | 229 / 348 / 348       |
 * | store, 1,000 locked commands on 10 streams          | 14,887 / 22,880 / 22,905 | 3,531 / 6,537 / 6,557 |
 * | store, 1,000 appends through the commit lock        | 2,748 / 3,222 / 3,242    | 3,418 / 3,716 / 3,718 |
 * | + CPU-bound fiber, 200 locked commands, 1 stream    | 4,202 / 6,502 / 6,520    | 2,235 / 3,813 / 3,824 |
 * | + CPU-bound fiber, 200 locked commands, 50 streams  | 681 / 915 / 916          | 1,041 / 1,332 / 1,332 |
 * | + CPU-bound fiber, 400 appends, commit lock         | 1,041 / 1,434 / 1,460    | 1,349 / 1,491 / 1,492 |
 *
 * Contention on one key is where the Semaphore's wake-everyone release costs: O(waiters) wake-ups per release,
 * O(n^2) for n queued commands (2,000 fibers on the lock alone: median 235 s against 0.8 s). Short critical sections
 * with few waiters (the commit lock with a no-op projection, 50 streams) show no difference beyond the noise.
 */
import { Clock, Effect, Fiber } from "effect"
import * as CommandHandler from "../src/CommandHandler.js"
import * as InMemoryEventStore from "../src/InMemoryEventStore.js"
import { makeFifoLock } from "../src/internal/storeKit.js"
import * as Projection from "../src/Projection.js"
import { Deposit, Open, Wallet } from "../test/fixtures.js"

const busy = (ms: number) =>
  Effect.sync(() => {
    const end = performance.now() + ms
    while (performance.now() < end) {
      // a CPU-bound step
    }
  })

const competitor = Effect.forever(Effect.zipRight(busy(1), Effect.yieldNow()))

const report = (label: string, latencies: ReadonlyArray<number>) => {
  const sorted = [...latencies].sort((a, b) => a - b)
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(0)
  console.log(`${label.padEnd(62)} n=${sorted.length} p50=${at(0.5)} p99=${at(0.99)} max=${at(1)} ms`)
}

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = yield* Clock.currentTimeMillis
    yield* effect
    return (yield* Clock.currentTimeMillis) - start
  })

const lockAlone = (
  label: string,
  n: number,
  withLock: <A, E, R>(e: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
) =>
  Effect.forEach(Array.from({ length: n }), () => timed(withLock(Effect.yieldNow())), { concurrency: "unbounded" })
    .pipe(Effect.map((latencies) => report(label, latencies)))

const commands = (label: string, n: number, streams: number, options: {
  readonly lock: boolean
  readonly inline: boolean
  readonly busy: boolean
}) =>
  Effect.gen(function*() {
    const handle = CommandHandler.make(Wallet, options.lock ? { lock: true } : {})
    for (let s = 0; s < streams; s++) yield* handle(`w${s}`, new Open({ owner: "A" }))
    const background = yield* Effect.fork(options.busy ? competitor : Effect.never)
    const latencies = yield* Effect.forEach(
      Array.from({ length: n }, (_, i) => i),
      (i) => timed(handle(`w${i % streams}`, new Deposit({ amount: 1 }))),
      { concurrency: "unbounded" }
    )
    yield* Fiber.interrupt(background)
    report(label, latencies)
  }).pipe(Effect.provide(InMemoryEventStore.layerWith(
    options.inline ? { inline: [Projection.make({ name: "noop", handle: () => Effect.void })] } : {}
  )))

const program = Effect.gen(function*() {
  const semaphore = Effect.unsafeMakeSemaphore(1)
  yield* lockAlone("lock alone, 500 fibers: Effect Semaphore", 500, semaphore.withPermits(1))
  yield* lockAlone("lock alone, 500 fibers: FIFO handoff", 500, makeFifoLock().withLock)
  yield* commands("store, 1,000 locked commands on 10 streams", 1_000, 10, { lock: true, inline: false, busy: false })
  yield* commands("store, 1,000 appends through the commit lock", 1_000, 1_000, {
    lock: false,
    inline: true,
    busy: false
  })
  yield* commands("+ CPU-bound fiber, 200 locked commands, 1 stream", 200, 1, { lock: true, inline: false, busy: true })
  yield* commands("+ CPU-bound fiber, 200 locked commands, 50 streams", 200, 50, {
    lock: true,
    inline: false,
    busy: true
  })
  yield* commands("+ CPU-bound fiber, 400 appends, commit lock", 400, 400, { lock: false, inline: true, busy: true })
})

Effect.runPromise(program)
