/**
 * `npm run example:http`: the bank account over HTTP on http://127.0.0.1:3000 (PORT to change it), in memory, or on
 * PostgreSQL when DATABASE_URL is set. Stops on Ctrl-C.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { baseUrl, fromEnvironment, server } from "./server.js"

const port = Number(process.env.PORT ?? 3000)

const Main = Layer.effectDiscard(
  Effect.flatMap(baseUrl, (url) =>
    Console.log(
      `bank account API on ${url} (${
        process.env.DATABASE_URL ? "PostgreSQL" : "in memory"
      }) — OpenAPI: ${url}/openapi.json, docs: ${url}/docs`
    ))
).pipe(Layer.provideMerge(server({ port })), Layer.provide(fromEnvironment))

NodeRuntime.runMain(Layer.launch(Main))
