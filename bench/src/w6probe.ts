/**
 * W6 latency probe: 2,000 sequential one-event appends through the store (as W6), with the latency distribution and
 * the GC pauses seen meanwhile (PerformanceObserver "gc"), to tell a slow statement from a pause of the client.
 *
 * Run: [DATABASE_URL=…] npx tsx --conditions=@effect-eventsourcing/source bench/src/w6probe.ts
 */
import { EventStore, ExpectedVersion, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import { PerformanceObserver } from "node:perf_hooks"
import { freshDatabase, startServer } from "./db.js"
import { deposit } from "./target.js"

const main = async () => {
  const server = await startServer()
  const db = await freshDatabase(server, "w6probe")
  const url = db.url
  const runtime = ManagedRuntime.make(
    PostgresEventStore.layer(process.env.NOTIFY === "off" ? { notify: "off" } : {}).pipe(
      Layer.provide(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
    )
  )
  const store = await runtime.runPromise(EventStore.EventStore)
  const gcs: Array<{ start: number; duration: number; kind: number }> = []
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gcs.push({
        start: entry.startTime,
        duration: entry.duration,
        kind: (entry as unknown as { detail: { kind: number } }).detail?.kind ?? 0
      })
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  const run = async (n: number, label: string) => {
    const spans: Array<{ start: number; duration: number }> = []
    await runtime.runPromise(Effect.gen(function*() {
      for (let i = 0; i < n; i++) {
        const start = performance.now()
        yield* store.append(StreamId.unsafeMake("account", `${label}_${i}`), [deposit(i)], ExpectedVersion.NoStream)
        spans.push({ start, duration: performance.now() - start })
      }
    }))
    return spans
  }
  await run(100, "warm")
  gcs.length = 0
  const spans = await run(2000, "w6")
  const sorted = spans.map((s) => s.duration).sort((a, b) => a - b)
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!.toFixed(3)
  console.log(`p50 ${pct(50)} p90 ${pct(90)} p95 ${pct(95)} p99 ${pct(99)} max ${pct(100)} ms`)
  const slow = spans.filter((s) => s.duration > 1.5)
  const withGc = slow.filter((s) => gcs.some((g) => g.start < s.start + s.duration && g.start + g.duration > s.start))
  console.log(`appends over 1.5 ms: ${slow.length}, of which overlapping a GC pause: ${withGc.length}`)
  console.log(
    `GC pauses: ${gcs.length}, total ${gcs.reduce((a, g) => a + g.duration, 0).toFixed(1)} ms, max ${
      Math.max(0, ...gcs.map((g) => g.duration)).toFixed(2)
    } ms; kinds ${
      JSON.stringify(gcs.reduce<Record<number, number>>((m, g) => ({ ...m, [g.kind]: (m[g.kind] ?? 0) + 1 }), {}))
    }`
  )
  console.log(`slow appends: ${slow.slice(0, 12).map((s) => s.duration.toFixed(2)).join(", ")}`)
  await runtime.dispose()
  await server.stop()
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
