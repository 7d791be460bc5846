/**
 * The harness's one switch for the aggregate state cache of issue 14 (`Repository` / `CommandHandler` keep
 * `(state, version)` per stream and read only the events after the cached version).
 *
 * The library's cache is an option of the constructors (`Repository.make(aggregate, { cache: { capacity } })`,
 * `CommandHandler.make(aggregate, { cache: { capacity } })`), so `layer` stays empty.
 *
 * Where the harness asks for the cache (`cached: true`): W4w on every Effect target (the workload may use it);
 * W3's command handler only on the `*-cached` variants (`postgres-cached`, `memory-cached`). W4 (cold) never.
 */
import { CommandHandler, Repository } from "@effect-eventsourcing/core"
import type { Aggregate } from "@effect-eventsourcing/core"
import * as Layer from "effect/Layer"

/** whether the library has an aggregate cache the harness can switch on */
export const available: boolean = true

/** how many streams the cache keeps (the workloads touch at most 16 streams per session) */
export const capacity = 1_000

/** A repository of `aggregate`, through the cache when `cached` (and `available`). */
export const repository = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  cached: boolean
): Repository.Repository<State, Command, Event, E> =>
  Repository.make(aggregate, cached ? { cache: { capacity } } : undefined)

/** A command handler of `aggregate`, through the cache when `cached` (and `available`). */
export const commandHandler = <State, Command, Event, E>(
  aggregate: Aggregate.Aggregate<State, Command, Event, E>,
  options: CommandHandler.Options<Command>,
  cached: boolean
): CommandHandler.CommandHandler<State, Command, Event, E> =>
  CommandHandler.make(aggregate, cached ? { ...options, cache: { capacity } } : options)

/** The layer that provides the cache, if the library provides it as a service (merged into the runtime). */
export const layer: Layer.Layer<never> = Layer.empty
