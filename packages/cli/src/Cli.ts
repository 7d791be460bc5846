/**
 * The `eventsourcing` admin command line for a PostgreSQL event store, as an `@effect/cli` command. The package's
 * bin runs {@link run} with `process.argv`; use {@link command} to embed the commands in a command line of your own.
 *
 * The database is the one of `DATABASE_URL`; every command takes `--schema` (default `event_store`) and `--json`
 * (one JSON object per line). The commands use the stores' public APIs (`PostgresEventStore`,
 * `PostgresCheckpointStore`, `PostgresParkedEvents`, `Subscription.status` / `requestReset`), except `streams list`,
 * which the EventStore port has no call for. A failure prints one line on stderr (never a stack trace, never the
 * connection string) and exits with code 1; a usage error exits with code 2 after `@effect/cli`'s message.
 *
 * @since 0.3.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { databaseUrl } from "./internal/database.js"
import { oneLine } from "./internal/errors.js"
import * as Parked from "./internal/parked.js"
import * as Streams from "./internal/streams.js"
import * as Subscriptions from "./internal/subscriptions.js"
import * as Tail from "./internal/tail.js"
import { version } from "./internal/version.js"

/**
 * The root command, `eventsourcing`, with its subcommands: `migrate`, `streams list`, `stream show`, `tail`,
 * `subscriptions status | reset`, `parked list | retry | skip`.
 *
 * @since 0.3.0
 * @category commands
 */
export const command = Command.make("eventsourcing").pipe(
  Command.withDescription("Operate an effect-eventsourcing PostgreSQL event store (the database of DATABASE_URL)"),
  Command.withSubcommands([
    Streams.migrate,
    Streams.streams,
    Streams.stream,
    Tail.tail,
    Subscriptions.subscriptions,
    Parked.parked
  ])
)

/**
 * How a run ended, as a process exit code: 0 success, 1 failure (one line on stderr), 2 usage error.
 *
 * @since 0.3.0
 * @category models
 */
export type ExitCode = 0 | 1 | 2

const cli = Command.run(command, { name: "eventsourcing", version })

/**
 * Runs the command line with `argv` (`process.argv`: the runtime and the script first) and returns the exit code,
 * having printed any failure as one line on stderr. Log output (off unless `--log-level` is given) goes to stderr.
 *
 * @example
 * ```ts
 * import { Cli } from "@effect-eventsourcing/cli"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 *
 * // `eventsourcing --version` from a program of your own: the exit code is returned, the process is not ended
 * Effect.runPromise(Cli.run(["node", "eventsourcing", "--version"]).pipe(Effect.provide(NodeContext.layer))).then(
 *   (code) => assert.strictEqual(code, 0)
 * )
 * ```
 *
 * @since 0.3.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<ExitCode, never, CliApp.CliApp.Environment> =>
  cli(argv).pipe(
    Effect.as<ExitCode>(0),
    Effect.catchAllCause((cause) => {
      // @effect/cli has printed its message (and the usage) already
      if (Option.exists(Cause.failureOption(cause), ValidationError.isValidationError)) {
        return Effect.succeed<ExitCode>(2)
      }
      return Effect.as(Console.error(`eventsourcing: ${oneLine(cause, databaseUrl())}`), 1 as const)
    }),
    Logger.withMinimumLogLevel(LogLevel.None),
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.withConsoleError(Logger.logfmtLogger)))
  )
