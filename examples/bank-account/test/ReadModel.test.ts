import { CommandHandler, Repository } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore } from "@effect-eventsourcing/postgres"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, layer } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schedule } from "effect"
import { inject } from "vitest"
import { Account, Deposit, OpenAccount, Withdraw } from "../src/Account.js"
import * as ReadModel from "../src/ReadModel.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl?: string
  }
}

/**
 * The PostgreSQL server: the one the postgres package's globalSetup provides (DATABASE_URL or an embedded server),
 * or DATABASE_URL when this project runs without that globalSetup.
 */
const serverUrl = inject("databaseUrl") ?? process.env.DATABASE_URL

/** A fresh database for this file. */
const Database = (server: string) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const name = `bank_read_model_${process.pid}_${Date.now().toString(36)}`
    yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(`create database "${name}"`)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(server), maxConnections: 1 }))
    )
    const url = new URL(server)
    url.pathname = `/${name}`
    return PgClient.layer({ url: Redacted.make(url.toString()), maxConnections: 10 })
  }))

const Stores = (server: string) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer()).pipe(
    Layer.provideMerge(Database(server)),
    Layer.orDie
  )

const handle = CommandHandler.make(Account, { retry: Schedule.recurs(50) })
const accounts = Repository.make(Account)

describe.runIf(serverUrl !== undefined)("account balances read model on PostgreSQL", () => {
  layer(Stores(serverUrl!), { excludeTestServices: true, timeout: "60 seconds" })(
    "account balances read model",
    (it) => {
      it.scoped("matches the event log exactly after concurrent commands", () =>
        Effect.gen(function*() {
          const readModel = yield* ReadModel.start
          const ids = Array.from({ length: 6 }, (_, i) => `acc${i}`)
          yield* Effect.forEach(ids, (id) => handle(id, new OpenAccount({ owner: `owner ${id}` })), {
            concurrency: "unbounded"
          })
          // many concurrent commands on few accounts: conflicts are retried, some withdrawals are refused
          yield* Effect.forEach(
            Array.from({ length: 90 }, (_, i) => i),
            (i) => {
              const id = ids[i % ids.length]!
              const command = i % 3 === 2 ? new Withdraw({ amount: 7 }) : new Deposit({ amount: 1 + (i % 5) })
              return Effect.either(handle(id, command))
            },
            { concurrency: 12 }
          )
          yield* ReadModel.awaitCaughtUp(readModel)

          const rows = yield* ReadModel.balances
          assert.strictEqual(rows.length, ids.length)
          for (const id of ids) {
            const { state, version } = yield* accounts.load(id)
            const row = yield* ReadModel.balanceOf(id)
            assert.deepStrictEqual(
              row,
              Option.some({ accountId: id, owner: state.owner, status: "open", balance: state.balance, version })
            )
          }
          const total = rows.reduce((sum, row) => sum + row.balance, 0)
          assert.isTrue(total > 0)
        }))
    }
  )
})
