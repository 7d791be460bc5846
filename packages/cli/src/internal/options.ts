/**
 * Options shared by the commands.
 *
 * @internal
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Options from "@effect/cli/Options"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Effect from "effect/Effect"
import { isSchemaName } from "./database.js"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** @internal `--schema`: the PostgreSQL schema of the store (default `event_store`). */
export const schema: Options.Options<string> = Options.text("schema").pipe(
  Options.withDefault("event_store"),
  Options.withDescription("The PostgreSQL schema of the event store"),
  Options.mapEffect((name) =>
    isSchemaName(name)
      ? Effect.succeed(name)
      : invalid(`Invalid --schema ${JSON.stringify(name)}: expected a lowercase identifier`)
  )
)

/** @internal `--json`: one JSON object per line instead of a table. */
export const json: Options.Options<boolean> = Options.boolean("json").pipe(
  Options.withDescription("Print one JSON object per line (for scripts) instead of a table")
)

/** @internal An integer option that must be at least `min`. */
export const atLeast = (name: string, min: number, description: string): Options.Options<number> =>
  Options.integer(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((n) =>
      Number.isSafeInteger(n) && n >= min ? Effect.succeed(n) : invalid(`--${name} must be an integer >= ${min}`)
    )
  )
