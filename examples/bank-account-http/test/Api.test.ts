/**
 * The real server on a loopback port (port 0), driven by the client derived from `BankApi`, on the in-memory store
 * and on PostgreSQL (a fresh database from `@effect-eventsourcing/postgres/testing`).
 */
import {
  CheckpointStore,
  EventStore,
  ExpectedVersion,
  HttpConventions,
  InMemoryEventStore,
  View
} from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresViewStore } from "@effect-eventsourcing/postgres"
import * as PostgresTesting from "@effect-eventsourcing/postgres/testing"
import { FetchHttpClient, HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Either, Layer, Logger, LogLevel, Option, Schedule } from "effect"
import { InsufficientFunds } from "../src/Account.js"
import { BankApi } from "../src/Api.js"
import { baseUrl, memory, server, type Stores } from "../src/server.js"

const client = Effect.flatMap(baseUrl, (url) => HttpApiClient.make(BankApi, { baseUrl: url }))

/** A raw request (what a client that does not use the derived one may send). */
const raw = (
  method: "GET" | "POST",
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {}
) =>
  Effect.gen(function*() {
    const url = yield* baseUrl
    const http = yield* HttpClient.HttpClient
    let request = HttpClientRequest.make(method)(`${url}${path}`).pipe(
      HttpClientRequest.setHeaders(options.headers ?? {})
    )
    if (options.body !== undefined) request = yield* HttpClientRequest.bodyJson(request, options.body)
    const response = yield* http.execute(request)
    return { status: response.status, headers: response.headers, body: yield* response.json }
  })

/** The balances view catches up asynchronously: poll until `check` holds. */
const eventually = <A, E, R>(self: Effect.Effect<A, E, R>, check: (a: A) => boolean) =>
  Effect.flatMap(self, (a) => check(a) ? Effect.succeed(a) : Effect.fail("not yet" as const)).pipe(
    Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("20 seconds")))
  )

const Server = <E>(stores: Layer.Layer<Stores, E>) =>
  server({ port: 0, retry: Schedule.recurs(3) }).pipe(
    Layer.provide(stores),
    Layer.merge(FetchHttpClient.layer),
    // the request log of the server, and the warnings of the conflict tests, would flood the output
    Layer.provide(Logger.minimumLogLevel(LogLevel.Error))
  )

