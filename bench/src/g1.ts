/**
 * G1 (bench/README.md): projection throughput of a consumer group (`Subscription.runGroup`) on PostgreSQL for a
 * handler that costs 1 ms per event (a sleep: the time of a call to another system), with 1, 2 and 4 members, beside
 * one plain `Subscription` (one partition). 4,000 events on 400 streams are written first (untimed); each variant
 * then starts from no checkpoint, and the time runs from the members' start until every partition's checkpoint is at
 * the head. Members are fibers of this process, each with its own PgClient pool (as processes would have);
 * the group has 8 partitions, the handler runs in the partition's transaction (exactly-once). Then the same with a
 * handler that costs nothing, for one subscription and a group of 1 member: what reading the log once per partition
 * and skipping the other partitions' events costs (the case for a filter evaluated by the server).
 */
import { CheckpointStore, Projection, Subscription } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { Target } from "./target.js"
import { deposit } from "./target.js"
import type { Measurement } from "./workloads.js"
import { round, Unsupported } from "./workloads.js"

export const G1_EVENTS = 4_000
export const G1_STREAMS = 400
export const G1_PARTITIONS = 8
const MEMBER_COUNTS = [1, 2, 4] as const

export const g1Seed = () =>
  Array.from({ length: G1_STREAMS }, (_, i) => ({
    streamId: `account-g1_${i}`,
    events: Array.from({ length: G1_EVENTS / G1_STREAMS }, (_, j) => deposit(i * 100 + j))
  }))

/** The 1 ms handler, or (`cost: false`) one that does nothing: what the partitions' reading and skipping cost alone */
const projection = (name: string, cost = true) =>
  Projection.make({ name, handle: () => cost ? Effect.sleep("1 millis") : Effect.void })

const stores = (url: string, pool: number) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: pool })),
    Layer.orDie
  )

/** Seconds until `done` holds for the checkpoints, polled every 20 ms. */
const waitUntil = (done: Effect.Effect<boolean, unknown, CheckpointStore.CheckpointStore>) =>
  Effect.repeat(done, { until: (ok) => ok, schedule: Schedule.spaced("20 millis") })

/** One variant: `members` group members (0: one plain subscription); seconds until the checkpoints reach the head. */
const variant = (url: string, members: number, head: number, cost = true) =>
  Effect.gen(function*() {
    const group = `g1_m${members}${cost ? "" : "_noop"}`
    const scope = yield* Scope.make()
    const start = performance.now()
    if (members === 0) {
      yield* Scope.extend(
        Effect.flatMap(Layer.build(stores(url, 4)), (ctx) =>
          Effect.provide(Subscription.forkScoped(projection(group, cost)), ctx)),
        scope
      )
    } else {
      for (let m = 0; m < members; m++) {
        yield* Scope.extend(
          Effect.flatMap(Layer.build(stores(url, 2 * G1_PARTITIONS + 4)), (ctx) =>
            Effect.provide(
              Subscription.forkGroupScoped(projection(group, cost), {
                group,
                partitions: G1_PARTITIONS,
                rebalanceEvery: "200 millis"
              }),
              ctx
            )),
          scope
        )
      }
    }
    const checkpoints = yield* CheckpointStore.CheckpointStore
    const atHead = members === 0
      ? Effect.map(
        checkpoints.load(group),
        Option.exists((p) =>
          p >= head
        )
      )
      : Effect.map(
        Subscription.groupStatus({ group, partitions: G1_PARTITIONS }),
        (rows) => rows.every((row) => Option.exists(row.checkpoint, (p) => p >= head))
      )
    yield* waitUntil(atHead as Effect.Effect<boolean, unknown, CheckpointStore.CheckpointStore>)
    const elapsed = (performance.now() - start) / 1000
    yield* Scope.close(scope, Exit.void)
    return elapsed
  })

export const runG1 = async (target: Target, url: string): Promise<Measurement> => {
  if (target.name !== "postgres") throw new Unsupported()
  const session = await target.open(url, 8)
  try {
    await session.appendNew(g1Seed(), 8)
  } finally {
    await session.close()
  }
  const program = Effect.gen(function*() {
    const head = G1_EVENTS
    const plain = yield* variant(url, 0, head)
    const seconds: Array<number> = []
    for (const members of MEMBER_COUNTS) seconds.push(yield* variant(url, members, head))
    // the handler costs nothing: one subscription reads the log once, a group of 8 partitions 8 times
    const plainNoop = yield* variant(url, 0, head, false)
    const groupNoop = yield* variant(url, 1, head, false)
    return { plain, seconds, plainNoop, groupNoop }
  }).pipe(Effect.provide(stores(url, 4)), Effect.scoped)
  const { groupNoop, plain, plainNoop, seconds } = await Effect.runPromise(
    program as Effect.Effect<{ plain: number; seconds: Array<number>; plainNoop: number; groupNoop: number }>
  )
  const rate = (s: number) => round(G1_EVENTS / s)
  return {
    value: rate(seconds[MEMBER_COUNTS.length - 1]!),
    unit: "events/s (4 members)",
    higherIsBetter: true,
    extra: {
      subscription: rate(plain),
      members1: rate(seconds[0]!),
      members2: rate(seconds[1]!),
      members4: rate(seconds[2]!),
      subscriptionNoop: rate(plainNoop),
      members1Noop: rate(groupNoop),
      partitions: G1_PARTITIONS,
      events: G1_EVENTS
    }
  }
}
