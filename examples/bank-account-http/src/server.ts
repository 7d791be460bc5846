/**
 * The server as Layers: the API on a Node HTTP server (`port` 0: any free port), its OpenAPI document at
 * `/openapi.json` and Swagger UI at `/docs`, the balances view's subscription, and the stores — in memory, or
 * PostgreSQL (event, checkpoint and view stores on one pool, so the view is exactly-once).
 */
import { CheckpointStore, EventStore, InMemoryEventStore, View } from "@effect-eventsourcing/core"
import { PostgresCheckpointStore, PostgresEventStore, PostgresViewStore } from "@effect-eventsourcing/postgres"
import { HttpApiBuilder, HttpApiSwagger, HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { PgClient } from "@effect/sql-pg"
import { Config, Effect, Layer, Option } from "effect"
import type { Redacted } from "effect"
import { createServer } from "node:http"
import { Balances } from "./Balances.js"
import { apiLive } from "./Handlers.js"

/** The stores a server needs. */
export type Stores = EventStore.EventStore | CheckpointStore.CheckpointStore | View.ViewStore

/** The in-memory stores. */
export const memory: Layer.Layer<Stores> = Layer.mergeAll(
  InMemoryEventStore.layer,
  CheckpointStore.layerMemory,
  View.layerMemory
)

/** PostgreSQL at `url` (schema `event_store`). */
export const postgres = (url: Config.Config<Redacted.Redacted>) =>
  Layer.mergeAll(PostgresEventStore.layer(), PostgresCheckpointStore.layer(), PostgresViewStore.layer()).pipe(
    Layer.provide(PgClient.layerConfig({ url }))
  )

/** PostgreSQL when DATABASE_URL is set, otherwise memory. */
export const fromEnvironment = Layer.unwrapEffect(
  Effect.map(
    Config.option(Config.redacted("DATABASE_URL")),
    Option.match({ onNone: () => memory, onSome: (url) => postgres(Config.succeed(url)) })
  )
)

/**
 * The HTTP server on `host:port` with the API, its OpenAPI document and the balances view's subscription; it
 * exposes `HttpServer` (for its address) and needs the stores.
 */
export const server = (
  options: { readonly port: number; readonly host?: string } & Parameters<typeof apiLive>[0]
) =>
  HttpApiBuilder.serve(HttpMiddleware.logger).pipe(
    Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
    Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
    Layer.provide(apiLive(options)),
    Layer.provide(View.layer(Balances)),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: options.port, host: options.host ?? "127.0.0.1" }))
  )

/** The base URL of a running server. */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = Effect.map(
  HttpServer.HttpServer,
  (server) =>
    server.address._tag === "TcpAddress"
      ? `http://${server.address.hostname}:${server.address.port}`
      : `http://unix:${server.address.path}`
)
