/**
 * Group commit: concurrent single-stream appends (`append`, outside the caller's transaction, no inline projections)
 * share statements. While statements are in flight (`maxInFlight`, default 1, each on a connection of its own), the
 * appends that arrive queue up; when one is answered, the queue (up to `maxBatch` requests) goes in the next statement: one call
 * of `append_batch` (migration 6), one transaction, one acquisition of the positions lock, one commit. An append that
 * finds a free slot is sent at once, alone, on the single-request path (`append_one`): no linger, nothing added when
 * idle. An append of many events (`aloneFrom`), and an `Exact` or `NoStream` append to a stream that already has a
 * request waiting, are not queued either: they are sent at once, alone (see `submit`).
 *
 * Each request keeps its own outcome. `append_batch` checks each request's expectation on its own, inserts the
 * accepted ones with `on conflict do nothing` and undoes a request that lost a row (a version or an event id taken
 * meanwhile) without touching the others; a `ConcurrencyConflict` is one request's answer, and a raced request is
 * sent again in a later statement. Whatever remains to be done for one request (its idempotent-replay check, sending
 * it again, the check by event id after a lost connection, today's path after any other failure of the statement)
 * runs in that caller's own fiber, never in the batch's.
 *
 * Gap safety of the batched path: the statement is one transaction that takes its positions exactly as a single
 * append does (the writers' key, then the critical section of `allocatePositions`, recording that section's id in
 * every row: see migrations 1, 5 and 6), so every row it commits satisfies the invariant that readers rely on: its
 * `xid` is at least as new as its own transaction's and as that of every transaction still running that took a
 * position before it. In more detail:
 *
 * - all the batch's rows carry the one recorded id and commit at one instant (one transaction): a reader sees all of
 *   them or none, and while the transaction runs its id is not below any reader's `xmin`, so a reader stops at the
 *   first of them instead of passing it;
 * - the batch may wait after taking its positions (an insert waiting for a concurrent writer of the same key to end),
 *   exactly as a single append that races on its stream does: readers wait for it, they never skip it;
 * - rows it deletes again were never visible to anyone; their positions stay unused, like those of a rolled-back
 *   append (readers never wait for a position number, only for running transactions).
 *
 * Batching changes only how many requests share that one transaction.
 *
 * @internal
 */
import * as EventStore from "@effect-eventsourcing/core/EventStore"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { Prepared } from "./encoding.js"
import { connectionFailure } from "./sqlErrors.js"

/** The default bound on the requests of one statement. */
export const defaultMaxBatch = 64

/**
 * Statements in flight at once by default, each on a connection of its own. With 16 concurrent appenders of one event
 * each to new streams (bench W1, 20,000 appends, same sessions): with 2 in flight, the caller of a statement that
 * ended found the other slot busy and its own free, and went alone (`append_one`), so about half the statements carried one
 * request (1,400-1,600 singles beside 1,270 batches of 15); with 1 in flight every statement is a batch of 15-16:
 * client CPU per append 157-159 -> 123-143 us, server CPU 107-113 -> 71-87 us, W1 0.62-0.96x -> 1.08-1.09x raw-pg.
 * A batch held up by a lock (up to append_batch's `lock_timeout`) holds up the queue behind it: `maxInFlight` raises
 * the bound.
 */
export const defaultMaxInFlight = 1

/**
 * A request of this many events or more is sent at once, alone, never queued: its statement's cost is its rows, not
 * the statement, so sharing one saves next to nothing, while waiting for the batch in flight serialises the
 * server's work on one backend. Bench W2 (8 writers of 100-event appends), alternating in one session: queued 0.44x,
 * 0.36x, 0.47x raw-pg; alone 0.50x, 0.49x, 0.52x.
 */
const aloneFrom = 16

/** How many times a raced request is sent again before it takes today's path (which retries on its own). */
const maxTries = 50

type Outcome = Effect.Effect<EventStore.AppendResult, EventStore.AppendError>

interface Pending {
  readonly method: string
  /** one request with at least one event (`prepared.one`): its params are those of `append_one` */
  readonly prepared: Prepared
  readonly tries: number
  /**
   * The caller's wake-up (its fiber, suspended in `Effect.async`, runs the outcome it is given: whatever remains to
   * be done for the request runs there); `undefined` until the caller is suspended.
   */
  resume: ((outcome: Outcome) => void) | undefined
  /** an outcome settled before the caller was suspended */
  early: Outcome | undefined
  /** the caller was interrupted before its request was sent: leave it out */
  cancelled: boolean
}

interface Row {
  readonly status: "ok" | "conflict" | "retry"
  /** the new version (ok) or the actual one (conflict) */
  readonly version: string
  readonly positions: ReadonlyArray<string>
}

