/**
 * Publishing committed events. The event log is the outbox: a publisher is a {@link Subscription} whose handler
 * publishes and whose checkpoint moves only after publishing, so an event is published after its commit, in global
 * order, and a crash never loses one (publishing resumes from the checkpoint; an event may be published twice).
 *
 * `EventBus` is the in-process side: a `PubSub` that local consumers subscribe to, fed by such a subscription.
 * To publish to a broker instead, run a {@link Subscription} of a projection whose `handle` sends to the broker.
 *
 * @example
 * ```ts
 * import { CheckpointStore, EventBus, InMemoryEventStore } from "@effect-eventsourcing/core"
 * import { Effect, Layer, Stream } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const bus = yield* EventBus.EventBus
 *   yield* bus.stream.pipe(Stream.runForEach((event) => Effect.log(event.type)), Effect.forkScoped)
 * })
 *
 * const Bus = EventBus.layer().pipe(Layer.provide([InMemoryEventStore.layer, CheckpointStore.layerMemory]))
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as CheckpointStore from "./CheckpointStore.js"
import type * as EventStore from "./EventStore.js"
import * as Projection from "./Projection.js"
import * as Subscription from "./Subscription.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("@effect-eventsourcing/core/EventBus")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category tags
 */
export class EventBus extends Context.Tag("@effect-eventsourcing/core/EventBus")<EventBus, EventBus.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace EventBus {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** Publishes to every current subscriber (waits for room when the bus is bounded). */
    readonly publish: (event: EventStore.RecordedEvent) => Effect.Effect<void>
    /** A subscription that receives every event published after it was made, until the scope closes. */
    readonly subscribe: Effect.Effect<Queue.Dequeue<EventStore.RecordedEvent>, never, Scope.Scope>
    /** The events published after the stream starts. */
    readonly stream: Stream.Stream<EventStore.RecordedEvent>
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The name of the publishing subscription (its checkpoint); default `"event-bus"`. */
  readonly name?: string
  /** Only these events are published. */
  readonly filter?: EventStore.Filter
  /** Where to start when the publisher has no checkpoint yet; default: the start of the log. */
  readonly from?: number
  /** The checkpoint store; default: the `CheckpointStore` service. */
  readonly checkpoints?: CheckpointStore.CheckpointStore.Service
  /** Bounded bus: publishing waits for slow subscribers (back-pressure on the publisher). Default: unbounded. */
  readonly capacity?: number
}

/**
 * An in-process bus over a `PubSub`; nothing feeds it (see {@link layer} and {@link publisher}). `subscribed`
 * completes when the first subscriber subscribes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makePubSub = (
  options?: { readonly capacity?: number }
): Effect.Effect<{ readonly bus: EventBus.Service; readonly subscribed: Effect.Effect<void> }> =>
  Effect.gen(function*() {
    const pubsub = options?.capacity === undefined
      ? yield* PubSub.unbounded<EventStore.RecordedEvent>()
      : yield* PubSub.bounded<EventStore.RecordedEvent>(options.capacity)
    const first = yield* Deferred.make<void>()
    const subscribe = Effect.tap(PubSub.subscribe(pubsub), () => Deferred.succeed(first, undefined))
    const bus: EventBus.Service = {
      [TypeId]: TypeId,
      publish: (event) => Effect.asVoid(PubSub.publish(pubsub, event)),
      subscribe,
      stream: Stream.unwrapScoped(Effect.map(subscribe, (queue) => Stream.fromQueue(queue)))
    }
    return { bus, subscribed: Deferred.await(first) }
  })

/**
 * The projection that publishes every event it handles to the bus.
 *
 * @since 0.1.0
 * @category constructors
 */
export const publisher = (name: string, bus: EventBus.Service): Projection.Projection =>
  Projection.make({ name, handle: bus.publish })

/**
 * @since 0.1.0
 * @category accessors
 */
export const subscribe: Effect.Effect<Queue.Dequeue<EventStore.RecordedEvent>, never, EventBus | Scope.Scope> = Effect
  .flatMap(EventBus, (bus) => bus.subscribe)

/**
 * @since 0.1.0
 * @category accessors
 */
export const stream: Stream.Stream<EventStore.RecordedEvent, never, EventBus> = Stream.unwrap(
  Effect.map(EventBus, (bus) => bus.stream)
)

/**
 * An in-process bus fed by a durable subscription of the event log (published after commit, in global order,
 * resuming from its checkpoint). Publishing starts when the first subscriber subscribes, so that nothing is
 * published into the void at start-up (and acknowledged). The publisher stops with the Layer; its failures are
 * logged.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <O extends Options = Options>(
  options?: O
): Layer.Layer<EventBus, never, Subscription.Requirements<O>> =>
  Layer.scoped(
    EventBus,
    Effect.gen(function*() {
      const { bus, subscribed } = yield* makePubSub(
        options?.capacity === undefined ? undefined : { capacity: options.capacity }
      )
      const run = Subscription.run(publisher(options?.name ?? "event-bus", bus), {
        ...(options?.from === undefined ? {} : { from: options.from }),
        ...(options?.filter === undefined ? {} : { filter: options.filter }),
        ...(options?.checkpoints === undefined ? {} : { checkpoints: options.checkpoints })
      })
      yield* Effect.forkScoped(Effect.zipRight(subscribed, Effect.ignore(run)))
      return bus
    })
  ) as Layer.Layer<EventBus, never, Subscription.Requirements<O>>
