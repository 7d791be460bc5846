/**
 * What a failed statement tells: the server's SQLSTATE, constraint and detail, and whether the server answered at
 * all.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type { SqlError } from "@effect/sql/SqlError"

/** The SQLSTATE of the server's answer, `undefined` when the failure carries none (the server did not answer). */
export const sqlState = (error: SqlError): string | undefined => {
  const cause: unknown = error.cause
  return typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" &&
      /^[0-9A-Z]{5}$/.test(cause.code)
    ? cause.code
    : undefined
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

/** A statement that failed without an answer from the server: the connection broke while it ran. */
export const isConnectionLoss = (error: SqlError): boolean =>
  (error.message === "Failed to execute statement" || error.message === "Connection error") &&
  sqlState(error) === undefined

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