const suite = <E>(name: string, stores: Layer.Layer<Stores, E>) =>
  layer(Server(stores), { excludeTestServices: true, timeout: "60 seconds" })(
    `bank account HTTP API on ${name}`,
    (it) => {
      it.effect("commands answer the state with an ETag of the version; GET /accounts/:id reads it back", () =>
        Effect.gen(function*() {
          const api = yield* client
          const [opened, response] = yield* api.accounts.openAccount({
            path: { id: "ada" },
            payload: { owner: "Ada" },
            headers: {},
            withResponse: true
          })
          assert.deepStrictEqual({ ...opened }, { id: "ada", status: "open", owner: "Ada", balance: 0, version: 1 })
          assert.strictEqual(response.headers["etag"], "\"1\"")
          yield* api.accounts.deposit({ path: { id: "ada" }, payload: { amount: 100 }, headers: {} })
          const [account, got] = yield* api.accounts.get({ path: { id: "ada" }, withResponse: true })
          assert.deepStrictEqual({ ...account }, { id: "ada", status: "open", owner: "Ada", balance: 100, version: 2 })
          assert.strictEqual(got.headers["etag"], HttpConventions.etag(2))
        }))

      it.effect("If-Match is ExpectedVersion.Exact: the current version succeeds, a stale one is 412", () =>
        Effect.gen(function*() {
          const api = yield* client
          yield* api.accounts.openAccount({ path: { id: "bob" }, payload: { owner: "Bob" }, headers: {} })
          const deposited = yield* api.accounts.deposit({
            path: { id: "bob" },
            payload: { amount: 50 },
            headers: { "if-match": "\"1\"" }
          })
          assert.strictEqual(deposited.version, 2)
          const stale = yield* Effect.flip(
            api.accounts.withdraw({ path: { id: "bob" }, payload: { amount: 10 }, headers: { "if-match": "\"1\"" } })
          )
          assert.instanceOf(stale, HttpConventions.PreconditionFailed)
          assert.strictEqual((stale as HttpConventions.PreconditionFailed).actual, 2)
          // create-only: If-None-Match: * on an existing account
          const exists = yield* Effect.flip(
            api.accounts.openAccount({
              path: { id: "bob" },
              payload: { owner: "Bob" },
              headers: { "if-none-match": "*" }
            })
          )
          assert.instanceOf(exists, HttpConventions.PreconditionFailed)
          // a weak or malformed tag never matches
          const weak = yield* raw("POST", "/accounts/bob/commands/deposit", {
            body: { amount: 1 },
            headers: { "if-match": "W/\"2\"" }
          })
          assert.strictEqual(weak.status, 412)
          assert.strictEqual((yield* api.accounts.get({ path: { id: "bob" } })).balance, 50)
        }))

      it.effect("domain errors are 422 problem documents carrying the typed error; unknown accounts 404", () =>
        Effect.gen(function*() {
          const api = yield* client
          yield* api.accounts.openAccount({ path: { id: "cy" }, payload: { owner: "Cy" }, headers: {} })
          const refused = yield* Effect.flip(
            api.accounts.withdraw({ path: { id: "cy" }, payload: { amount: 1000 }, headers: {} })
          )
          assert.deepStrictEqual(refused, new InsufficientFunds({ balance: 0, requested: 1000 }))
          const response = yield* raw("POST", "/accounts/cy/commands/withdraw", { body: { amount: 1000 } })
          assert.strictEqual(response.status, 422)
          assert.strictEqual(response.headers["content-type"], "application/problem+json")
          assert.deepStrictEqual(response.body, {
            type: "about:blank",
            title: "Unprocessable Content",
            status: 422,
            detail: "Insufficient funds: balance 0, requested 1000",
            error: { _tag: "InsufficientFunds", balance: 0, requested: 1000 }
          })
          const missing = yield* Effect.flip(api.accounts.get({ path: { id: "nobody" } }))
          assert.strictEqual(missing._tag, "AggregateNotFound")
          assert.strictEqual((yield* raw("GET", "/accounts/nobody")).status, 404)
        }))

      it.effect("a body that fails the command Schema is 400; the OpenAPI document is served", () =>
        Effect.gen(function*() {
          for (const body of [{ amount: -5 }, { amount: 1.5 }, { amount: "ten" }, {}]) {
            const response = yield* raw("POST", "/accounts/cy/commands/deposit", { body })
            assert.strictEqual(response.status, 400, JSON.stringify(body))
            assert.strictEqual((response.body as { _tag: string })._tag, "HttpApiDecodeError")
          }
          const openapi = yield* raw("GET", "/openapi.json")
          assert.strictEqual(openapi.status, 200)
          const paths = Object.keys((openapi.body as { paths: Record<string, unknown> }).paths).sort()
          assert.deepStrictEqual(paths, [
            "/accounts/{id}",
            "/accounts/{id}/commands/close-account",
            "/accounts/{id}/commands/deposit",
            "/accounts/{id}/commands/open-account",
            "/accounts/{id}/commands/withdraw",
            "/balances",
            "/balances/{id}"
          ])
        }))

      it.effect("concurrent requests to one account: each succeeds or gets 409 / 412; the balance adds up", () =>
        Effect.gen(function*() {
          const api = yield* client
          const { version } = yield* api.accounts.openAccount({
            path: { id: "hot" },
            payload: { owner: "Hot" },
            headers: {}
          })
          // unconditional deposits: retried on conflicts, 409 once the retries are exhausted
          const deposits = yield* Effect.forEach(
            Array.from({ length: 24 }, (_, i) => 1 + (i % 5)),
            (amount) => Effect.either(api.accounts.deposit({ path: { id: "hot" }, payload: { amount }, headers: {} })),
            { concurrency: 12 }
          )
          let expected = 0
          for (const [i, result] of deposits.entries()) {
            if (Either.isRight(result)) expected += 1 + (i % 5)
            else assert.strictEqual(result.left._tag, "ConcurrencyConflict")
          }
          // conditional withdrawals all made at the same version: exactly one wins, the others get 412
          const current = yield* api.accounts.get({ path: { id: "hot" } })
          assert.strictEqual(current.balance, expected)
          assert.isTrue(current.version > version)
          const withdrawals = yield* Effect.forEach(
            Array.from({ length: 8 }, () => 1),
            (amount) =>
              Effect.either(api.accounts.withdraw({
                path: { id: "hot" },
                payload: { amount },
                headers: { "if-match": HttpConventions.etag(current.version) }
              })),
            { concurrency: "unbounded" }
          )
          const won = withdrawals.filter(Either.isRight)
          assert.strictEqual(won.length, 1)
          for (const result of withdrawals.filter(Either.isLeft)) {
            assert.instanceOf(result.left, HttpConventions.PreconditionFailed)
          }
          const final = yield* api.accounts.get({ path: { id: "hot" } })
          assert.strictEqual(final.balance, expected - 1)
          assert.strictEqual(final.version, current.version + 1)
          // the balances view catches up with the same number
          const balance = yield* eventually(
            api.balances.get({ path: { id: "hot" } }).pipe(Effect.option),
            Option.exists((b) => b.balance === final.balance)
          )
          assert.deepStrictEqual(
            Option.map(balance, (b) => [b.owner, b.status, b.balance]),
            Option.some(["Hot", "open", expected - 1])
          )
          const all = yield* api.balances.list()
          assert.isTrue(all.some((b) => b.id === "hot" && b.balance === expected - 1))
        }))
    }
  )

