/**
 * `subscriptions status` and `subscriptions reset`, on `Subscription.status` / `statusAll` / `requestReset`.
 *
 * @internal
 */
import * as Subscription from "@effect-eventsourcing/core/Subscription"
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as DateTime from "effect/DateTime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { stores } from "./database.js"
import { ResetRefused } from "./errors.js"
import * as Opt from "./options.js"
import { iso, printJson, printTable } from "./output.js"
import { modeOf, type Sample, track } from "./progress.js"

const shorten = (text: string, max: number) => text.length <= max ? text : `${text.slice(0, max - 1)}…`

const optional = <A>(option: Option.Option<A>) => Option.getOrNull(option)

/** @internal A status report as `--json` prints it. */
export const reportJson = (report: Subscription.StatusReport) => ({
  name: report.name,
  checkpoint: optional(report.checkpoint),
  head: report.head,
  lag: report.lag,
  holder: optional(report.holder),
  parked: report.parked,
  lastError: Option.match(report.lastError, {
    onNone: () => null,
    onSome: (error) => ({ message: error.message, at: iso(error.at) })
  }),
  resetRequest: Option.match(report.resetRequest, {
    onNone: () => null,
    onSome: (request) => ({
      id: request.id,
      position: request.position ?? null,
      allowDuplicates: request.allowDuplicates,
      requestedAt: iso(request.requestedAt)
    })
  })
})

const status = Command.make(
  "status",
  {
    schema: Opt.schema,
    json: Opt.json,
    name: Args.text({ name: "name" }).pipe(
      Args.withDescription("One subscription (default: every subscription with a checkpoint)"),
      Args.optional
    )
  },
  ({ json, name, schema }) =>
    Effect.gen(function*() {
      const reports = Option.isSome(name) ? [yield* Subscription.status(name.value)] : yield* Subscription.statusAll
      if (json) return yield* Effect.forEach(reports, (report) => printJson(reportJson(report)), { discard: true })
      yield* printTable([
        { header: "SUBSCRIPTION", cell: (r: Subscription.StatusReport) => r.name },
        {
          header: "CHECKPOINT",
          cell: (r: Subscription.StatusReport) => Option.match(r.checkpoint, { onNone: () => "-", onSome: String }),
          align: "right"
        },
        { header: "HEAD", cell: (r: Subscription.StatusReport) => String(r.head), align: "right" },
        { header: "LAG", cell: (r: Subscription.StatusReport) => String(r.lag), align: "right" },
        { header: "PARKED", cell: (r: Subscription.StatusReport) => String(r.parked), align: "right" },
        {
          header: "HOLDER",
          cell: (r: Subscription.StatusReport) => Option.getOrElse(r.holder, () => "-")
        },
        {
          header: "STATUS",
          cell: (r: Subscription.StatusReport) =>
            [
              ...Option.match(r.resetRequest, {
                onNone: () => [],
                onSome: (request) => [`reset to ${request.position ?? "start"} requested`]
              }),
              ...Option.match(r.lastError, {
                onNone: () => [],
                onSome: (error) => [`last error ${iso(error.at)}: ${shorten(error.message.replace(/\s+/g, " "), 80)}`]
              })
            ].join("; ") || "ok"
        }
      ], reports)
    }).pipe(Effect.provide(stores(schema)))
).pipe(Command.withDescription("Checkpoint, head, lag, parked events, holder and last error of the subscriptions"))

/**
 * One observation of a reset: waiting while the request is pending; once applied, done when the checkpoint reached
 * the head seen at that moment (`target`, fixed so that a busy log cannot keep the watch open forever).
 */
const observe = (name: string, requestId: number, requestedAt: DateTime.Utc) => {
  let target: number | undefined
  return Effect.gen(function*() {
    const report = yield* Subscription.status(name)
    const checkpoint = Option.getOrElse(report.checkpoint, () => 0)
    const pending = Option.exists(report.resetRequest, (request) => request.id === requestId)
    if (pending) {
      const sample: Sample = {
        checkpoint,
        head: report.head,
        done: false,
        waiting: Option.isNone(report.holder)
          ? `no consumer holds ${name}: the reset applies when one starts`
          : "waiting for the consumer to apply the reset"
      }
      return sample
    }
    // a refusal is recorded as the last error (`Subscription.NotResettable`), at or after the request (both times
    // are the database's)
    const refused = Option.filter(
      report.lastError,
      (error) => DateTime.greaterThanOrEqualTo(error.at, requestedAt) && /has no onReset/.test(error.message)
    )
    if (Option.isSome(refused) && target === undefined) {
      const reason = refused.value.message.replace(
        /\(pass \{ allowDuplicates: true \} to reset anyway\)/,
        "(use --allow-duplicates to reset anyway)"
      )
      return yield* new ResetRefused({ name, reason })
    }
    if (target === undefined) target = report.head
    const sample: Sample = { checkpoint, head: report.head, done: checkpoint >= target, waiting: undefined }
    return sample
  })
}

const reset = Command.make(
  "reset",
  {
    schema: Opt.schema,
    json: Opt.json,
    to: Opt.atLeast("to", 0, "Replay from after this global position (default: from the start)").pipe(
      Options.optional
    ),
    allowDuplicates: Options.boolean("allow-duplicates").pipe(
      Options.withDescription("Reset even a projection without onReset (its read model sees the events again)")
    ),
    watch: Options.boolean("watch").pipe(
      Options.withDescription("Follow the replay until the consumer has caught up (a progress bar on a terminal)")
    ),
    name: Args.text({ name: "name" }).pipe(Args.withDescription("The subscription"))
  },
  ({ allowDuplicates, json, name, schema, to, watch }) =>
    Effect.gen(function*() {
      const position = Option.getOrUndefined(to)
      const request = yield* Subscription.requestReset(name, { position, allowDuplicates })
      if (json) {
        yield* printJson({ name, requested: { id: request.id, position: position ?? null, allowDuplicates } })
      } else {
        yield* Console.log(
          `Reset of ${name} to ${
            position === undefined ? "the start" : `position ${position}`
          } requested (#${request.id}); ` +
            "the consumer holding it applies it."
        )
      }
      if (!watch) return
      const last = yield* track(observe(name, request.id, request.requestedAt), {
        mode: modeOf(json),
        start: position ?? 0
      })
      if (!json) yield* Console.log(`${name} has caught up: checkpoint ${last.checkpoint}, head ${last.head}.`)
    }).pipe(Effect.provide(stores(schema)))
).pipe(
  Command.withDescription(
    "Ask the running consumer of a subscription to reset (onReset, then replay from --to or the start)"
  )
)

/** @internal */
export const subscriptions = Command.make("subscriptions").pipe(
  Command.withDescription("Subscriptions (durable consumers) of the store"),
  Command.withSubcommands([status, reset])
)
