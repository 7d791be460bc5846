/**
 * The classification of failed statements (`internal/sqlErrors.ts`): by the code the driver gives (Node's network
 * error codes, the server's SQLSTATE), by pg's message only for pg's errors without a code. Built errors first (the
 * shapes pg and Node produce), then the real thing: a session terminated by the server, and a refused connection.
 */
import { SqlClient, SqlError } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Redacted } from "effect"
import * as Net from "node:net"
import pg from "pg"
import { connectionFailure, isConnectionLoss, isUnansweredSqlError, sqlState } from "../src/internal/sqlErrors.js"
import { freshDatabase } from "./utils.js"

/** An error answered by the server, as pg builds it. */
const serverError = (code: string, message = "server error") =>
  Object.assign(new pg.DatabaseError(message, 0, "error"), { code, severity: "ERROR" })

/** A failed network call, as Node builds it. */
const systemError = (code: string, syscall = "read") =>
  Object.assign(new Error(`${syscall} ${code}`), { errno: -1, code, syscall })

const failed = (cause: unknown, message = "Failed to execute statement") => new SqlError.SqlError({ cause, message })

describe("connectionFailure", () => {
  it("classifies the server's SQLSTATE: class 08 and 57P01-57P03 only", () => {
    const cases: ReadonlyArray<readonly [string, "unreachable" | "lost" | undefined]> = [
      ["57P01", "lost"],
      ["57P02", "lost"],
      ["57P03", "unreachable"],
      ["08000", "lost"],
      ["08003", "lost"],
      ["08006", "lost"],
      ["08P01", "lost"],
      ["08001", "unreachable"],
      ["08004", "unreachable"],
      ["23505", undefined],
      ["40001", undefined],
      ["57014", undefined],
      ["EV409", undefined],
      ["42P01", undefined]
    ]
    for (const [code, expected] of cases) {
      assert.strictEqual(connectionFailure(failed(serverError(code))), expected, code)
    }
  })

  it("classifies Node's network errors by their code", () => {
    const cases: ReadonlyArray<readonly [string, string, "unreachable" | "lost"]> = [
      ["ECONNRESET", "read", "lost"],
      ["EPIPE", "write", "lost"],
      ["ETIMEDOUT", "read", "lost"],
      ["ECONNABORTED", "read", "lost"],
      ["EHOSTUNREACH", "write", "lost"],
      ["ECONNREFUSED", "connect", "unreachable"],
      ["ENOTFOUND", "getaddrinfo", "unreachable"],
      ["EAI_AGAIN", "getaddrinfo", "unreachable"]
    ]
    for (const [code, syscall, expected] of cases) {
      assert.strictEqual(connectionFailure(failed(systemError(code, syscall), "Connection error")), expected, code)
    }
    // a connection attempt to several addresses fails with an AggregateError that has the code only
    const aggregate = Object.assign(new AggregateError([systemError("ECONNREFUSED", "connect")]), {
      code: "ECONNREFUSED"
    })
    assert.strictEqual(connectionFailure(failed(aggregate, "Failed to acquire connection")), "unreachable")
  })

  it("falls back to pg's messages only for pg's errors without a code", () => {
    const cases: ReadonlyArray<readonly [string, "unreachable" | "lost" | undefined]> = [
      ["Connection terminated unexpectedly", "lost"],
      ["Connection terminated", "lost"],
      ["Client has encountered a connection error and is not queryable", "lost"],
      ["Client was closed and is not queryable", "lost"],
      ["Query read timeout", "lost"],
      ["Connection terminated due to connection timeout", "unreachable"],
      ["timeout exceeded when trying to connect", "unreachable"],
      ["boom", undefined],
      ["", undefined]
    ]
    for (const [message, expected] of cases) {
      assert.strictEqual(connectionFailure(failed(new Error(message))), expected, message)
    }
    // a code decides, whatever the message says
    assert.strictEqual(connectionFailure(failed(serverError("23505", "Connection terminated"))), undefined)
    assert.strictEqual(connectionFailure(failed(serverError("57P01", "boom"))), "lost")
  })

  it("does not go by the SqlError's own message", () => {
    // what the message-based classifier took for a lost connection: any failure without a SQLSTATE
    assert.isFalse(isConnectionLoss(failed(new TypeError("cannot serialize"))))
    assert.isFalse(isConnectionLoss(failed(new Error("boom"), "Connection error")))
    assert.isFalse(isConnectionLoss(failed(undefined)))
    assert.isFalse(isConnectionLoss(failed("a string")))
    assert.isTrue(isConnectionLoss(failed(systemError("ECONNRESET"), "Failed to acquire connection")))
  })
})

describe("sqlState", () => {
  it("is the server's SQLSTATE, never a network error's code", () => {
    assert.strictEqual(sqlState(failed(serverError("23505"))), "23505")
    assert.strictEqual(sqlState(failed(serverError("EV409"))), "EV409")
    // EPIPE has the shape of a SQLSTATE (five characters): it is not one
    assert.isUndefined(sqlState(failed(systemError("EPIPE", "write"))))
    assert.isUndefined(sqlState(failed(Object.assign(new Error("x"), { code: "EPIPE" }))))
    assert.isUndefined(sqlState(failed(new Error("Connection terminated unexpectedly"))))
    // so a COMMIT that failed on a broken pipe has an unknown outcome
    assert.isTrue(isUnansweredSqlError(failed(systemError("EPIPE", "write"))))
    assert.isFalse(isUnansweredSqlError(failed(serverError("40001"))))
    assert.isFalse(isUnansweredSqlError(new Error("not a SqlError")))
  })
})

const Database = freshDatabase("sql_errors")

const closedPort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

layer(Database.layer, { excludeTestServices: true })("connectionFailure on a real server", (it) => {
  it.effect("a session terminated by the server is lost (57P01)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const error = yield* Effect.scoped(Effect.gen(function*() {
        const conn = yield* sql.reserve
        const [row] = yield* conn.execute("select pg_backend_pid() as pid", [], undefined)
        const pid = (row as { readonly pid: number }).pid
        const sleeping = yield* Effect.fork(conn.execute("select pg_sleep(30)", [], undefined))
        // wait until the statement runs, then end the session from another connection
        yield* sql`select 1 from pg_stat_activity where pid = ${pid} and state = 'active'`.pipe(
          Effect.filterOrFail((rows) => rows.length === 1),
          Effect.retry({ times: 100 })
        )
        yield* sql`select pg_terminate_backend(${pid})`
        const exit = yield* Fiber.await(sleeping)
        assert.isTrue(Exit.isFailure(exit))
        return yield* Effect.flip(exit)
      }))
      assert.strictEqual(error._tag, "SqlError")
      assert.strictEqual(sqlState(error), "57P01")
      assert.strictEqual(connectionFailure(error), "lost")
    }))

  it.effect("a refused connection is unreachable", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const error = yield* Layer.build(PgClient.layer({
        url: Redacted.make(`postgres://postgres@127.0.0.1:${port}/postgres`),
        maxConnections: 1
      })).pipe(Effect.scoped, Effect.flip)
      assert.strictEqual(error._tag, "SqlError")
      assert.strictEqual(connectionFailure(error as SqlError.SqlError), "unreachable")
    }))
})