/** @internal */
export interface GroupCommit {
  /** one request of `append` (`prepared.one`): its result */
  readonly submit: (
    method: string,
    prepared: Prepared
  ) => Effect.Effect<EventStore.AppendResult, EventStore.AppendError>
}

/** @internal */
export const make = (options: {
  readonly sql: SqlClient.SqlClient
  /** the quoted schema name */
  readonly s: string
  /** `pg_notify` inside the transaction on this channel (`notify: "inTransaction"`), or none */
  readonly channel: string | null
  /** a positive integer (checked by the store), default `defaultMaxBatch` */
  readonly maxBatch: number | undefined
  /** a positive integer (checked by the store), default `defaultMaxInFlight` */
  readonly maxInFlight: number | undefined
  /** today's path for one prepared request */
  readonly single: (
    method: string,
    prepared: Prepared
  ) => Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.AppendError>
  readonly replayed: (
    prepared: Prepared
  ) => Effect.Effect<ReadonlyArray<EventStore.AppendResult> | EventStore.EventIdConflict | undefined, SqlError>
  readonly checkCommitted: (
    method: string,
    prepared: Prepared,
    cause: unknown
  ) => Effect.Effect<ReadonlyArray<EventStore.AppendResult>, EventStore.CommitOutcomeUnknown>
  readonly committed: (position: number) => void
}): GroupCommit => {
  const { checkCommitted, replayed, single, sql } = options
  const maxBatch = options.maxBatch ?? defaultMaxBatch
  const maxInFlight = options.maxInFlight ?? defaultMaxInFlight
  const text = `select status, version, positions from ${options.s}.append_batch($1::text[], $2::text[], ` +
    `$3::bigint[], $4::jsonb, $5::timestamptz[], $6::text)`
  const queue: Array<Pending> = []
  let inFlight = 0

  const first = <E>(
    effect: Effect.Effect<ReadonlyArray<EventStore.AppendResult>, E>
  ): Effect.Effect<EventStore.AppendResult, E> => Effect.map(effect, (results) => results[0]!)

  const settle = (pending: Pending, outcome: Outcome) => {
    const resume = pending.resume
    if (resume === undefined) pending.early = outcome
    else {
      pending.resume = undefined
      resume(outcome)
    }
  }

  /** A request that did not get in: an idempotent replay of a committed append, or `otherwise`. */
  const unlessReplayed = (pending: Pending, otherwise: Outcome): Outcome =>
    Effect.flatMap(
      Effect.mapError(replayed(pending.prepared), (cause) =>
        new EventStore.EventStoreError({ method: pending.method, cause })),
      (replay) =>
        replay === undefined
          ? otherwise
          : replay instanceof EventStore.EventIdConflict
          ? Effect.fail(replay)
          : Effect.succeed(replay[0]!)
    )

  const outcome = (pending: Pending, row: Row): Outcome => {
    const request = pending.prepared.requests[0]!
    switch (row.status) {
      case "ok":
        return Effect.succeed({
          version: Number(row.version),
          position: Number(row.positions[row.positions.length - 1])
        })
      case "conflict":
        return unlessReplayed(
          pending,
          Effect.fail(
            new EventStore.ConcurrencyConflict({
              streamId: request.streamId,
              expected: request.expected,
              actual: Number(row.version)
            })
          )
        )
      case "retry":
        return unlessReplayed(
          pending,
          pending.tries + 1 < maxTries
            ? Effect.suspend(() => enqueue(pending.method, pending.prepared, pending.tries + 1))
            : first(single(pending.method, pending.prepared))
        )
    }
  }

  /** The outcome of every request of a statement that failed as a whole. */
  const failedAll = (batch: ReadonlyArray<Pending>, cause: Cause.Cause<SqlError>) => {
    const error = Cause.failureOption(cause)
    const lost = error._tag === "Some" && connectionFailure(error.value) === "lost"
    for (const pending of batch) {
      settle(
        pending,
        lost
          // it may have committed: each request finds out by its own event ids
          ? first(checkCommitted(pending.method, pending.prepared, error.value))
          // nothing was committed (a server's error, a deadlock, a request the server rejects): each request alone
          : first(single(pending.method, pending.prepared))
      )
    }
  }

  /** Sends one statement for the batch and settles every request of it (never fails). */
  const send = (taken: ReadonlyArray<Pending>): Effect.Effect<void> => {
    const batch = taken.filter((pending) => !pending.cancelled)
    if (batch.length === 0) return Effect.void
    if (batch.length === 1) {
      // alone: today's path, on this fiber
      const pending = batch[0]!
      return Effect.map(Effect.exit(first(single(pending.method, pending.prepared))), (exit) => settle(pending, exit))
    }
    const streamIds: Array<unknown> = []
    const categories: Array<unknown> = []
    const expected: Array<unknown> = []
    const recordedAt: Array<unknown> = []
    let events = "["
    for (let i = 0; i < batch.length; i++) {
      // append_one's params: stream id, category, expected, events (one JSON document), recorded at, channel
      const params = batch[i]!.prepared.params
      streamIds.push(params[0])
      categories.push(params[1])
      expected.push(params[2])
      events += i === 0 ? params[3] : `,${params[3] as string}`
      recordedAt.push(params[4])
    }
    events += "]"
    return Effect.map(
      Effect.exit(sql.unsafe<Row>(text, [streamIds, categories, expected, events, recordedAt, options.channel])),
      (exit) => {
        if (Exit.isFailure(exit)) return failedAll(batch, exit.cause)
        const rows = exit.value
        let top = 0
        for (let i = 0; i < batch.length; i++) {
          const row = rows[i]
          if (row === undefined) {
            settle(
              batch[i]!,
              Effect.fail(
                new EventStore.EventStoreError({
                  method: batch[i]!.method,
                  cause: new Error(`append_batch answered ${rows.length} rows for ${batch.length} requests`)
                })
              )
            )
            continue
          }
          if (row.status === "ok") top = Math.max(top, Number(row.positions[row.positions.length - 1]))
          settle(batch[i]!, outcome(batch[i]!, row))
        }
        if (top > 0) options.committed(top)
      }
    )
  }

  /**
   * Sends the queue, batch after batch, until it is empty; then gives its slot back. After each statement it yields
   * once to the scheduler (no timer): the callers it has just answered run first, and the appends they go on with
   * join the next statement instead of taking the slot alone.
   */
  const drain: Effect.Effect<void> = Effect.suspend(() => {
    if (queue.length === 0) {
      inFlight--
      return Effect.void
    }
    return Effect.zipRight(send(queue.splice(0, maxBatch)), Effect.zipRight(Effect.yieldNow(), drain))
  })

  const pendingOf = (method: string, prepared: Prepared, tries: number): Pending => ({
    method,
    prepared,
    tries,
    resume: undefined,
    early: undefined,
    cancelled: false
  })

  // one suspension per waiting caller (no Deferred, no finalizer): interrupting it runs the canceller
  // (the callback takes one parameter: with two, `Effect.async` would make an AbortSignal for each call)
  const wait = (pending: Pending): Outcome =>
    Effect.async<EventStore.AppendResult, EventStore.AppendError>((resume) => {
      if (pending.early !== undefined) return resume(pending.early)
      pending.resume = resume
      return Effect.sync(() => {
        pending.cancelled = true
        pending.resume = undefined
      })
    })

  const enqueue = (method: string, prepared: Prepared, tries: number): Outcome => {
    if (inFlight >= maxInFlight) {
      const pending = pendingOf(method, prepared, tries)
      queue.push(pending)
      return wait(pending)
    }
    // a free slot: this caller sends its own request at once, alone, on today's path (no hop to another fiber),
    // then hands the queue that built up meanwhile to a fiber of its own
    inFlight++
    return Effect.ensuring(
      first(single(method, prepared)),
      Effect.suspend(() =>
        queue.length === 0 ? Effect.sync(() => void inFlight--) : Effect.asVoid(Effect.forkDaemon(drain))
      )
    )
  }

  /**
   * Requests submitted and not yet answered, per stream. An `Exact` or `NoStream` request to a stream that has one is
   * not queued: it is sent at once on a statement of its own (today's path, beside the batches, as with
   * `groupCommit: false`). Behind a predecessor on the same stream it can only succeed if that one fails, so it gains
   * nothing from sharing a statement, and queueing it would make it wait for the batch in flight first: under a
   * contended stream (bench W3: 16 command handlers on one stream) the losers of a round would then all come back
   * with their conflicts together and decide again in lockstep. Sent alone, each one's insert waits on its
   * predecessor's row in the server and fails as that commits, and the retries spread out (W3, alternating in one
   * session: 0.53-0.60x raw-pg queued, 0.88-0.90x alone; conflicts 20,500 -> 13,100 for 1,600 appends). Failing such
   * a request at once, without a statement, when its predecessor committed was tried and was slower still (the same
   * lockstep, earlier).
   */
  const busy = new Map<string, number>()

  const submit = (method: string, prepared: Prepared): Outcome => {
    const request = prepared.requests[0]!
    const streamId = request.streamId
    const waiting = busy.get(streamId) ?? 0
    busy.set(streamId, waiting + 1)
    const tag = request.expected._tag
    const run = request.events.length >= aloneFrom || (waiting > 0 && (tag === "Exact" || tag === "NoStream"))
      ? first(single(method, prepared))
      : enqueue(method, prepared, 0)
    return Effect.ensuring(
      run,
      Effect.sync(() => {
        const left = busy.get(streamId)! - 1
        if (left === 0) busy.delete(streamId)
        else busy.set(streamId, left)
      })
    )
  }

  return { submit }
}
