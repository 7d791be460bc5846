/**
 * Consumer groups across processes: three member processes (`fixtures/group/member.ts`) feed one read model while
 * writers append; one member is SIGKILLed mid-run and another joins later. At the end the read model equals a fold
 * of the log, no event was handled twice (exactly-once: the handler's writes commit with the partition's
 * checkpoint), every stream's events were handled in order, and every partition's checkpoint is at the head.
 */
import { EventStore, ExpectedVersion, StreamId, Subscription } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { assert, layer } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, Schedule } from "effect"
import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("group")
const Stores = Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
  Layer.provideMerge(Database.layer),
  Layer.orDie
)

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.resolve(here, "..", "..", "..")
const script = Path.join(here, "fixtures", "group", "member.ts")

const STREAMS = 60
const ROUNDS = 40 // 2 400 events, written over about 16 s
const WRITERS = 4
const PARTITIONS = 6

interface Member {
  readonly name: string
  readonly child: ChildProcess
  /** the last `{ slot, owned }` line it printed */
  last:
    | { readonly slot: number | null; readonly members: ReadonlyArray<number>; readonly owned: ReadonlyArray<number> }
    | undefined
  exited: boolean
}

const start = (name: string, url: string): Member => {
  const child = spawn(process.execPath, [
    "--import",
    "tsx",
    "--conditions=@effect-eventsourcing/source",
    script,
    url,
    name
  ], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const member: Member = { name, child, last: undefined, exited: false }
  let buffer = ""
  child.stdout!.on("data", (data: Buffer) => {
    buffer += data.toString()
    const lines = buffer.split("\n")
    buffer = lines.pop()!
    for (const line of lines) {
      try {
        member.last = JSON.parse(line)
      } catch {
        process.stdout.write(`[${name}] ${line}\n`)
      }
    }
  })
  child.stderr!.on("data", (data: Buffer) => process.stderr.write(`[${name}] ${data.toString()}`))
  child.on("exit", () => {
    member.exited = true
  })
  return member
}

const stop = (member: Member, signal: NodeJS.Signals) =>
  Effect.async<void>((resume) => {
    if (member.exited) return resume(Effect.void)
    member.child.once("exit", () => resume(Effect.void))
    member.child.kill(signal)
  })

const handledCount = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => Effect.map(sql<{ readonly n: number }>`select count(*)::int as n from handled`, (rows) => rows[0]!.n)
)

/** Polls `self` every 100 ms until `done` holds, and logs when it does. */
const until = <A, E, R>(
  what: string,
  self: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  seconds = 90
): Effect.Effect<A, never, R> =>
  Effect.flatMap(self, (a) => done(a) ? Effect.succeed(a) : Effect.fail("not yet" as const)).pipe(
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`timed out waiting for ${what}`) }),
    Effect.orDie,
    Effect.tap(() => Effect.sync(() => console.log(`consumer group test: ${what} (${new Date().toISOString()})`)))
  )

const s = (i: number) => StreamId.unsafeMake("acc", String(i))

