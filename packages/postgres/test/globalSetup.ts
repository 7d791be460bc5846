/**
 * Gives the postgres tests a real PostgreSQL server: `DATABASE_URL` when it is set, otherwise an embedded
 * PostgreSQL 15 (see `embeddedServer.ts`) on a free port with its data in a temporary directory that is removed at
 * the end. Tests read the URL with `inject("databaseUrl")` (see `test/utils.ts`).
 */
import type { TestProject } from "vitest/node"
import { startEmbedded } from "./embeddedServer.js"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    project.provide("databaseUrl", given)
    return undefined
  }
  const server = await startEmbedded()
  project.provide("databaseUrl", server.url)
  return () => server.destroy()
}
