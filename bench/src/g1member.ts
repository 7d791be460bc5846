/**
 * One G1 member (or G1's plain subscription) as a process of its own, as a deployment runs them: it builds its stores
 * (its own PgClient pool), prints `ready`, waits for a line `go` on stdin, then runs until SIGTERM.
 *
 * usage: node dist/g1member.js <database url> <group | plain> <name> <cpu | sleep | noop> <partitions>
 *        (compiled by `node build.mjs`, as `npm run bench` does), or tsx src/g1member.ts …
 *
 * The handler costs 1 ms per event: `cpu` burns it on the event loop (a busy loop: what scales with processes),
 * `sleep` waits it (the time of a call to another system: what overlaps within one process), `noop` costs nothing
 * (what reading the log costs alone). It runs in the partition's (the subscription's) transaction.
 */
import { Projection, Subscription } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createInterface } from "node:readline"

const [url, kind, name, handler, partitionsArg] = process.argv.slice(2)
if (url === undefined || name === undefined || (kind !== "group" && kind !== "plain")) {
  process.stderr.write("usage: g1member.ts <url> <group | plain> <name> <cpu | sleep | noop> <partitions>\n")
  process.exit(2)
}
const partitions = Number(partitionsArg ?? "8")

/** 1 ms of CPU on the event loop. */
const burn = () => {
  const end = performance.now() + 1
  while (performance.now() < end) {
    // busy
  }
}

const projection = Projection.make({
  name,
  handle: () => handler === "cpu" ? Effect.sync(burn) : handler === "sleep" ? Effect.sleep("1 millis") : Effect.void
})

const Stores = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
  Layer.provideMerge(PgClient.layer({
    url: Redacted.make(url),
    maxConnections: kind === "group" ? 2 * partitions + 4 : 4,
    applicationName: `g1-${name}`
  })),
  Layer.orDie
)

const program = Effect.gen(function*() {
  const go = yield* Deferred.make<void>()
  const lines = createInterface({ input: process.stdin })
  lines.on("line", (line) => {
    if (line.trim() === "go") Effect.runFork(Deferred.succeed(go, undefined))
  })
  process.stdout.write("ready\n")
  yield* Deferred.await(go)
  if (kind === "plain") {
    const subscription = yield* Subscription.forkScoped(projection)
    return yield* subscription.join
  }
  const group = yield* Subscription.forkGroupScoped(projection, {
    group: name,
    partitions,
    rebalanceEvery: "200 millis"
  })
  return yield* group.join
}).pipe(Effect.scoped, Effect.provide(Stores))

const fiber = Effect.runFork(program)
let leaving = false
process.on("SIGTERM", () => {
  leaving = true
  Effect.runFork(Fiber.interrupt(fiber)).addObserver(() => process.exit(0))
})
fiber.addObserver((exit) => {
  if (leaving) return
  process.stderr.write(`G1 member ${name} stopped: ${String(exit)}\n`)
  process.exit(1)
})