layer(Stores, { excludeTestServices: true, timeout: "240 seconds" })("Subscription.runGroup across processes", (it) => {
  it.scoped(
    "kill one of three members mid-run, another joins: the read model is the log's fold, exactly once",
    () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* EventStore.EventStore
        const url = yield* Database.url
        yield* sql`create table totals (stream_id text primary key, total bigint not null)`
        yield* sql`create table handled (seq bigserial primary key, position bigint not null, stream_id text not null,
                 version int not null, member text not null)`

        const members = ["m1", "m2", "m3"].map((name) => start(name, url))
        yield* Effect.addFinalizer(() => Effect.forEach(members, (m) => stop(m, "SIGKILL"), { discard: true }))
        // each writer appends to its own streams, one event at a time, amount = stream * 1000 + round
        const writers = Effect.forEach(
          Array.from({ length: WRITERS }, (_, w) => w),
          (w) =>
            Effect.forEach(Array.from({ length: ROUNDS }, (_, round) => round), (round) =>
              Effect.forEach(
                Array.from({ length: STREAMS / WRITERS }, (_, k) => w + k * WRITERS),
                (i) =>
                  store.append(
                    s(i),
                    [{ type: "Deposited", data: { amount: i * 1000 + round } }],
                    round === 0 ? ExpectedVersion.NoStream : ExpectedVersion.Exact(round)
                  ),
                { discard: true }
              ).pipe(Effect.zipRight(Effect.sleep("400 millis"))), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )

        // three members share the partitions, then m2 dies in the middle of the run
        yield* until(
          "three members with partitions",
          Effect.sync(() => members.map((m) => m.last?.owned.length ?? 0)),
          (
            owned
          ) => owned.every((n) => n > 0) && owned.reduce((a, b) => a + b, 0) === PARTITIONS
        )
        const writing = yield* Effect.fork(Effect.orDie(writers))
        yield* until("some progress", handledCount, (n) => n >= 300)
        const killedAt = yield* handledCount
        const killedOwned = members[1]!.last!.owned
        yield* stop(members[1]!, "SIGKILL")
        // m4 starts now and joins while the writers still write
        members.push(start("m4", url))
        yield* until(
          "m2's partitions taken over",
          Effect.sync(() => [members[0]!, members[2]!].map((m) => m.last?.owned.length ?? 0)),
          (
            owned
          ) => owned.reduce((a, b) => a + b, 0) === PARTITIONS
        )

        yield* until("m4 with partitions", Effect.sync(() => members[3]!.last?.owned.length ?? 0), (n) => n > 0)
        const joinedAt = yield* handledCount
        const writersDone = writing.unsafePoll() !== null
        yield* Fiber.join(writing)

        const total = STREAMS * ROUNDS
        const head = yield* Effect.map(
          sql<{ readonly p: string }>`select max(position)::text as p from event_store.events`,
          (rows) => Number(rows[0]!.p)
        )
        const status = yield* until(
          "every partition at the head",
          Subscription.groupStatus({ group: "totals", partitions: PARTITIONS }),
          (rows) => rows.every((row) => Option.getOrElse(row.checkpoint, () => 0) === head)
        )
        // and the three live members end up with two partitions each
        yield* until(
          "two partitions each",
          Effect.sync(() => [members[0]!, members[2]!, members[3]!].map((m) => m.last?.owned.length ?? 0)),
          (
            owned
          ) => owned.every((n) => n === 2)
        )
        const live = yield* Effect.sync(() =>
          [members[0]!, members[2]!, members[3]!].map((m) =>
            `${m.name}: slot ${m.last?.slot} sees ${JSON.stringify(m.last?.members)} owns ${
              JSON.stringify(m.last?.owned)
            }`
          )
        )

        // the audit
        const duplicates = yield* sql<{ readonly position: string; readonly n: number }>`
        select position::text, count(*)::int as n from handled group by position having count(*) > 1`
        const missing = yield* sql<{ readonly position: string }>`
        select e.position::text from event_store.events e left join handled h on h.position = e.position
        where h.position is null`
        const outOfOrder = yield* sql<{ readonly stream_id: string }>`
        select stream_id from (
          select stream_id, version, lag(version) over (partition by stream_id order by seq) as previous from handled
        ) h where previous is not null and version <> previous + 1`
        const different = yield* sql<{ readonly stream_id: string }>`
        with fold as (
          select stream_id, sum((data->>'amount')::bigint) as total from event_store.events group by stream_id
        )
        select coalesce(f.stream_id, t.stream_id) as stream_id from fold f full join totals t using (stream_id)
        where f.total is distinct from t.total`
        const byMember = yield* sql<{ readonly member: string; readonly n: number }>`
        select member, count(*)::int as n from handled group by member order by member`
        const events = yield* Effect.map(
          sql<{ readonly n: number }>`select count(*)::int as n from event_store.events`,
          (rows) => rows[0]!.n
        )

        console.log([
          `consumer group audit: ${events} events (head ${head}) over ${STREAMS} streams, ${PARTITIONS} partitions`,
          `m2 SIGKILLed at ${killedAt} handled, owning ${
            JSON.stringify(killedOwned)
          }; m4 had partitions at ${joinedAt} handled (writers ${writersDone ? "done" : "still writing"})`,
          `handled by member: ${byMember.map((r) => `${r.member}=${r.n}`).join(" ")}`,
          `duplicates ${duplicates.length}, missing ${missing.length}, out of order ${outOfOrder.length}, read model rows differing from the fold ${different.length}`,
          `partitions: ${
            status.map((r) =>
              `${r.partition}@${Option.getOrNull(r.checkpoint)} lag ${r.lag} member ${Option.getOrNull(r.member)}`
            ).join("; ")
          }`,
          ...live
        ].join("\n"))

        assert.strictEqual(events, total)
        assert.deepStrictEqual(duplicates, [])
        assert.deepStrictEqual(missing, [])
        assert.deepStrictEqual(outOfOrder, [])
        assert.deepStrictEqual(different, [])
        assert.isTrue(status.every((row) => row.lag === 0 && Option.getOrNull(row.checkpoint) === head))
        // the dead member did work before it died, the late one after it joined
        assert.isTrue(byMember.some((r) => r.member === "m2" && r.n > 0))
        assert.isTrue(byMember.some((r) => r.member === "m4" && r.n > 0))
        assert.isFalse(writersDone, "m4 joined after the writers were done: the run proves less than it says")

        // members that leave cleanly (SIGTERM) forget their holder entries; m2's was taken over long ago
        yield* Effect.forEach([members[0]!, members[2]!, members[3]!], (m) => stop(m, "SIGTERM"), { discard: true })
        const left = yield* Subscription.groupStatus({ group: "totals", partitions: PARTITIONS })
        assert.isTrue(left.every((row) => Option.isNone(row.member)), JSON.stringify(left))
      }),
    240_000
  )
})
