/**
 * `subscriptions status | reset` and `parked list | retry | skip`: the built bin as a child process, against
 * consumers running in this process (their own pool, application name `cli-test-consumer`) on a fresh database.
 */
import {
  EventStore,
  ExpectedVersion,
  ParkedEvents,
  Projection,
  StreamId,
  Subscription
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresParkedEvents } from "@effect-eventsourcing/postgres"
import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
import { assert, describe, it } from "@effect/vitest"
import { Data, Effect, Fiber, Layer, Logger, LogLevel, ManagedRuntime, Ref, Schedule } from "effect"
import { afterAll, beforeAll } from "vitest"
import { run, runOnTerminal, script } from "./process.js"

const schema = "ops"
const Database = PostgresTesting.freshDatabase("cli_ops")
const app = ManagedRuntime.make(
  Layer.mergeAll(
    PostgresEventStore.layer({ schema, pollInterval: "100 millis" }),
    PostgresCheckpointStore.layer({ schema }),
    PostgresParkedEvents.layer({ schema })
  ).pipe(
    Layer.provideMerge(Database.pool({ applicationName: "cli-test-consumer", maxConnections: 10 })),
    Layer.orDie,
    // the consumers' warnings (failed batches, parked events) are expected here
    Layer.provideMerge(Logger.minimumLogLevel(LogLevel.Error))
  )
)
let url = ""
const cli = (...args: ReadonlyArray<string>) => run([...args, "--schema", schema], { DATABASE_URL: url })
const jsonLines = (stdout: string) =>
  stdout.trimEnd().split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))

const appendAll = (category: string, streams: number, perStream: number, type = "Counted") =>
  Effect.gen(function*() {
    let last = 0
    for (let e = 0; e < perStream; e++) {
      for (let i = 0; i < streams; i++) {
        const result = yield* EventStore.append(
          StreamId.unsafeMake(category, `${i}`),
          [{ type, data: { i, e } }],
          ExpectedVersion.Any
        )
        last = result.position
      }
    }
    return last
  })

/** A projection counting what it handles (slowly, so that a replay takes a while), and its resets. */
const counting = (name: string, options: { readonly resettable: boolean }) =>
  Effect.gen(function*() {
    const handled = yield* Ref.make(0)
    const resets = yield* Ref.make(0)
    const projection = Projection.make({
      name,
      handle: () => Effect.zipRight(Effect.sleep("2 millis"), Ref.update(handled, (n) => n + 1)),
      ...(options.resettable ? { onReset: () => Ref.update(resets, (n) => n + 1) } : {})
    })
    return { projection, handled, resets }
  })

const consume = <E>(projection: Projection.Projection<E>, category: string) =>
  app.runFork(
    Subscription.run(projection, { filter: { categories: [category] }, batchSize: 20, controlInterval: "200 millis" })
  )

const awaitCheckpoint = (name: string, position: number) =>
  app.runPromise(Subscription.awaitCheckpoint(name, position).pipe(Effect.timeout("30 seconds")))

beforeAll(async () => {
  url = await Effect.runPromise(Database.url)
  await app.runPromise(Effect.void)
})

afterAll(() => app.dispose())

