/**
 * Gives the tests a real PostgreSQL server through the package's public test support
 * (`@effect-eventsourcing/postgres/testing`, the module users register as their vitest `globalSetup`):
 * `DATABASE_URL` when it is set, otherwise an embedded PostgreSQL 15 for the whole run. The URL is also provided
 * under the key `databaseUrl`, which the example and smoke tests read with `inject("databaseUrl")`.
 */
import type { TestProject } from "vitest/node"
import { setup as setupDatabase } from "../src/testing/globalSetup.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const teardown = await setupDatabase(project)
  project.provide("databaseUrl", project.getProvidedContext()["@effect-eventsourcing/postgres/testing"])
  return teardown
}
