#!/usr/bin/env node
/**
 * The `eventsourcing` executable: runs the command line with `process.argv` and exits with its code (0, 1 for a
 * failure, 2 for a usage error; Ctrl-C ends `tail` with 0).
 *
 * @since 0.3.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Cli from "./Cli.js"

NodeRuntime.runMain(
  Cli.run(process.argv).pipe(
    Effect.flatMap((code) =>
      Effect.sync(() => {
        process.exitCode = code
      })
    ),
    Effect.provide(NodeContext.layer)
  ),
  { disableErrorReporting: true, disablePrettyLogger: true }
)
