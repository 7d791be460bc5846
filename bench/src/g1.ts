/**
 * G1 (bench/README.md): projection throughput of a consumer group (`Subscription.runGroup`) on PostgreSQL with 1, 2
 * and 4 members, beside one plain `Subscription` (one partition). 8,000 events on 400 streams are written first
 * (untimed). Every member (and the plain subscription) is a process of its own (g1member.ts), with its own PgClient
 * pool, as a deployment runs them: the processes start and build their stores untimed, then all are told `go` at
 * once; the time runs from `go` until every partition's checkpoint is at the head (polled every 20 ms), each variant
 * from no checkpoint. The group has 8 partitions; the handler runs in the partition's transaction (exactly-once).
 *
 * Three handlers, 1 ms per event each: `cpu` (a busy loop on the event loop: the work a member's process does, which
 * more processes spread over more cores), `sleep` (a wait: the time of a call to another system, which one process
 * already overlaps across its partitions), and `noop` for one subscription and a group of 1 member (what reading the
 * log once per partition and skipping the other partitions' events costs).
 */
import { CheckpointStore, Subscription } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { PgClient } from "@effect/sql-pg"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import type { Target } from "./target.js"
import { deposit } from "./target.js"
import type { Measurement } from "./workloads.js"
import { round, Unsupported } from "./workloads.js"

export const G1_EVENTS = 8_000
export const G1_STREAMS = 400
export const G1_PARTITIONS = 8
const MEMBER_COUNTS = [1, 2, 4] as const
type Handler = "cpu" | "sleep" | "noop"

export const g1Seed = () =>
  Array.from({ length: G1_STREAMS }, (_, i) => ({
    streamId: `account-g1_${i}`,
    events: Array.from({ length: G1_EVENTS / G1_STREAMS }, (_, j) => deposit(i * 100 + j))
  }))

const stores = (url: string, pool: number) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(PgClient.layer({ url: Redacted.make(url), maxConnections: pool })),
    Layer.orDie
  )

interface Member {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly exited: Promise<number | null>
}

/** A member process (g1member.js next to the compiled harness, g1member.ts under tsx); `ready` once its stores are. */
const spawnMember = (url: string, kind: "group" | "plain", name: string, handler: Handler): Member => {
  const script = fileURLToPath(
    new URL(import.meta.url.endsWith(".ts") ? "./g1member.ts" : "./g1member.js", import.meta.url)
  )
  const child = spawn(
    process.execPath,
    [...process.execArgv, script, url, kind, name, handler, String(G1_PARTITIONS)],
    { stdio: ["pipe", "pipe", "inherit"] }
  )
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  const ready = new Promise<void>((resolve, reject) => {
    let output = ""
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes("ready\n")) resolve()
      // G1_DEBUG=1: the members' output (logs) on stderr
      if (process.env.G1_DEBUG) process.stderr.write(`[${name}] ${chunk.toString()}`)
    })
    child.on("error", reject)
    void exited.then((code) => reject(new Error(`G1 member ${name} exited with ${code} before it was ready`)))
  })
  return { child, ready, exited }
}

/** Stops the members (SIGTERM: they leave cleanly), SIGKILL after 5 s. */
const stop = async (members: ReadonlyArray<Member>) => {
  for (const member of members) member.child.kill("SIGTERM")
  await Promise.all(members.map(async (member) => {
    const timer = setTimeout(() => member.child.kill("SIGKILL"), 5_000)
    await member.exited
    clearTimeout(timer)
  }))
}

/** One variant: `members` member processes (0: one plain subscription); seconds from `go` to the head. */
const variant = async (url: string, members: number, handler: Handler, run: number): Promise<number> => {
  const name = `g1_r${run}_${handler}_m${members}`
  const processes = members === 0
    ? [spawnMember(url, "plain", name, handler)]
    : Array.from({ length: members }, () => spawnMember(url, "group", name, handler))
  try {
    await Promise.all(processes.map((member) => member.ready))
    const atHead = members === 0
      ? Effect.flatMap(
        CheckpointStore.CheckpointStore,
        (checkpoints) => Effect.map(checkpoints.load(name), Option.exists((p) => p >= G1_EVENTS))
      )
      : Effect.map(
        Subscription.groupStatus({ group: name, partitions: G1_PARTITIONS }),
        (rows) => rows.every((row) => Option.exists(row.checkpoint, (p) => p >= G1_EVENTS))
      )
    const wait = Effect.gen(function*() {
      const start = performance.now()
      for (const member of processes) member.child.stdin!.write("go\n")
      yield* Effect.repeat(atHead, { until: (ok) => ok, schedule: Schedule.spaced("20 millis") })
      return (performance.now() - start) / 1000
    }).pipe(Effect.provide(stores(url, 2)))
    return await Effect.runPromise(wait as Effect.Effect<number>)
  } finally {
    await stop(processes)
  }
}

export const runG1 = async (target: Target, url: string, run = 1): Promise<Measurement> => {
  if (target.name !== "postgres") throw new Unsupported()
  const session = await target.open(url, 8)
  try {
    await session.appendNew(g1Seed(), 8)
  } finally {
    await session.close()
  }
  const rate = (s: number) => round(G1_EVENTS / s)
  const extra: Record<string, number> = {}
  for (const handler of ["cpu", "sleep"] as const) {
    extra[`${handler}Subscription`] = rate(await variant(url, 0, handler, run))
    for (const members of MEMBER_COUNTS) {
      extra[`${handler}Members${members}`] = rate(await variant(url, members, handler, run))
    }
  }
  // the handler costs nothing: one subscription reads the log once, a group of 8 partitions 8 times
  extra.noopSubscription = rate(await variant(url, 0, "noop", run))
  extra.noopMembers1 = rate(await variant(url, 1, "noop", run))
  return {
    value: extra.cpuMembers2!,
    unit: "events/s (2 member processes, 1 ms CPU handler)",
    higherIsBetter: true,
    extra: { ...extra, partitions: G1_PARTITIONS, events: G1_EVENTS }
  }
}
