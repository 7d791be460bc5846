/**
 * The shape of every "has teeth" test of the event-store contract: `check` run against a deliberately broken
 * `layer` must fail with a `ContractViolation` of that check whose description contains `phrase`.
 */
import type { EventStore } from "@effect-eventsourcing/core"
import { EventStoreContract } from "@effect-eventsourcing/testing"
import { assert, it } from "@effect/vitest"
import { Duration, Effect, type Layer } from "effect"

export const violates = (
  store: string,
  layer: Layer.Layer<EventStore.EventStore>,
  check: EventStoreContract.CheckName,
  phrase: string
) =>
  it.live(`${store} fails ${check}`, () =>
    Effect.gen(function*() {
      const violation = yield* Effect.flip(EventStoreContract.checks[check])
      assert.instanceOf(violation, EventStoreContract.ContractViolation)
      assert.strictEqual(violation.check, check)
      assert.include(violation.description, phrase)
    }).pipe(
      Effect.provide(layer),
      Effect.provideService(EventStoreContract.Patience, Duration.seconds(1))
    ))
