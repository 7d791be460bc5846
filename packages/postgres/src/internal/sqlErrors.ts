/**
 * What a failed statement tells: the server's SQLSTATE, constraint and detail, and whether the server answered at
 * all.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type { SqlError } from "@effect/sql/SqlError"

const codeOf = (cause: object): string | undefined =>
  "code" in cause && typeof cause.code === "string" ? cause.code : undefined

/**
 * A failure of the operating system's network calls (`ECONNRESET`, `EPIPE`, …), not an answer of the server: Node
 * gives those an `errno` and a `syscall`, except the `AggregateError` of a connection attempt to several addresses,
 * which only has the `code`.
 */
const isSystemError = (cause: object): boolean =>
  ("errno" in cause && typeof cause.errno === "number") || ("syscall" in cause && typeof cause.syscall === "string") ||
  systemCodes.has(codeOf(cause) ?? "")

const systemCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "ENOTFOUND",
  "EAI_AGAIN"
])

/** The SQLSTATE of the server's answer, `undefined` when the failure carries none (the server did not answer). */
export const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  if (typeof cause !== "object" || cause === null) return undefined
  const code = codeOf(cause)
  return code !== undefined && /^[0-9A-Z]{5}$/.test(code) && !isSystemError(cause) ? code : undefined
}

/** The constraint named by the server's answer (a unique violation names its key). */
export const constraintOf = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "constraint" in cause && typeof cause.constraint === "string"
    ? cause.constraint
    : undefined
}

/** The detail of the server's answer (`""` when none). */
export const detailOf = (error: SqlError): string => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "detail" in cause && typeof cause.detail === "string"
    ? cause.detail
    : ""
}

/** A unique violation of `constraint`. */
export const isUniqueViolation = (error: SqlError, constraint: string): boolean =>
  sqlState(error) === "23505" && constraintOf(error) === constraint

/** Codes of a connection that was never made: nothing was sent. */
const unreachableCodes = new Set([
  // the operating system: nobody listens at the address, or the name does not resolve
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  // SQLSTATE: the server is starting up or shutting down; unable to establish; rejected the connection
  "57P03",
  "08001",
  "08004"
])

/** Codes of a connection that broke: a statement in flight may have run, and committed. */
const lostCodes = new Set([
  // the operating system
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  // SQLSTATE: the server terminated the session (administrator command, crash of another backend)
  "57P01",
  "57P02"
])

/**
 * How a statement failed for want of a connection:
 *
 * - `"unreachable"`: no connection could be made; nothing was sent;
 * - `"lost"`: the connection broke (or the answer never came) while the statement ran: it may have run, and
 *   committed;
 * - `undefined`: any other failure (the server's answer to the statement, a client-side error).
 *
 * Classified by the error's code where the driver gives one: Node's network error codes, and the SQLSTATE of the
 * server's last answer (class 08, connection exception; 57P01-57P03, the server ending sessions). pg's own errors
 * about its connection carry no code, so for those alone the message is matched (the fallback below).
 */
export const connectionFailure = (error: SqlError): "unreachable" | "lost" | undefined => {
  const cause: unknown = error.cause
  if (typeof cause !== "object" || cause === null) return undefined
  const code = codeOf(cause)
  if (code !== undefined) {
    if (unreachableCodes.has(code)) return "unreachable"
    if (lostCodes.has(code) || /^08[0-9A-Z]{3}$/.test(code)) return "lost"
    return undefined
  }
  // fallback: pg's errors without a code (pg/lib/client.js, pg-pool/index.js)
  const message = "message" in cause && typeof cause.message === "string" ? cause.message : ""
  switch (message) {
    case "Connection terminated due to connection timeout":
    case "timeout exceeded when trying to connect":
      return "unreachable"
    case "Connection terminated":
    case "Connection terminated unexpectedly":
    case "Client has encountered a connection error and is not queryable":
    case "Client was closed and is not queryable":
    case "Query read timeout":
      return "lost"
    default:
      return undefined
  }
}

/** A statement that failed for want of a connection (see `connectionFailure`): worth trying again on another one. */
export const isConnectionLoss = (error: SqlError): boolean => connectionFailure(error) !== undefined

/**
 * A defect of `sql.withTransaction` (it turns a failed COMMIT into one) that is a `SqlError` without an answer from
 * the server: whether the transaction committed is unknown.
 */
export const isUnansweredSqlError = (defect: unknown): boolean =>
  typeof defect === "object" && defect !== null && "_tag" in defect && defect._tag === "SqlError" &&
  sqlState(defect as SqlError) === undefined

/** The port's infrastructure error of `method`, keeping the cause. */
export const storeError = (method: string) => (cause: unknown): EventStore.EventStoreError =>
  new EventStore.EventStoreError({ method, cause })
