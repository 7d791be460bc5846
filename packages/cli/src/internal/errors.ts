/**
 * The command line's own failures, and the one line every failure becomes on stderr.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"

/** @internal DATABASE_URL is not set (or empty). */
export class DatabaseUrlMissing extends Schema.TaggedError<DatabaseUrlMissing>()("DatabaseUrlMissing", {}) {
  override get message(): string {
    return "DATABASE_URL is not set: export the connection string of the event store's database"
  }
}

/** @internal The schema holds no event store (a typo, or `migrate` was never run). */
export class SchemaNotFound extends Schema.TaggedError<SchemaNotFound>()("SchemaNotFound", {
  schema: Schema.String
}) {
  override get message(): string {
    return `schema ${this.schema} holds no event store (run: eventsourcing migrate --schema ${this.schema})`
  }
}

/** @internal `stream show` of a stream without events. */
export class StreamNotFound extends Schema.TaggedError<StreamNotFound>()("StreamNotFound", {
  streamId: Schema.String
}) {
  override get message(): string {
    return `stream ${this.streamId} has no events`
  }
}

/** @internal A subscription name without a checkpoint row. */
export class SubscriptionNotFound extends Schema.TaggedError<SubscriptionNotFound>()("SubscriptionNotFound", {
  name: Schema.String
}) {
  override get message(): string {
    return `subscription ${this.name} is unknown (no checkpoint)`
  }
}

/** @internal The consumer refused a reset request (a projection without onReset, and no --allow-duplicates). */
export class ResetRefused extends Schema.TaggedError<ResetRefused>()("ResetRefused", {
  name: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `the consumer of ${this.name} refused the reset: ${this.reason}`
  }
}

/** @internal Command-line input the parser accepted but the command refuses. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  reason: Schema.String
}) {
  override get message(): string {
    return this.reason
  }
}

const record = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

const ownMessage = (u: unknown): string => {
  if (!record(u)) return String(u)
  if (typeof u.message === "string" && u.message !== "") return u.message
  // node's connection attempt to several addresses (localhost: ::1 and 127.0.0.1) is an AggregateError without one
  if (Array.isArray(u.errors) && u.errors.length > 0) {
    return u.errors.map(ownMessage).filter((m, i, all) => all.indexOf(m) === i).join("; ")
  }
  if (typeof u.code === "string") return u.code
  return String(u)
}

/**
 * The innermost useful message of an error: `SqlError`s and the store's `*Error`s wrap the driver's error in `cause`.
 */
const describe = (error: unknown): string => {
  if (!record(error)) return String(error)
  const tag = typeof error._tag === "string" ? error._tag : undefined
  if (tag === "SqlError") {
    const message = typeof error.message === "string" ? error.message : ""
    const cause = error.cause
    if (/Failed to connect|Connection timed out/.test(message)) {
      return `cannot connect to the database: ${cause === undefined ? message : ownMessage(cause)}`
    }
    return cause === undefined ? message : `${message}: ${ownMessage(cause)}`
  }
  if (tag === "EventStoreError" || tag === "CheckpointStoreError") {
    const cause = error.cause
    if (record(cause) && cause._tag === "SqlError") return describe(cause)
    if (record(cause) && cause._tag === "MigrationError") return `migration failed: ${ownMessage(cause)}`
  }
  return ownMessage(error)
}

/**
 * Removes the connection string (and its password, wherever it appears) from a message: the command line never
 * prints them, whatever an error carries.
 */
const scrub = (line: string, databaseUrl: string | undefined): string => {
  if (databaseUrl === undefined || databaseUrl === "") return line
  let out = line.split(databaseUrl).join("<DATABASE_URL>")
  try {
    const password = decodeURIComponent(new URL(databaseUrl).password)
    if (password !== "") out = out.split(password).join("***")
  } catch {
    // not a URL: only the whole string is removed
  }
  return out
}

/** @internal One line for a failure: no stack, no connection string. */
export const oneLine = (cause: Cause.Cause<unknown>, databaseUrl: string | undefined): string => {
  const failure = Cause.failureOption(cause)
  const text = Option.isSome(failure)
    ? describe(failure.value)
    : Option.match(Cause.dieOption(cause), {
      onNone: () => "interrupted",
      onSome: (defect) => `unexpected error: ${describe(defect)}`
    })
  return scrub(text.replace(/\s*\n\s*/g, " ").trim(), databaseUrl)
}
