/**
 * The HTTP API of the bank account, declared once with `@effect/platform`'s `HttpApi`: the server implements it
 * (`Handlers.ts`), the client is derived from it (`HttpApiClient.make(BankApi)`), and so is the OpenAPI document.
 *
 * - `POST /accounts/:id/commands/<command>`: one endpoint per command, the body is the command's fields. The answer
 *   is the account's state with an `ETag` of its stream version. `If-Match: "<version>"` makes the command
 *   conditional (`ExpectedVersion.Exact`): 412 when the account is at another version.
 * - `GET /accounts/:id`: the state and its `ETag` (from the event stream, always current).
 * - `GET /balances`, `GET /balances/:id`: the balances view (eventually consistent, kept by a subscription).
 *
 * Failures are RFC 9457 problem documents (`application/problem+json`) carrying the typed error, built with
 * `HttpConventions.problem`: 404 `AggregateNotFound`, 409 `ConcurrencyConflict` (retries exhausted), 412
 * `PreconditionFailed`, 422 the domain's errors, 400 an invalid id, 503 the store is unavailable. A body that does
 * not decode with the command's Schema is a 400 `HttpApiDecodeError`.
 */
import { Aggregate, EventStore, HttpConventions, StreamId } from "@effect-eventsourcing/core"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema, OpenApi } from "@effect/platform"
import { Schema } from "effect"
import {
  AccountAlreadyOpened,
  AccountNotOpen,
  AccountState,
  BalanceNotZero,
  CloseAccount,
  Deposit,
  InsufficientFunds,
  OpenAccount,
  Withdraw
} from "./Account.js"

// ---------------------------------------------------------------------------
// problems
// ---------------------------------------------------------------------------

/** The store could not be reached, or a commit's outcome is unknown: try again. No internals are sent. */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", {}) {
  override get message(): string {
    return "The event store is unavailable; try again"
  }
}

/** A typed error answered as an RFC 9457 problem document with `status`. */
const problem = <A, I extends { readonly _tag: string }>(schema: Schema.Schema<A, I>, status: number) =>
  HttpApiSchema.withEncoding(HttpConventions.problem(schema, { status }), {
    kind: "Json",
    contentType: "application/problem+json"
  }).annotations(HttpApiSchema.annotations({ status }))

const status = (_tag: string) => HttpConventions.status({ _tag })

export const NotFound = problem(Aggregate.AggregateNotFound, status("AggregateNotFound"))
export const Conflict = problem(EventStore.ConcurrencyConflict, status("ConcurrencyConflict"))
export const PreconditionFailed = problem(HttpConventions.PreconditionFailed, status("PreconditionFailed"))
export const InvalidId = problem(StreamId.InvalidStreamId, status("InvalidStreamId"))
export const Unavailable = problem(ServiceUnavailable, status("EventStoreError"))
/** The domain's refusals: 422 with the domain error (`_tag` and fields) in the problem's `error` member. */
export const Rejected = problem(
  Schema.Union(AccountAlreadyOpened, AccountNotOpen, InsufficientFunds, BalanceNotZero),
  422
)

// ---------------------------------------------------------------------------
// bodies
// ---------------------------------------------------------------------------

/** An account as the API shows it: its state and its stream version (also in the `ETag` header). */
export class Account extends Schema.Class<Account>("Account")({
  id: Schema.String,
  ...AccountState.fields,
  version: Schema.Int
}) {}

/** A row of the balances view. */
export class Balance extends Schema.Class<Balance>("Balance")({
  id: Schema.String,
  owner: Schema.String,
  status: Schema.Literal("open", "closed"),
  balance: Schema.Int,
  /** The global position of the last event that changed it. */
  position: Schema.Int
}) {}

/** The body of a command endpoint: the command's fields (its `_tag` is the endpoint). */
const body = <Fields extends Schema.Struct.Fields>(command: { readonly fields: Fields }) => {
  const { _tag: _, ...fields } = command.fields
  return Schema.Struct(fields as Omit<Fields, "_tag">)
}

export const OpenAccountBody = body(OpenAccount)
export const DepositBody = body(Deposit)
export const WithdrawBody = body(Withdraw)
export const CloseAccountBody = body(CloseAccount)

/** `If-Match` (conditional command) and `If-None-Match: *` (create only). */
export const Preconditions = Schema.Struct({
  "if-match": Schema.optional(Schema.String),
  "if-none-match": Schema.optional(Schema.String)
})

// ---------------------------------------------------------------------------
// endpoints
// ---------------------------------------------------------------------------

const id = HttpApiSchema.param("id", Schema.String)

const command = <const Name extends string>(name: Name, path: `/${string}`) =>
  HttpApiEndpoint.post(name, `/accounts/:id/commands${path}`)
    .setPath(Schema.Struct({ id: Schema.String }))
    .setHeaders(Preconditions)
    .addSuccess(Account)
    .addError(InvalidId)
    .addError(Conflict)
    .addError(PreconditionFailed)
    .addError(Rejected)
    .addError(Unavailable)

export class AccountsApi extends HttpApiGroup.make("accounts")
  .add(
    HttpApiEndpoint.get("get")`/accounts/${id}`
      .addSuccess(Account)
      .addError(NotFound)
      .addError(InvalidId)
      .addError(Unavailable)
  )
  .add(command("openAccount", "/open-account").setPayload(OpenAccountBody))
  .add(command("deposit", "/deposit").setPayload(DepositBody))
  .add(command("withdraw", "/withdraw").setPayload(WithdrawBody))
  .add(command("closeAccount", "/close-account").setPayload(CloseAccountBody))
  .annotate(OpenApi.Description, "Commands and state of bank accounts (strongly consistent)")
{}

export class BalancesApi extends HttpApiGroup.make("balances")
  .add(HttpApiEndpoint.get("list")`/balances`.addSuccess(Schema.Array(Balance)).addError(Unavailable))
  .add(
    HttpApiEndpoint.get("get")`/balances/${id}`.addSuccess(Balance).addError(NotFound).addError(Unavailable)
  )
  .annotate(OpenApi.Description, "The balances view (eventually consistent)")
{}

export class BankApi extends HttpApi.make("bank")
  .add(AccountsApi)
  .add(BalancesApi)
  .annotate(OpenApi.Title, "Bank account (effect-eventsourcing example)")
{}
