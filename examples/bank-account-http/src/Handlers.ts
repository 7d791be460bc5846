/**
 * The server side of `BankApi`: commands through `CommandHandler` (or, with `If-Match`, a conditional append at the
 * client's version), state through `Repository`, balances through the `Balances` view. The typed failures reach
 * the client unchanged (as problem documents); infrastructure failures become `ServiceUnavailable` (503) without
 * their cause, and data errors are defects (500).
 */
import {
  Aggregate,
  CommandHandler,
  EventStore,
  ExpectedVersion,
  HttpConventions,
  Repository,
  View
} from "@effect-eventsourcing/core"
import { HttpApiBuilder, HttpApp, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Layer, Option } from "effect"
import type { Schedule } from "effect"
import type { AccountCommand, AccountError, AccountEvent, AccountState } from "./Account.js"
import { Account as AccountAggregate, CloseAccount, Deposit, OpenAccount, Withdraw } from "./Account.js"
import { Account, BankApi, ServiceUnavailable } from "./Api.js"
import { Balance } from "./Api.js"
import { Balances } from "./Balances.js"

export const accounts = Repository.make(AccountAggregate)

/** Sets the `ETag` of the answer to the stream version. */
const withETag = (version: number) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(HttpServerResponse.setHeader(response, "etag", HttpConventions.etag(version)))
  )

const toAccount = (id: string, state: AccountState, version: number) =>
  Effect.as(withETag(version), new Account({ id, ...state, version }))

/** Infrastructure failures (503 by `HttpConventions.status`) lose their cause; data errors are defects. */
const infrastructure = <E extends { readonly _tag: string }>(
  error: E
): Effect.Effect<never, ServiceUnavailable> =>
  HttpConventions.status(error) === 503
    ? Effect.zipRight(Effect.logWarning("store unavailable", error), Effect.fail(new ServiceUnavailable()))
    : Effect.die(error)

type Infrastructure =
  | EventStore.EventStoreError
  | EventStore.CommitOutcomeUnknown
  | EventStore.EventIdConflict
  | EventStore.InvalidArgument
  | EventStore.LockTimeout
  | Aggregate.EventDecodeError
  | Aggregate.EventEncodeError

const infrastructureTags: ReadonlyArray<string> = [
  "EventStoreError",
  "CommitOutcomeUnknown",
  "EventIdConflict",
  "InvalidArgument",
  "LockTimeout",
  "EventDecodeError",
  "EventEncodeError"
]

/** Keeps the failures the API declares; the store's own become `ServiceUnavailable` or defects. */
const mapInfrastructure = <A, E extends { readonly _tag: string }, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, Exclude<E, Infrastructure> | ServiceUnavailable, R> =>
  Effect.catchAll(
    self,
    (error): Effect.Effect<never, Exclude<E, Infrastructure> | ServiceUnavailable> =>
      infrastructureTags.includes(error._tag) ? infrastructure(error) : Effect.fail(error as Exclude<E, Infrastructure>)
  )

/**
 * A command with `If-Match`: load, check the version, decide, append with `Exact(version)`. A version that does not
 * match, before or at the append, is `PreconditionFailed` with the current version; never retried (the client
 * decided on the state it saw).
 */
const conditionally = (id: string, command: AccountCommand, expected: ExpectedVersion.ExpectedVersion) =>
  Effect.gen(function*() {
    const current = yield* accounts.loadOrInitial(id)
    const failed = (actual: number) =>
      new HttpConventions.PreconditionFailed({
        header: expected._tag === "NoStream" ? "If-None-Match" : "If-Match",
        value: expected._tag === "Exact" ? HttpConventions.etag(expected.version) : "*",
        actual
      })
    if (!ExpectedVersion.matches(expected, current.version)) return yield* failed(current.version)
    const decided = AccountAggregate.decide(command, current.state)
    if (Either.isLeft(decided)) return yield* Effect.fail<AccountError>(decided.left)
    const events = decided.right
    if (events.length === 0) return { state: current.state, version: current.version }
    const { version } = yield* accounts.append(id, events, ExpectedVersion.Exact(current.version)).pipe(
      Effect.catchTag("ConcurrencyConflict", (conflict) => Effect.fail(failed(conflict.actual)))
    )
    return { state: Aggregate.fold(AccountAggregate, events, current.state), version }
  })

const run = (
  handle: CommandHandler.CommandHandler<AccountState, AccountCommand, AccountEvent, AccountError>,
  id: string,
  command: AccountCommand,
  headers: { readonly "if-match"?: string | undefined; readonly "if-none-match"?: string | undefined }
) =>
  Effect.gen(function*() {
    const expected = yield* HttpConventions.expectedVersion({
      ifMatch: headers["if-match"],
      ifNoneMatch: headers["if-none-match"]
    })
    const { state, version } = Option.isSome(expected)
      ? yield* conditionally(id, command, expected.value)
      : yield* handle(id, command)
    return yield* toAccount(id, state, version)
  }).pipe(
    mapInfrastructure,
    Effect.withSpan("BankApi.command", { attributes: { id, command: command._tag } })
  )

/**
 * The accounts group. `retry`: how a command without `If-Match` is retried after a `ConcurrencyConflict` before
 * the client gets 409 (default: `CommandHandler.defaultRetry`).
 */
export const accountsLive = (options?: {
  readonly retry?: Schedule.Schedule<unknown, EventStore.ConcurrencyConflict> | undefined
}) => {
  const handle = CommandHandler.make(AccountAggregate, options?.retry === undefined ? {} : { retry: options.retry })
  return HttpApiBuilder.group(BankApi, "accounts", (handlers) =>
    handlers
      .handle("get", ({ path }) =>
        accounts.load(path.id).pipe(
          Effect.flatMap(({ state, version }) => toAccount(path.id, state, version)),
          mapInfrastructure
        ))
      .handle("openAccount", ({ headers, path, payload }) => run(handle, path.id, new OpenAccount(payload), headers))
      .handle("deposit", ({ headers, path, payload }) => run(handle, path.id, new Deposit(payload), headers))
      .handle("withdraw", ({ headers, path, payload }) => run(handle, path.id, new Withdraw(payload), headers))
      .handle("closeAccount", ({ headers, path }) => run(handle, path.id, new CloseAccount(), headers)))
}

const unavailable = (error: View.ViewStoreError | View.ViewDocumentError) =>
  error._tag === "ViewStoreError"
    ? Effect.zipRight(Effect.logWarning("view store unavailable", error), Effect.fail(new ServiceUnavailable()))
    : Effect.die(error)

export const BalancesLive = HttpApiBuilder.group(BankApi, "balances", (handlers) =>
  handlers
    .handle("list", () =>
      View.list(Balances).pipe(
        Effect.map((documents) =>
          documents.map(({ key, position, value }) => new Balance({ id: key, ...value, position }))
        ),
        Effect.catchAll(unavailable)
      ))
    .handle("get", ({ path }) =>
      View.getDocument(Balances, path.id).pipe(
        Effect.flatMap(Option.match({
          onNone: () =>
            Effect.fail(new Aggregate.AggregateNotFound({ streamId: `${AccountAggregate.name}-${path.id}` })),
          onSome: ({ key, position, value }) => Effect.succeed(new Balance({ id: key, ...value, position }))
        })),
        Effect.catchTags({ ViewStoreError: unavailable, ViewDocumentError: unavailable })
      )))

/** The API's handlers; they need the event store and the view store. */
export const apiLive = (options?: Parameters<typeof accountsLive>[0]) =>
  HttpApiBuilder.api(BankApi).pipe(Layer.provide([accountsLive(options), BalancesLive]))
