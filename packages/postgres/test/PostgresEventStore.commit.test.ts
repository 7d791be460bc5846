/**
 * The connection is cut at the worst moment by a TCP proxy between the pool and the server: just before the server
 * receives a statement (it never runs: the transaction is rolled back), or just after the server answered it (it
 * ran and committed, but the client never hears so).
 */
import { EventStore, ExpectedVersion, Projection, StreamId } from "@effect-eventsourcing/core"
import { PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Either, Fiber, Layer, Redacted, Stream } from "effect"
import type { Scope } from "effect"
import * as Net from "node:net"
import { freshDatabase } from "./utils.js"

const Database = freshDatabase("commit_outcome")

interface Proxy {
  readonly port: number
  /** cut the next connection that sends `trigger`, before forwarding it or after the server's answer */
  readonly arm: (trigger: string, when: "before" | "after") => void
  readonly fired: () => boolean
}

const makeProxy = (target: URL): Effect.Effect<Proxy, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ readonly proxy: Proxy; readonly server: Net.Server; readonly sockets: Set<Net.Socket> }>(
      (resume) => {
        let armed: { readonly trigger: string; readonly when: "before" | "after" } | undefined
        let fired = false
        const sockets = new Set<Net.Socket>()
        const server = Net.createServer((client) => {
          const upstream = Net.connect(Number(target.port || 5432), target.hostname)
          sockets.add(client)
          sockets.add(upstream)
          let cutOnAnswer = false
          const cut = () => {
            client.destroy()
            upstream.destroy()
          }
          client.on("data", (chunk: Buffer) => {
            if (armed !== undefined && chunk.includes(armed.trigger)) {
              const when = armed.when
              armed = undefined
              fired = true
              if (when === "before") return cut()
              cutOnAnswer = true
            }
            upstream.write(chunk)
          })
          upstream.on("data", (chunk: Buffer) => {
            if (cutOnAnswer) return cut()
            client.write(chunk)
          })
          client.on("error", cut)
          upstream.on("error", cut)
          client.on("close", cut)
          upstream.on("close", cut)
        })
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          const port = typeof address === "object" && address !== null ? address.port : 0
          resume(Effect.succeed({
            server,
            sockets,
            proxy: {
              port,
              arm: (trigger, when) => {
                armed = { trigger, when }
                fired = false
              },
              fired: () => fired
            }
          }))
        })
      }
    ),
    ({ server, sockets }) =>
      Effect.async<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      })
  ).pipe(Effect.map(({ proxy }) => proxy))

/** A store whose pool goes through the proxy. */
const storeThrough = (proxy: Proxy, options: PostgresEventStore.Options) =>
  Effect.gen(function*() {
    const url = new URL(yield* Database.url)
    url.hostname = "127.0.0.1"
    url.port = String(proxy.port)
    const context = yield* Layer.build(
      PostgresEventStore.layer(options).pipe(
        Layer.provide(PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 4 }))
      )
    )
    return Context.get(context, EventStore.EventStore)
  })

let counter = 0
const stream = () => StreamId.unsafeMake("acc", `commit${++counter}`)
const batch = (): ReadonlyArray<EventStore.EventData> => [
  { id: globalThis.crypto.randomUUID(), type: "Deposited", data: { amount: 1 } },
  { id: globalThis.crypto.randomUUID(), type: "Deposited", data: { amount: 2 } }
]
// an inline projection makes the append a transaction of its own, so COMMIT is a statement of its own
const noop = Projection.make({ name: "noop", handle: () => Effect.void })

const count = (store: EventStore.EventStore.Service, id: StreamId.StreamId) =>
  Effect.map(Stream.runCollect(store.read(id)), Chunk.size)