suite("the in-memory store", memory)

const Database = PostgresTesting.freshDatabase("bank_http")
suite(
  "PostgreSQL",
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresViewStore.layer()).pipe(
    Layer.provide(Database.pool({ maxConnections: 12 }))
  )
)

describe("conflicts", () => {
  /** An event store whose appends to account "busy" always conflict (another writer always wins). */
  const AlwaysConflicting = Layer.effect(
    EventStore.EventStore,
    Effect.map(InMemoryEventStore.make(), (store) =>
      EventStore.make({
        ...store,
        append: (streamId, events, expected) =>
          streamId === "account-busy"
            ? Effect.fail(new EventStore.ConcurrencyConflict({ streamId, expected, actual: 99 }))
            : store.append(streamId, events, expected)
      }))
  )
  const stores = Layer.mergeAll(AlwaysConflicting, CheckpointStore.layerMemory, View.layerMemory)

  layer(Server(stores), { excludeTestServices: true, timeout: "60 seconds" })("exhausted retries", (it) => {
    it.effect("a ConcurrencyConflict the handler's retries cannot resolve is 409 with the conflict", () =>
      Effect.gen(function*() {
        const api = yield* client
        const conflict = yield* Effect.flip(
          api.accounts.openAccount({ path: { id: "busy" }, payload: { owner: "B" }, headers: {} })
        )
        assert.instanceOf(conflict, EventStore.ConcurrencyConflict)
        assert.deepStrictEqual((conflict as EventStore.ConcurrencyConflict).expected, ExpectedVersion.Exact(0))
        const response = yield* raw("POST", "/accounts/busy/commands/open-account", { body: { owner: "B" } })
        assert.strictEqual(response.status, 409)
        assert.strictEqual((response.body as { title: string }).title, "Conflict")
      }))
  })
})