describe("subscriptions", () => {
  it("status shows checkpoint, head, lag and holder; reset --watch follows the replay until the consumer caught up", async () => {
    const head = await app.runPromise(appendAll("acc", 20, 10))
    const totals = await app.runPromise(counting("totals", { resettable: true }))
    const fiber = consume(totals.projection, "acc")
    await awaitCheckpoint("totals", head)

    const status = await cli("subscriptions", "status", "--json")
    assert.strictEqual(status.code, 0, status.stderr)
    const row = jsonLines(status.stdout).find((r) => r.name === "totals")
    assert.deepInclude(row, { checkpoint: head, head, lag: 0, parked: 0, lastError: null, resetRequest: null })
    assert.include(row.holder, "cli-test-consumer")
    const table = await cli("subscriptions", "status")
    assert.match(
      table.stdout.split("\n")[0]!,
      /^SUBSCRIPTION {2}CHECKPOINT {2}HEAD {2}LAG {2}PARKED {2}HOLDER +STATUS$/
    )
    assert.match(table.stdout, new RegExp(`\\ntotals +${head} +${head} +0 +0 +cli-test-consumer.* ok\\n`))

    const reset = await cli("subscriptions", "reset", "totals", "--watch")
    assert.strictEqual(reset.code, 0, reset.stderr)
    const lines = reset.stdout.trimEnd().split("\n")
    assert.match(lines[0]!, /^Reset of totals to the start requested \(#\d+\); the consumer holding it applies it\.$/)
    assert.strictEqual(lines.at(-1), `totals has caught up: checkpoint ${head}, head ${head}.`)
    assert.isTrue(
      lines.some((line) => /^\[[#.]{30}\] +\d+% {2}checkpoint \d+\/\d+ {2}lag \d+/.test(line)),
      reset.stdout
    )
    // when the watch ended, the consumer had reset its read model once and handled every event again
    assert.deepStrictEqual(
      await app.runPromise(Effect.all([Ref.get(totals.resets), Ref.get(totals.handled)])),
      [1, 2 * head]
    )
    await app.runPromise(Fiber.interrupt(fiber))
  })

  it.runIf(script !== undefined)("reset --watch on a terminal redraws one progress bar in place", async () => {
    const head = await app.runPromise(appendAll("tty", 20, 5))
    const replays = await app.runPromise(counting("replays", { resettable: true }))
    const fiber = consume(replays.projection, "tty")
    await awaitCheckpoint("replays", head)
    const reset = await runOnTerminal(["subscriptions", "reset", "replays", "--watch", "--schema", schema], {
      DATABASE_URL: url
    })
    assert.strictEqual(reset.code, 0, reset.stdout)
    const redraws = reset.stdout.split("\r\x1b[K").slice(1)
    assert.isAbove(redraws.length, 1, JSON.stringify(reset.stdout))
    // every redraw but the last ends without a newline; the last is the full bar, then the summary line
    for (const redraw of redraws.slice(0, -1)) assert.notInclude(redraw, "\n")
    assert.match(redraws.at(-1)!, /^\[#{30}\] 100% {2}checkpoint (\d+)\/\1 {2}lag 0.*\r?\nreplays has caught up/)
    await app.runPromise(Fiber.interrupt(fiber))
  })

  it("a consumer without onReset refuses: one line, exit 1; --allow-duplicates resets it anyway", async () => {
    const head = await app.runPromise(appendAll("plain", 5, 4))
    const plain = await app.runPromise(counting("plain", { resettable: false }))
    const fiber = consume(plain.projection, "plain")
    await awaitCheckpoint("plain", head)

    const refused = await cli("subscriptions", "reset", "plain", "--watch")
    assert.strictEqual(refused.code, 1, refused.stdout)
    assert.strictEqual(refused.stderr.trimEnd().split("\n").length, 1, refused.stderr)
    assert.include(refused.stderr, "eventsourcing: the consumer of plain refused the reset")
    assert.include(refused.stderr, "use --allow-duplicates")

    const forced = await cli("subscriptions", "reset", "plain", "--watch", "--allow-duplicates")
    assert.strictEqual(forced.code, 0, forced.stderr)
    assert.strictEqual(await app.runPromise(Ref.get(plain.handled)), 2 * 20)
    await app.runPromise(Fiber.interrupt(fiber))
  })

  it("reset without a running consumer is recorded as pending", async () => {
    const requested = await cli("subscriptions", "reset", "ghost", "--to", "5", "--json")
    assert.strictEqual(requested.code, 0, requested.stderr)
    assert.deepInclude(jsonLines(requested.stdout)[0], { name: "ghost" })
    assert.deepInclude(jsonLines(requested.stdout)[0].requested, { position: 5, allowDuplicates: false })
    const status = await cli("subscriptions", "status", "ghost", "--json")
    const [row] = jsonLines(status.stdout)
    assert.strictEqual(row.holder, null)
    assert.deepInclude(row.resetRequest, { position: 5, allowDuplicates: false })
  })
})

class Refused extends Data.TaggedError("Refused")<{ readonly position: number }> {}

describe("parked", () => {
  it("list shows what a subscription parked; skip keeps it out; retry re-delivers it; unknown ids exit 1", async () => {
    const poisoned = await app.runPromise(Ref.make(true))
    const delivered = await app.runPromise(Ref.make<ReadonlyArray<number>>([]))
    const mailer = Projection.make({
      name: "mailer",
      handle: (event) =>
        Effect.gen(function*() {
          if (event.type === "Poison" && (yield* Ref.get(poisoned))) {
            return yield* new Refused({ position: event.position })
          }
          yield* Ref.update(delivered, (all) => [...all, event.position])
        })
    })
    await app.runPromise(appendAll("mail", 2, 1))
    await app.runPromise(appendAll("mail", 2, 1, "Poison"))
    const head = await app.runPromise(appendAll("mail", 2, 1))
    const fiber = app.runFork(
      Subscription.run(mailer, {
        filter: { categories: ["mail"] },
        onFailure: "park",
        retry: Schedule.recurs(1),
        controlInterval: "200 millis"
      })
    )
    await awaitCheckpoint("mailer", head)

    const listed = await cli("parked", "list", "--subscription", "mailer", "--json")
    assert.strictEqual(listed.code, 0, listed.stderr)
    const parked = jsonLines(listed.stdout)
    assert.deepStrictEqual(parked.map((p) => [p.type, p.state, p.attempts]), [["Poison", "parked", 2], [
      "Poison",
      "parked",
      2
    ]])
    assert.include(parked[0].error, "Refused")
    const table = await cli("parked", "list")
    assert.match(
      table.stdout.split("\n")[0]!,
      /^ID {2}SUBSCRIPTION {2}POSITION {2}EVENT +STATE +ATTEMPTS {2}PARKED AT +ERROR$/
    )
    const status = await cli("subscriptions", "status", "mailer", "--json")
    assert.strictEqual(jsonLines(status.stdout)[0].parked, 2)

    const [first, second] = parked
    const skipped = await cli("parked", "skip", String(first.id))
    assert.deepStrictEqual([skipped.code, skipped.stdout], [
      0,
      `Parked event ${first.id}: skipped; it is never delivered again (and stays listed).\n`
    ])
    await app.runPromise(Ref.set(poisoned, false))
    const retried = await cli("parked", "retry", String(second.id))
    assert.strictEqual(retried.code, 0, retried.stderr)
    await app.runPromise(
      Effect.flatMap(ParkedEvents.ParkedEvents, (store) => store.list({ subscription: "mailer" })).pipe(
        Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (all) => all.length === 1 }),
        Effect.timeout("20 seconds")
      )
    )
    const positions = await app.runPromise(Ref.get(delivered))
    assert.include(positions, second.position)
    assert.notInclude(positions, first.position)
    const left = jsonLines((await cli("parked", "list", "--json")).stdout)
    assert.deepStrictEqual(left.map((p) => [p.id, p.state]), [[first.id, "skipped"]])

    const unknown = await cli("parked", "retry", "999999")
    assert.deepStrictEqual([unknown.code, unknown.stdout, unknown.stderr], [
      1,
      "",
      "eventsourcing: No parked event 999999\n"
    ])
    await app.runPromise(Fiber.interrupt(fiber))
  })
})