layer(Database.layer, { excludeTestServices: true, timeout: "60 seconds" })(
  "PostgresEventStore commit outcome",
  (it) => {
    it.scoped("connection lost after the server committed: the append reports the committed result", () =>
      Effect.gen(function*() {
        const proxy = yield* makeProxy(new URL(yield* Database.url))
        const store = yield* storeThrough(proxy, { inline: [noop] })
        const id = stream()
        const events = batch()
        proxy.arm("COMMIT", "after")
        const result = yield* store.append(id, events, ExpectedVersion.NoStream)
        assert.isTrue(proxy.fired())
        assert.strictEqual(result.version, 2)
        assert.isTrue(result.position > 0)
        // a retry with the same ids is recognised: no double write
        assert.deepStrictEqual(yield* store.append(id, events, ExpectedVersion.NoStream), result)
        assert.strictEqual(yield* count(store, id), 2)
      }))

    it.scoped("connection lost before COMMIT reached the server: CommitOutcomeUnknown, and a retry writes once", () =>
      Effect.gen(function*() {
        const proxy = yield* makeProxy(new URL(yield* Database.url))
        const store = yield* storeThrough(proxy, { inline: [noop] })
        const id = stream()
        const events = batch()
        proxy.arm("COMMIT", "before")
        const error = yield* Effect.flip(store.append(id, events, ExpectedVersion.NoStream))
        assert.isTrue(proxy.fired())
        assert(error instanceof EventStore.CommitOutcomeUnknown, `unexpected ${error._tag}`)
        assert.strictEqual(error.method, "append")
        const result = yield* store.append(id, events, ExpectedVersion.NoStream)
        assert.strictEqual(result.version, 2)
        assert.strictEqual(yield* count(store, id), 2)
      }))

    it.scoped("connection lost after a one-statement append committed: the committed result", () =>
      Effect.gen(function*() {
        const proxy = yield* makeProxy(new URL(yield* Database.url))
        const store = yield* storeThrough(proxy, {})
        const id = stream()
        const events = batch()
        proxy.arm(".append_one(", "after")
        const result = yield* store.append(id, events, ExpectedVersion.NoStream)
        assert.isTrue(proxy.fired())
        assert.strictEqual(result.version, 2)
        assert.strictEqual(yield* count(store, id), 2)
      }))

    it.scoped("connection lost after a group commit committed: each request resolves by its own event ids", () =>
      Effect.gen(function*() {
        const proxy = yield* makeProxy(new URL(yield* Database.url))
        const store = yield* storeThrough(proxy, {})
        const existing = stream()
        yield* store.append(existing, batch(), ExpectedVersion.NoStream)
        // the two statements that may be in flight wait on the positions lock (held here, not through the proxy):
        // the appends below queue, and go together in one append_batch
        const sql = yield* SqlClient.SqlClient
        const holder = yield* sql.reserve
        const key = "hashtextextended('effect-eventsourcing:event_store:positions', 0)"
        yield* holder.executeUnprepared(`select pg_advisory_lock(${key})`, [], undefined)
        const blockers = yield* Effect.forEach(
          [1, 2],
          () => Effect.fork(store.append(stream(), batch(), ExpectedVersion.NoStream))
        )
        yield* Effect.sleep("300 millis")
        proxy.arm(".append_batch(", "after")
        const ids = [stream(), stream(), existing, stream()]
        const fibers = yield* Effect.forEach(
          ids,
          (id) => Effect.fork(Effect.either(store.append(id, batch(), ExpectedVersion.NoStream)))
        )
        yield* Effect.sleep("300 millis")
        yield* holder.executeUnprepared(`select pg_advisory_unlock(${key})`, [], undefined)
        for (const blocker of blockers) yield* Fiber.join(blocker)
        const outcomes = yield* Effect.forEach(fibers, Fiber.join)
        assert.isTrue(proxy.fired())
        for (const [i, outcome] of outcomes.entries()) {
          if (ids[i] === existing) {
            // its events were not committed (the stream exists): the answer is lost, and so is the outcome
            assert(Either.isLeft(outcome) && outcome.left instanceof EventStore.CommitOutcomeUnknown)
          } else {
            assert(Either.isRight(outcome), `request ${i}: ${JSON.stringify(outcome)}`)
            assert.strictEqual(outcome.right.version, 2)
            assert.strictEqual(yield* count(store, ids[i]!), 2)
          }
        }
        assert.strictEqual(yield* count(store, existing), 2)
      }))
  }
)
