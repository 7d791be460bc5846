/**
 * Runs the example on the in-memory store, or on PostgreSQL when DATABASE_URL is set.
 */
import { Effect } from "effect"
import { fromEnvironment } from "./layers.js"
import { program } from "./program.js"

const id = process.env.ACCOUNT_ID ?? `demo-${Date.now().toString(36)}`

Effect.runPromise(program(id).pipe(Effect.provide(fromEnvironment))).then(
  () => undefined,
  (error) => {
    console.error(error)
    process.exitCode = 1
  }
)
